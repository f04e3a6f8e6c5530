"""One account's worker processes and their job queue (as rq's worker_pool keeps its workers).

Workers are forked explicitly (``fork``: they inherit the supervisor's imports; the child
drops the loop's signal plumbing itself, workers.detach_from_supervisor). Each worker's exit
is seen at once through its process sentinel and becomes a ``WorkerDied`` in the pool's inbox,
in order with the events the worker sent before it died. A pool outlives a sync when its
account holds its connections open (``holdconnectionopen``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from fastsync import events as ev
from fastsync.config import AccountConfig
from fastsync.workers.worker import WorkerSpec, worker_main

STOP_DEADLINE = 30.0  # seconds a stopping worker gets to commit and leave before it is killed


class WorkerDied(msgspec.Struct):
    worker: int
    exitcode: int | None


@dataclass
class Pool:
    account: AccountConfig
    ctx: Any  # the multiprocessing context
    events: Any  # the queue every worker sends its events on
    jobs: Any = None
    inbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)  # this pool's events and deaths
    procs: dict[int, Any] = field(default_factory=dict)
    stale: bool = False  # the config changed (SIGHUP): the workers' copy of it is old

    def __post_init__(self) -> None:
        self.jobs = self.ctx.Queue()

    def put(self, job: ev.Job) -> None:
        self.jobs.put(ev.job_encoder.encode(job))

    def spawn(self, spec: WorkerSpec, on_exit: Callable[[int], None]) -> None:
        """Start the worker ``spec.worker``; ``on_exit(worker)`` runs on the loop when it exits."""
        proc = self.ctx.Process(
            target=worker_main,
            args=(spec, self.jobs, self.events),
            name=f"fastsync-worker-{spec.worker}",
            daemon=True,
        )
        proc.start()
        self.procs[spec.worker] = proc
        asyncio.get_running_loop().add_reader(proc.sentinel, on_exit, spec.worker)

    def exited(self, wid: int) -> None:
        """The sentinel of ``wid`` fired: reap it and queue its death behind its last events."""
        proc = self.procs[wid]
        asyncio.get_running_loop().remove_reader(proc.sentinel)
        # The sentinel fires when the child's descriptors close, a moment before it can be
        # reaped: a blocking reap (join with a timeout) gets the real exit status, not None.
        proc.join(1)
        self.inbox.put_nowait(WorkerDied(worker=wid, exitcode=proc.exitcode))

    def forget_dead(self) -> list[int]:
        """Between syncs only deaths matter: drop workers that exited while idle; their ids."""
        gone = []
        while not self.inbox.empty():
            e = self.inbox.get_nowait()
            if isinstance(e, WorkerDied):
                self.procs.pop(e.worker, None)
                gone.append(e.worker)
        return gone

    async def shutdown(self, aborting: Callable[[], bool]) -> list[int]:
        """Ask every worker to stop, wait for them (killing after a deadline, or at once when
        ``aborting()``); the ids of the workers that were stopped."""
        if not self.procs:
            return []
        for _ in self.procs:
            self.put(ev.Stop())
        alive, deadline = set(self.procs), time.monotonic() + STOP_DEADLINE
        while alive and not aborting():
            try:
                e = await asyncio.wait_for(self.inbox.get(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
            if isinstance(e, WorkerDied):
                alive.discard(e.worker)
        loop = asyncio.get_running_loop()
        for proc in self.procs.values():
            if proc.is_alive():
                proc.kill()
            proc.join(1)
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(proc.sentinel)
        stopped = list(self.procs)
        self.procs.clear()
        while not self.inbox.empty():  # deaths of the workers just stopped
            self.inbox.get_nowait()
        return stopped

    def close(self) -> None:
        self.jobs.close()
