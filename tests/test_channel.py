"""The worker pipes (workers.channel) and the pool's hand-out rules (supervisor.pool), without a
server: frames arrive whole whatever the reads cut, a killed writer's torn frame is dropped,
and a job is never lost or handed twice, whoever dies when."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fastsync import events as ev
from fastsync.folders import FolderPair
from fastsync.supervisor.pool import Pool, WorkerDied
from fastsync.workers import channel as ch

CTX = mp.get_context("fork")


def _events(n: int) -> list[ev.WorkerEvent]:
    out: list[ev.WorkerEvent] = []
    for i in range(n):
        out.append(ev.Info(worker=i, folder="F" * (i * 997 % 5000), level="info", text=str(i)))
        out.append(ev.JobDone(worker=i, folder=f"f{i}", stats=ev.FolderStats(to_near=i)))
    return out


@settings(max_examples=40, deadline=None)
@given(count=st.integers(1, 30), cuts=st.lists(st.integers(1, 9000), min_size=1, max_size=50))
def test_frames_arrive_whole_however_the_bytes_are_cut(count: int, cuts: list[int]) -> None:
    channel, ends = ch.open_channel(CTX, jobs=False)
    try:
        sent = _events(count)
        wire = bytearray()
        for e in sent:
            body = ev.event_encoder.encode(e)
            wire += len(body).to_bytes(ch.HEADER, "big") + body
        got: list[ev.WorkerEvent] = []
        at, i = 0, 0
        while at < len(wire):
            step = cuts[i % len(cuts)]
            os.write(ends.events, wire[at : at + step])
            at += step
            i += 1
            got += channel.read()[0]
        assert got == sent
        assert not channel.pending
    finally:
        ends.close()
        channel.close()


def test_a_torn_last_frame_is_dropped_and_the_end_is_seen() -> None:
    channel, ends = ch.open_channel(CTX, jobs=False)
    writer = ch.EventWriter(ends.events)
    whole = ev.WorkerUp(worker=1, pid=42)
    writer.emit(whole)
    body = ev.event_encoder.encode(ev.Info(worker=1, folder="INBOX", level="info", text="x" * 100))
    os.write(ends.events, len(body).to_bytes(ch.HEADER, "big") + body[:10])  # killed mid-write
    ends.close()
    got, eof = channel.read()
    assert (got, eof) == ([whole], True)
    channel.close()
    assert channel.events == -1 and not channel.pending
    channel.close()  # twice is fine


def test_a_frame_bigger_than_the_pipe_goes_through_whole() -> None:
    channel, ends = ch.open_channel(CTX, jobs=False)
    big = ev.Info(worker=3, folder="x" * 300_000, level="info", text="t")
    pid = os.fork()
    if pid == 0:  # the writer blocks until the reader has made room
        ch.EventWriter(ends.events).emit(big)
        os._exit(0)
    ends.close()
    got: list[ev.WorkerEvent] = []
    eof = False
    while not eof:
        batch, eof = channel.read()
        got += batch
    os.waitpid(pid, 0)
    assert got == [big]
    channel.close()


def test_a_forked_child_closes_every_supervisor_end_it_inherited() -> None:
    pairs = [ch.open_channel(CTX) for _ in range(3)]
    try:
        fds = [c.events for c, _ in pairs] + [c.jobs.fileno() for c, _ in pairs if c.jobs]
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            ch.close_inherited()
            still = [fd for fd in fds if _is_open(fd)]
            os.write(w, repr(still).encode())
            os._exit(0)
        os.waitpid(pid, 0)
        os.close(w)
        assert os.read(r, 1000) == b"[]"
        os.close(r)
        assert all(_is_open(fd) for fd in fds), "the supervisor's own ends must stay open"
    finally:
        for c, e in pairs:
            e.close()
            c.close()


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


# -- the pool's hand-out rules ------------------------------------------------------------------
class _Chan:
    def __init__(self) -> None:
        self.got: list[ev.Job] = []
        self.jobs: Any = object()
        self.events = -1
        self.gone = False

    def send(self, job: ev.Job) -> None:
        if self.gone:
            raise BrokenPipeError
        self.got.append(job)

    def read(self) -> tuple[list[ev.WorkerEvent], bool]:
        return [], True

    def close(self) -> None:
        self.jobs = None


class _Proc:
    def __init__(self) -> None:
        self.sentinel = os.open(os.devnull, os.O_RDONLY)
        self.exitcode = -9

    def join(self, timeout: float | None = None) -> None:
        pass


def _pool(workers: int) -> tuple[Pool, dict[int, _Chan]]:
    pool = Pool(account=None, ctx=None)  # type: ignore[arg-type]  # neither is used here
    chans = {}
    for wid in range(workers):
        chans[wid] = _Chan()
        pool.procs[wid], pool.channels[wid] = _Proc(), chans[wid]  # type: ignore[assignment]
        pool.ready.append(wid)
    return pool, chans


def _sync(name: str) -> ev.SyncFolder:
    return ev.SyncFolder(pair=FolderPair(far=name, near=name, far_exists=True, near_exists=True))


def test_jobs_wait_for_a_worker_that_finished_its_last_one() -> None:
    pool, chans = _pool(2)
    for name in "abcd":
        pool.put(_sync(name))
    assert [j.pair.far for j in chans[0].got] == ["a"] and [j.pair.far for j in chans[1].got] == ["b"]
    assert [j.pair.far for j in pool.backlog] == ["c", "d"]
    pool._seen(1, ev.JobStarted(worker=1, folder="b"))
    pool._seen(1, ev.JobDone(worker=1, folder="b", stats=ev.FolderStats()))
    pool._hand_out()
    assert [j.pair.far for j in chans[1].got] == ["b", "c"]
    pool._seen(0, ev.JobFailed(worker=0, folder="a", scope="account", message="login refused"))
    pool._hand_out()
    assert len(chans[0].got) == 1, "a worker that stops itself is handed nothing more"
    assert [j.pair.far for j in pool.backlog] == ["d"]


def test_a_job_handed_to_a_worker_that_died_before_starting_it_goes_to_another() -> None:
    async def go() -> None:
        pool, _ = _pool(2)
        pool.put(_sync("a"))
        pool.put(_sync("b"))
        pool._seen(1, ev.JobStarted(worker=1, folder="b"))  # 1 started b; 0 never started a
        pool.exited(0)
        pool.exited(1)
        deaths = [pool.inbox.get_nowait() for _ in range(2)]
        assert deaths == [WorkerDied(worker=0, exitcode=-9), WorkerDied(worker=1, exitcode=-9)]
        assert [j.pair.far for j in pool.backlog] == ["a"], "b is the schedule's to retry, a is not lost"
        pool.procs[2], pool.channels[2] = _Proc(), _Chan()  # type: ignore[assignment]
        pool.ready.append(2)
        pool._hand_out()
        assert [j.pair.far for j in pool.channels[2].got] == ["a"]  # type: ignore[attr-defined]

    asyncio.run(go())


def test_a_send_to_a_worker_that_is_leaving_keeps_the_job() -> None:
    pool, chans = _pool(2)
    chans[0].gone = True
    pool.put(_sync("a"))
    assert [j.pair.far for j in chans[1].got] == ["a"]
    assert not pool.backlog and 0 not in pool.handed


def test_a_discovery_is_handed_on_only_when_another_worker_lives() -> None:
    async def go() -> None:
        pool, _ = _pool(1)
        pool.put(ev.Discover())
        pool.exited(0)
        assert not pool.backlog, "no worker left: the sync fails on it instead of a later worker"
        pool, _ = _pool(2)
        pool.ready.clear()
        pool.ready.append(0)
        pool.put(ev.Discover())
        pool.exited(0)
        assert list(pool.backlog) == [ev.Discover()]

    asyncio.run(go())
