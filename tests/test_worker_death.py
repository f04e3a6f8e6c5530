"""A worker killed (SIGKILL, the OOM killer) at any moment must not stop its account's other
workers: no lock may be shared between the worker processes on the job or the event channel.

The hazard this guards against: with one multiprocessing queue per account, an idle worker
waiting in ``Queue.get()`` holds the queue's cross-process read lock; killed there, it never
releases it, and no other worker of the account can take a job again."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest

from tests.faultkit import JsonRun, workers_of
from tests.syncenv import SyncEnv, contents
from tools.corpus import add_messages

pytestmark = pytest.mark.dovecot

BIG = ["Big1", "Big2"]
SMALL = ["S1", "S2", "S3", "S4", "S5"]
BIG_COUNT, SMALL_COUNT = 800, 3


def _env(dovecot, imap_user, tmp_path) -> SyncEnv:
    for i, folder in enumerate(BIG):
        add_messages(imap_user.maildir, folder, BIG_COUNT, seed=i + 1)
    for i, folder in enumerate(SMALL):
        add_messages(imap_user.maildir, folder, SMALL_COUNT, seed=10 + i)
    env = SyncEnv(dovecot, imap_user, tmp_path)
    env.remote_opts["maxconnections"] = "3"
    env.write_config()
    return env


def _until(check, timeout: float, what: str, run: JsonRun):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        assert run.proc.poll() is None, f"fastsync exited early while waiting for {what}: {run.seen()}"
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}: {run.seen()}")


def _pids(run: JsonRun) -> dict[int, int]:
    return {e["worker"]: e["pid"] for e in run.seen() if e["type"] == "worker_up"}


def _done(run: JsonRun) -> set[str]:
    return {e["folder"] for e in run.seen() if e["type"] == "job_done"}


def test_a_worker_killed_while_idle_does_not_stop_the_others_taking_the_next_job(
    dovecot, imap_user, tmp_path
):
    """Three workers: two hold the big folders (stopped, so the order is certain), the third
    syncs the small ones and goes idle, waiting for a job; it is killed there. Then one big
    folder's worker is killed too, so its folder is queued again: the surviving worker must
    take it, and the run must end soon after, with every folder complete."""
    env = _env(dovecot, imap_user, tmp_path)
    run = JsonRun(env)
    stopped: list[psutil.Process] = []
    try:
        def big_busy() -> list[int]:
            pids = [pid for pid, folder in run.busy().items() if folder in BIG]
            return pids if len(pids) == 2 else []

        for pid in _until(big_busy, 60, "both big folders started", run):
            p = psutil.Process(pid)
            p.suspend()
            stopped.append(p)
        _until(lambda: set(SMALL) <= _done(run), 60, "the small folders done by the third worker", run)
        idle = [pid for pid in _pids(run).values() if pid not in {p.pid for p in stopped}]
        assert len(idle) == 1, f"expected one idle worker beside the two stopped ones: {run.seen()}"
        assert idle[0] in [p.pid for p in workers_of(run.proc.pid)], "the idle worker is not a worker"
        time.sleep(0.5)  # it is waiting for its next job
        victim = psutil.Process(idle[0])
        victim.kill()
        assert psutil.wait_procs([victim], timeout=10)[0], "the kill of the idle worker did not land"
        busy_victim = stopped.pop(0)  # the other stopped worker must take this one's folder
        busy_victim.kill()
        assert psutil.wait_procs([busy_victim], timeout=10)[0], "the kill of a busy worker did not land"
        for p in stopped:
            p.resume()
        killed_at = time.monotonic()
    finally:
        for p in stopped:
            p.resume()
        try:
            code, err = run.finish(timeout=90)
        except subprocess.TimeoutExpired:
            tail = [(e["type"], e.get("worker"), e.get("folder"), e.get("text")) for e in run.seen()[-8:]]
            raise AssertionError(f"the run hung after the kills (stopped at 90 s): {tail}") from None
    took = time.monotonic() - killed_at
    events = run.seen()
    assert code == 0, f"exit {code}\n{err}\n{events}"
    warnings = [e["text"] for e in events if e["type"] == "warning"]
    assert any(t.endswith("; trying again") and "exit -9" in t for t in warnings), warnings
    (done,) = [e for e in events if e["type"] == "account_done"]
    want = len(BIG + SMALL) + 1  # and the (empty) INBOX
    assert (done["state"], done["folders"], done["folders_failed"]) == ("ok", want, 0), done
    for folder in BIG + SMALL:
        far, near = contents(env.server_folder(folder)), contents(env.local_folder(folder))
        assert far == near, f"folder {folder!r} differs"
        assert len(far) == (BIG_COUNT if folder in BIG else SMALL_COUNT), folder
    # Workers that saw the deaths must still stop at once when the work is done: well inside
    # the pool's stop deadline (30 s), after which a stuck worker is killed.
    last_done = max(e["time"] for e in events if e["type"] == "job_done")
    ended = max(e["time"] for e in events)
    assert ended - last_done < 10, f"the run took {ended - last_done:.1f} s to end after its last job"
    print(f"idle worker killed: the run ended {took:.1f} s after the kills")
