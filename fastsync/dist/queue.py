"""The Redis connection, the RQ queue (JSON serializer) and putting an account's next slice on it."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from fastsync.errors import ConfigError

log = logging.getLogger(__name__)

QUEUE = "fastsync"
PREFIX = "fastsync"
JOB_FUNC = "fastsync.dist.job.run_slice"
RESULT_TTL = 600
FAILURE_TTL = 7 * 86400
REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def connect(url: str) -> Any:
    """A client for ``redis://HOST:PORT/DB`` (or rediss://, unix://); ConfigError when malformed.
    The URL may carry a Redis password; it is never printed (only host, port and db are)."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(f"--queue {describe(url)!r}: expected redis://HOST:PORT/DB")
    try:
        return redis.Redis.from_url(
            url, socket_connect_timeout=5, socket_timeout=30, health_check_interval=15
        )
    except ValueError as e:
        raise ConfigError(f"--queue {describe(url)!r}: {e}") from None


def describe(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def rq_queue(conn: Any) -> Queue:
    return Queue(QUEUE, connection=conn, serializer=JSONSerializer)


def enqueue_slice(conn: Any, account: str, job_id: str, delay: float, timeout: float) -> None:
    """Queue the job ``job_id`` that advances ``account`` (after ``delay`` seconds, through
    RQ's scheduler, when positive)."""
    q = rq_queue(conn)
    kwargs: dict[str, Any] = {
        "job_id": job_id,
        "job_timeout": int(timeout),
        "result_ttl": RESULT_TTL,
        "failure_ttl": FAILURE_TTL,
        "description": f"fastsync migrate account {account}",
    }
    if delay > 0:
        q.enqueue_in(timedelta(seconds=delay), JOB_FUNC, account, **kwargs)
    else:
        q.enqueue(JOB_FUNC, account, **kwargs)
    log.debug("queued %s for account %s (in %.1f s)", job_id, account, delay)
