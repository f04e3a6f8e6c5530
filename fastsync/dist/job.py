"""The RQ job: advance one account for at most one slice, then queue what comes next.

``run_slice(account)`` runs in an RQ work horse. It ends at once when it is not the job the
account record names (a stale or duplicated job) or when another runner holds the account's
lock. Otherwise, under the lock (renewed with the leases on the supervisor's loop), it takes
up to ``workers`` connection leases on the source server, runs the ordinary migration (folders
in parallel, ``fastsync.migrate.run_jobs``) for at most ``slice`` seconds, adds the slice's
results to the record and, by policy.decide, marks the account final or queues its next job
(at once, after a wait, or after a retry backoff). Passwords are read here, from the
references in the record, and exist only in this process and its children.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from fastsync.dist.lease import AccountLock, ServerLeases
from fastsync.dist.policy import Decision, decide
from fastsync.dist.queue import PREFIX, REDIS_ERRORS, enqueue_slice
from fastsync.dist.records import ACTIVE, Account, Batch
from fastsync.errors import ConfigError, ExitCode
from fastsync.migrate.cli import build_parser
from fastsync.migrate.jobs import Job, run_jobs
from fastsync.migrate.batch import resolve_password
from fastsync.migrate.report import totals
from fastsync.supervisor import RunControl
from fastsync.migrate.urls import parse_endpoint

log = logging.getLogger(__name__)

METADATA_ENV = "FASTSYNC_DIST_METADATA"  # set by `fastsync worker --metadata`
LEASE_WAIT = 10.0  # seconds a slice waits for a free connection before it queues itself again
T = TypeVar("T")


def run_slice(account: str) -> dict[str, Any]:
    from rq import get_current_job

    job = get_current_job()
    assert job is not None, "run_slice runs as an RQ job"
    batch = Batch(job.connection, PREFIX)
    rec = batch.account(account)
    if rec is None or rec.job_id != job.id or rec.status not in ACTIVE:
        log.info("account %s: job %s is stale (the record names %s); nothing to do", account, job.id,
                 rec.job_id if rec else None)
        return {"account": account, "outcome": "stale"}
    lock = AccountLock(batch.redis, PREFIX, account, float(rec.opts["lock_ttl"]))
    if lock.acquire() is None:
        log.info("account %s: another runner holds its lock; it queues the next slice", account)
        return {"account": account, "outcome": "held elsewhere"}
    try:
        return _Slice(batch, rec, lock).run()
    finally:
        _retrying(lock.release, 10.0)


class _Slice:
    def __init__(self, batch: Batch, rec: Account, lock: AccountLock) -> None:
        self.batch, self.rec, self.lock = batch, rec, lock
        self.opts = rec.opts
        self.ttl = float(self.opts["lock_ttl"])
        self.token = lock.token
        cap = int(self.opts.get("max_per_server") or 0)
        self.leases = ServerLeases(batch.redis, PREFIX, rec.get("server"), cap, self.ttl) if cap else None
        self.last_ok = time.monotonic()
        self.lost = False
        self.done = threading.Event()

    # -- heartbeat ----------------------------------------------------------------------------
    def beat(self) -> bool:
        """Renew the lock and the leases; False once they are lost, or unconfirmed for a TTL."""
        try:
            ok = self.lock.renew() and (self.leases is None or self.leases.renew())
            if ok:
                self.batch.update(self.rec.id, self.token)
                self.last_ok = time.monotonic()
            return ok
        except REDIS_ERRORS as e:
            log.warning("account %s: heartbeat failed (%s)", self.rec.id, e)
            return time.monotonic() - self.last_ok < self.ttl

    def _beating(self) -> None:
        # A thread, so that the lock is renewed through the whole slice (the preflight logins
        # too), not only while the supervisor's loop runs. It touches nothing the supervisor's
        # forked workers use: they never call Redis.
        while not self.done.wait(max(0.1, self.ttl / 3)):
            if not self.beat():
                self.lost = True
                return

    def _still_ours(self) -> bool:
        return not self.lost

    # -- the slice ----------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        heart = threading.Thread(target=self._beating, name="fastsync-heartbeat", daemon=True)
        heart.start()
        try:
            return self._run()
        finally:
            self.done.set()
            heart.join(5)

    def _run(self) -> dict[str, Any]:
        acct = self.rec.id
        wanted = max(1, int(self.opts.get("workers") or 1))
        got = self._take_leases(wanted)
        try:
            if got == 0:
                delay = random.uniform(0.5, 2.0)
                self._advance(Decision("wait", delay=delay, error_class="cap"), {}, 0.0)
                return {"account": acct, "outcome": "waited for a connection lease"}
            started = () if self.rec.get("started_at") else ("started_at",)
            self.batch.update(acct, self.token, set={"status": "running", "runner": _runner()},
                              incr={"slices": 1}, stamp=started)
            self.batch.redis.hsetnx(f"{PREFIX}:batch", "started_at", self.batch.now_ms())
            code, result, seconds = self._migrate(got)
        finally:
            if self.leases is not None:
                _retrying(self.leases.release, 10.0)
        if self.lost:
            return {"account": acct, "outcome": "lock lost; results dropped"}
        texts = result.get("errors", [])
        attempts = int(self.rec.num("attempts")) + 1
        d = decide(code, texts, attempts=attempts, retries=int(self.opts["retries"]),
                   base=float(self.opts["retry_backoff"]))
        self._advance(d, result, seconds, code=code, attempts=attempts)
        return {"account": acct, "outcome": d.action, "exit_code": code}

    def _take_leases(self, wanted: int) -> int:
        if self.leases is None:
            return wanted
        deadline = time.monotonic() + min(LEASE_WAIT, self.ttl / 2)
        while True:
            got = self.leases.acquire(wanted)
            if got or time.monotonic() >= deadline:
                return got
            time.sleep(random.uniform(0.1, 0.4))
            if self.lost:
                return 0

    def _migrate(self, connections: int) -> tuple[int, dict[str, Any], float]:
        args = _migrate_args(self.opts, connections)
        try:
            job = Job(
                parse_endpoint(self.rec.get("src_url"), "SRC", plain=args.no_tls1),
                parse_endpoint(self.rec.get("dst_url"), "DST", plain=args.no_tls2),
                resolve_password(self.rec.get("password1"), "SRC"),
                resolve_password(self.rec.get("password2"), "DST"),
            )
        except ConfigError as e:
            return int(ExitCode.CONFIG), {"errors": [str(e)]}, 0.0
        control = RunControl(stop_after=float(self.opts["slice"]), watch=self._still_ours,
                             watch_every=max(0.1, self.ttl / 6))
        began = time.monotonic()
        code = run_jobs([job], args, control)[0]
        r = job.result
        texts = list(r.errors) + [f.error for f in r.folders.values() if f.error]
        texts += [t for f in r.folders.values() for t in f.message_errors]
        return code, {"totals": totals(r), "errors": texts}, time.monotonic() - began

    def _advance(self, d: Decision, result: dict[str, Any], seconds: float, *, code: int | None = None,
                 attempts: int = 0) -> None:
        acct = self.rec.id
        t = result.get("totals", {})
        values: dict[str, Any] = {"error_class": d.error_class, "error": d.reason[:500]}
        if code is not None:
            values["exit_code"] = code
        if t:
            values.update(found=t["found"], skipped=t["skipped"], failed=t["failed"])
        if d.action == "retry" or (d.action == "failed" and d.error_class in ("network", "account")):
            values["attempts"] = attempts
        elif d.action == "failed":
            values["attempts"] = max(1, int(self.rec.num("attempts")))
        incr = {"copied": t.get("copied", 0), "bytes": t.get("bytes", 0), "seconds": round(seconds, 3)}
        if d.action in ("done", "partial", "failed"):
            copied = self.rec.num("copied") + incr["copied"]
            if t:
                values["present"] = max(0, int(t["found"] - copied - t["skipped"] - t["failed"]))
            values["status"] = d.action
            _retrying(lambda: self.batch.update(acct, self.token, set=values, incr=incr,
                                                stamp=("finished_at",)), 60.0)
            log.info("account %s: %s (exit %s) %s", acct, d.action, code, d.reason)
            return
        values["status"] = "queued"
        nxt = _retrying(lambda: self.batch.update(acct, self.token, set=values, incr=incr, next_job=True), 60.0)
        if nxt is None:
            log.warning("account %s: lock lost before queueing the next slice", acct)
            return
        timeout = float(self.opts["job_timeout"])
        _retrying(lambda: enqueue_slice(self.batch.redis, acct, nxt, d.delay, timeout), 60.0)
        log.info("account %s: %s; next slice %s in %.1f s", acct, d.action, nxt, d.delay)


def _migrate_args(opts: dict[str, Any], connections: int) -> Any:
    args = build_parser().parse_args([])
    for name, value in opts.items():
        if hasattr(args, name):
            setattr(args, name, value)
    args.workers = connections
    args.metadata = os.environ.get(METADATA_ENV) or args.metadata
    args.quiet = True
    args.batch = args.queue = None
    return args


def _runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()} ({os.environ.get('RQ_WORKER_ID', '?')})"


def _retrying(fn: Callable[[], T], patience: float) -> T:
    """Call ``fn``; while Redis is unreachable, try again for up to ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while True:
        try:
            return fn()
        except REDIS_ERRORS as e:
            if time.monotonic() >= deadline:
                raise
            log.warning("Redis unreachable (%s); trying again", e)
            time.sleep(0.5)
