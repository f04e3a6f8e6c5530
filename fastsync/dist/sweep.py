"""Orphans: accounts whose job died with its machine, and delayed jobs no scheduler moved.

Every ``fastsync worker`` runs a sweeper process. An active account is an orphan when nobody
holds its lock, nothing was recorded for it for two lock TTLs (``touched``), and its current
job can no longer run it: the job is gone, ended (finished, failed, stopped), started but
older than that grace (its work horse died before taking the lock), or queued but no longer
in the queue (taken by a worker that died). The sweeper then gives the account a new job id
(compare-and-set on the old one, so two sweepers revive it once) and queues it. An account
revived ``MAX_REVIVALS`` times is failed ("its worker died every time").

A delayed job whose time passed ``OVERDUE`` seconds ago is moved to the queue: the worker
that ran RQ's scheduler may have died, and RQ's scheduler lock lasts a minute after that.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

from fastsync.dist.queue import PREFIX, REDIS_ERRORS, enqueue_slice, rq_queue
from fastsync.dist.records import ACTIVE, Account, Batch

log = logging.getLogger(__name__)

MAX_REVIVALS = 5
OVERDUE = 5.0


def sweep(conn: Any) -> list[str]:
    """One pass over the batch; returns the accounts revived."""
    batch = Batch(conn, PREFIX)
    q = rq_queue(conn)
    now = batch.now_ms()
    revived = []
    for acct in batch.accounts():
        if acct.status not in ACTIVE or batch.locked(acct.id):
            continue
        grace = 2000 * float(acct.opts.get("lock_ttl", 60))
        if now - acct.num("touched") < grace:
            continue
        if _job_alive(conn, q, acct.job_id, now, grace):
            continue
        if acct.num("revivals") >= MAX_REVIVALS:
            text = f"its worker died {MAX_REVIVALS} times during a slice"
            batch.update(acct.id, None, set={"status": "failed", "error_class": "crashed", "error": text},
                         stamp=("finished_at",))
            log.error("account %s: failed: %s", acct.id, text)
            continue
        if _revive(batch, acct):
            revived.append(acct.id)
    return revived


def _revive(batch: Batch, acct: Account) -> bool:
    new = batch.revive(acct.id, acct.job_id)
    if new is None:
        return False
    log.warning("account %s: job %s was orphaned; queued %s", acct.id, acct.job_id, new)
    enqueue_slice(batch.redis, acct.id, new, 0, float(acct.opts.get("job_timeout", 1800)))
    return True


def _job_alive(conn: Any, q: Any, job_id: str, now_ms: int, grace_ms: float) -> bool:
    try:
        job = Job.fetch(job_id, connection=conn, serializer=JSONSerializer)
    except NoSuchJobError:
        return False
    status = job.get_status(refresh=False)
    if status == JobStatus.SCHEDULED:
        due = q.scheduled_job_registry.get_scheduled_time(job_id).timestamp()
        if time.time() - due > OVERDUE and q.scheduled_job_registry.remove(job_id):
            log.warning("job %s is %.0f s overdue; queued without the scheduler", job_id, time.time() - due)
            q.enqueue_job(job)
        return True
    if status == JobStatus.DEFERRED:
        return True
    if status == JobStatus.QUEUED:
        # Still on the queue: a worker will take it. Only on RQ's intermediate list (taken off the
        # queue by a worker that never started it) past the grace period: that worker is gone,
        # and RQ's own clean-up of that list may be many minutes away. A revived account names a
        # new job, so the old one, should it still start, ends at once.
        return conn.lpos(q.key, job_id) is not None
    if status == JobStatus.STARTED:
        started = job.started_at.timestamp() * 1000 if job.started_at else 0
        return now_ms - started < grace_ms
    return False  # finished, failed, stopped, canceled


def sweep_loop(url: str, every: float) -> None:
    """The sweeper process: a pass every ``every`` seconds, through Redis outages."""
    from fastsync.dist.queue import connect

    conn = connect(url)
    while True:
        try:
            sweep(conn)
        except REDIS_ERRORS as e:
            log.info("sweeper: Redis unreachable (%s)", e)
        time.sleep(every)
