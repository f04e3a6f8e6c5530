"""One account's worker processes, and the jobs they are handed (as rq's worker_pool keeps its workers).

Workers are forked explicitly (``fork``: they inherit the supervisor's imports; the child
drops the loop's signal plumbing itself, workers.detach_from_supervisor). Each worker has its
own two pipes (workers.channel): nothing is shared between workers, so one killed at any
moment blocks nobody. The pool hands the next job to a worker that has finished its last one
(jobs wait here, in order, until one has); a job handed to a worker that dies before starting
it is handed to another. Each worker's exit is seen at once through its process sentinel and
becomes a ``WorkerDied`` in the pool's inbox, behind every event the worker sent before it died.
A pool outlives a sync when its account holds its connections open (``holdconnectionopen``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from fastsync import events as ev
from fastsync.config import AccountConfig
from fastsync.workers.channel import Channel, open_channel
from fastsync.workers.worker import WorkerSpec, worker_main

STOP_DEADLINE = 30.0  # seconds a stopping worker gets to commit and leave before it is killed


class WorkerDied(msgspec.Struct):
    worker: int
    exitcode: int | None


# The worker stops itself after these (an account-wide failure, a bad config, a stop request).
_LAST = ("account", "config", "interrupted")


@dataclass
class Pool:
    account: AccountConfig
    ctx: Any  # the multiprocessing context
    inbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)  # this pool's events and deaths
    procs: dict[int, Any] = field(default_factory=dict)
    channels: dict[int, Channel] = field(default_factory=dict)
    ready: deque[int] = field(default_factory=deque)  # workers waiting for a job, first come first
    backlog: deque[ev.Job] = field(default_factory=deque)  # jobs waiting for a worker, in order
    handed: dict[int, ev.Job] = field(default_factory=dict)  # a worker's job it has not started yet
    stale: bool = False  # the config changed (SIGHUP): the workers' copy of it is old

    def put(self, job: ev.Job) -> None:
        self.backlog.append(job)
        self._hand_out()

    def _hand_out(self) -> None:
        while self.ready and self.backlog:
            wid = self.ready.popleft()
            if wid not in self.procs:
                continue
            job = self.backlog.popleft()
            try:
                self.channels[wid].send(job)
            except OSError:  # it is leaving (its death is on the way): the job waits for another
                self.backlog.appendleft(job)
                continue
            self.handed[wid] = job

    def spawn(self, spec: WorkerSpec, on_exit: Callable[[int], None]) -> None:
        """Start the worker ``spec.worker``; ``on_exit(worker)`` runs on the loop when it exits."""
        wid = spec.worker
        channel, ends = open_channel(self.ctx)
        proc = self.ctx.Process(
            target=worker_main, args=(spec, ends), name=f"fastsync-worker-{wid}", daemon=True
        )
        proc.start()
        ends.close()
        self.procs[wid], self.channels[wid] = proc, channel
        loop = asyncio.get_running_loop()
        loop.add_reader(channel.events, self._read, wid)
        loop.add_reader(proc.sentinel, on_exit, wid)
        self.ready.append(wid)
        self._hand_out()

    def _read(self, wid: int) -> None:
        channel = self.channels[wid]
        events, eof = channel.read()
        if eof:
            asyncio.get_running_loop().remove_reader(channel.events)
        for e in events:
            self._seen(wid, e)
            self.inbox.put_nowait(e)
        self._hand_out()

    def _seen(self, wid: int, e: ev.WorkerEvent) -> None:
        """Keep track of who holds what: a started job is the schedule's to follow; a worker that
        reported its job's end (and goes on) is ready for the next one."""
        if isinstance(e, ev.JobStarted):
            self.handed.pop(wid, None)
        elif isinstance(e, ev.Discovered | ev.JobDone | ev.JobFailed):
            self.handed.pop(wid, None)
            if not (isinstance(e, ev.JobFailed) and e.scope in _LAST):
                self.ready.append(wid)

    def exited(self, wid: int) -> None:
        """The sentinel of ``wid`` fired: read its last events, reap it, queue its death behind
        them, and hand a job it had not started to another worker."""
        proc, channel = self.procs[wid], self.channels[wid]
        loop = asyncio.get_running_loop()
        loop.remove_reader(proc.sentinel)
        with contextlib.suppress(ValueError, OSError):
            loop.remove_reader(channel.events)
        # The sentinel fires when the child's descriptors close, a moment before it can be
        # reaped: a blocking reap (join with a timeout) gets the real exit status, not None.
        proc.join(1)
        events, _eof = channel.read()  # the child is gone: all it wrote is there, then EOF
        for e in events:
            self._seen(wid, e)
            self.inbox.put_nowait(e)
        channel.close()
        self.ready = deque(w for w in self.ready if w != wid)
        job = self.handed.pop(wid, None)
        # A discovery goes to another worker only if there is one; else the sync fails on it.
        if job is not None and (not isinstance(job, ev.Discover) or len(self.procs) > 1):
            self.backlog.appendleft(job)
        self.inbox.put_nowait(WorkerDied(worker=wid, exitcode=proc.exitcode))
        self._hand_out()

    def forget_dead(self) -> list[int]:
        """Between syncs only deaths matter: drop workers that exited while idle; their ids."""
        gone = []
        while not self.inbox.empty():
            e = self.inbox.get_nowait()
            if isinstance(e, WorkerDied):
                self.procs.pop(e.worker, None)
                self.channels.pop(e.worker, None)
                gone.append(e.worker)
        self.backlog.clear()
        return gone

    def forget(self, wid: int) -> None:
        self.procs.pop(wid, None)
        self.channels.pop(wid, None)

    async def shutdown(self, aborting: Callable[[], bool]) -> list[int]:
        """Ask every worker to stop, wait for them (killing after a deadline, or at once when
        ``aborting()``); the ids of the workers that were stopped."""
        self.backlog.clear()
        if not self.procs:
            return []
        for wid in self.procs:
            channel = self.channels[wid]
            if channel.jobs is not None:  # else it is dead already
                with contextlib.suppress(OSError):  # it died a moment ago: its death is on the way
                    channel.send(ev.Stop())
        alive, deadline = set(self.procs), time.monotonic() + STOP_DEADLINE
        while alive and not aborting():
            try:
                e = await asyncio.wait_for(self.inbox.get(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
            if isinstance(e, WorkerDied):
                alive.discard(e.worker)
        loop = asyncio.get_running_loop()
        for wid, proc in self.procs.items():
            if proc.is_alive():
                proc.kill()
            proc.join(1)
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(proc.sentinel)
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(self.channels[wid].events)
            self.channels[wid].close()
        stopped = list(self.procs)
        self.procs.clear()
        self.channels.clear()
        self.ready.clear()
        self.handed.clear()
        while not self.inbox.empty():  # deaths of the workers just stopped
            self.inbox.get_nowait()
        return stopped

    def close(self) -> None:
        for channel in self.channels.values():
            channel.close()
