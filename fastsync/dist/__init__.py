"""``fastsync[dist]``: a migration batch spread over many machines, on RQ with a Redis broker.

Imported only by ``fastsync migrate --queue``, ``fastsync worker`` and ``fastsync batch``; the
core install never needs rq or redis. Modules: queue (connect, enqueue a slice, the batch from
a CSV), records (the accounts in Redis, fenced updates), lease (account lock, server
semaphore), policy (what follows a slice), job (one slice of one account), sweep (orphans),
worker (the RQ worker loop), status (status, report, retry), cli (argument parsing).
"""

from __future__ import annotations

import importlib.util

from fastsync.errors import ConfigError

MISSING = "`--queue` needs the optional extra: pip install 'fastsync[dist]'"


class MissingExtra(ConfigError):
    """rq or redis is not installed."""


def require() -> None:
    """MissingExtra (one line) unless rq and redis can be imported."""
    for module in ("rq", "redis"):
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise MissingExtra(MISSING)
