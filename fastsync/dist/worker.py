"""``fastsync worker --queue URL``: an RQ worker (JSON serializer, with the scheduler) and a sweeper.

The RQ worker forks a work horse per job (fastsync.dist.job.run_slice). RQ's own loop gives
up when Redis goes away in the middle of its bookkeeping, so this loop starts a new worker
after a pause until it is asked to stop (SIGINT/SIGTERM: RQ's warm shutdown, which lets the
current slice finish). The sweeper (sweep.py) is a child process that dies with the worker.
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import time
from pathlib import Path
from typing import Any

from rq import Worker
from rq.serializers import JSONSerializer

from fastsync.dist.job import METADATA_ENV
from fastsync.dist.queue import REDIS_ERRORS, connect, describe, rq_queue
from fastsync.dist.sweep import sweep_loop

log = logging.getLogger(__name__)


class FastsyncWorker(Worker):
    """RQ's forking worker, quicker to reconnect and to take over the scheduler."""

    max_connection_wait_time = 5.0
    stop_asked = False

    def request_stop(self, signum: Any, frame: Any) -> None:
        self.stop_asked = True  # RQ's own flag is set only when a job is running
        super().request_stop(signum, frame)  # type: ignore[no-untyped-call]


def run_worker(
    url: str, *, name: str | None, metadata: str, burst: bool, sweep_every: float, processes: int = 1
) -> int:
    """Run ``processes`` RQ workers on this machine (each runs one account at a time) and a sweeper."""
    conn = connect(url)
    Path(os.path.expanduser(metadata)).mkdir(parents=True, exist_ok=True, mode=0o700)
    os.environ[METADATA_ENV] = os.path.expanduser(metadata)
    import fastsync.dist.job  # noqa: F401  (imported once here, inherited by every work horse)

    sweeper = mp.get_context("fork").Process(target=sweep_loop, args=(url, sweep_every), daemon=True,
                                            name="fastsync-sweeper")
    sweeper.start()
    log.info("%d worker(s) on %s (metadata %s)", processes, describe(url), metadata)
    ctx = mp.get_context("fork")
    others = [
        ctx.Process(target=_work_child, args=(url, f"{name}.{i}" if name else None, burst),
                    name=f"fastsync-worker-{i}")  # not daemonic: its work horses fork
        for i in range(1, max(1, processes))
    ]
    for proc in others:
        proc.start()
    try:
        return _work(conn, name, burst)
    finally:
        for proc in others:
            proc.join(None if burst else 0.1)
            if proc.is_alive():
                proc.terminate()
                proc.join(30)
        sweeper.terminate()
        sweeper.join(5)


def _work_child(url: str, name: str | None, burst: bool) -> None:
    _work(connect(url), name, burst)  # its own connection: none is shared across a fork


def _work(conn: Any, name: str | None, burst: bool) -> int:
    round_ = 0
    while True:
        worker_name = None if name is None else (name if round_ == 0 else f"{name}-{round_}")
        worker = FastsyncWorker([rq_queue(conn)], connection=conn, serializer=JSONSerializer,
                                name=worker_name, maintenance_interval=30)
        try:
            worker.work(burst=burst, with_scheduler=True, logging_level="INFO")
        except REDIS_ERRORS as e:
            log.warning("worker: Redis unreachable (%s)", e)
        if worker.stop_asked or burst:
            return 0
        round_ += 1
        log.warning("worker: the RQ loop ended (Redis lost?); starting again in 2 s")
        time.sleep(2.0)
