"""Leases in Redis that a dead holder cannot keep: the account lock and the server semaphore.

Both run as Lua scripts on the Redis server and read its clock (``TIME``), so the machines'
clocks never matter and each step is atomic.

- ``AccountLock``: one runner per account across machines. Acquiring increments the
  account's fencing counter and stores that number as the lock's value with a TTL; the
  holder renews it (heartbeat) and every write it makes to the account's record is checked
  against it (``token``), so a runner whose lock expired (paused, cut off) can no longer
  change anything once another one holds a newer token.
- ``ServerLeases``: at most N connections to one source server across machines. A lease is
  a member of a sorted set scored by its expiry; expired members are dropped before every
  count, so the leases of a holder that died free themselves after one TTL.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

log = logging.getLogger(__name__)

# KEYS[1] lock, KEYS[2] fence counter; ARGV[1] ttl ms. -> new token, or 0 when held.
_LOCK_ACQUIRE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local token = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], token, 'PX', ARGV[1])
return token
"""
# KEYS[1] lock; ARGV[1] token, ARGV[2] ttl ms. -> 1 renewed, 0 lost.
_LOCK_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2]) return 1
end
return 0
"""
_LOCK_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
# KEYS[1] lease set; ARGV[1] limit, ARGV[2] ttl ms, ARGV[3] wanted, ARGV[4..] candidate ids.
# -> the number of leases taken (0..wanted).
_SEM_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local free = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local n = math.min(free, tonumber(ARGV[3]))
for i = 1, n do redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3 + i]) end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
if n < 0 then return 0 end
return n
"""
# KEYS[1] lease set; ARGV[1] ttl ms, ARGV[2..] ids. -> how many were still held (and renewed).
_SEM_RENEW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[1]), ARGV[i]) held = held + 1
  end
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]) * 2)
return held
"""
# KEYS[1] lease set -> the number of live leases.
_SEM_COUNT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""


class AccountLock:
    """The lock of one account: ``acquire()`` gives a fencing token (or None when held)."""

    def __init__(self, redis: Any, prefix: str, account: str, ttl: float) -> None:
        self.redis = redis
        self.key = f"{prefix}:lock:{account}"
        self.fence_key = f"{prefix}:fence:{account}"
        self.ttl_ms = max(1, int(ttl * 1000))
        self.token: int | None = None

    def acquire(self) -> int | None:
        got = int(self.redis.eval(_LOCK_ACQUIRE, 2, self.key, self.fence_key, self.ttl_ms))
        self.token = got or None
        return self.token

    def renew(self) -> bool:
        """Extend the TTL; False when the lock is no longer ours (it expired, someone took it)."""
        if self.token is None:
            return False
        return bool(self.redis.eval(_LOCK_RENEW, 1, self.key, str(self.token), self.ttl_ms))

    def release(self) -> None:
        if self.token is not None:
            self.redis.eval(_LOCK_RELEASE, 1, self.key, str(self.token))
            self.token = None


class ServerLeases:
    """This holder's leases on one server's connection semaphore (limit shared by all machines)."""

    def __init__(self, redis: Any, prefix: str, server: str, limit: int, ttl: float) -> None:
        self.redis = redis
        self.key = f"{prefix}:sem:{server}"
        self.limit = max(1, limit)
        self.ttl_ms = max(1, int(ttl * 1000))
        self.ids: list[str] = []

    def acquire(self, wanted: int) -> int:
        """Take up to ``wanted`` more leases now (never waits); return how many this holder has."""
        candidates = [secrets.token_hex(8) for _ in range(max(0, wanted))]
        n = int(self.redis.eval(_SEM_ACQUIRE, 1, self.key, self.limit, self.ttl_ms, len(candidates),
                                *candidates))
        self.ids += candidates[:n]
        return len(self.ids)

    def renew(self) -> bool:
        """Extend every lease; False when one of them had already expired (the cap may be full)."""
        if not self.ids:
            return True
        held = int(self.redis.eval(_SEM_RENEW, 1, self.key, self.ttl_ms, *self.ids))
        return held == len(self.ids)

    def release(self) -> None:
        if self.ids:
            self.redis.zrem(self.key, *self.ids)
            self.ids = []

    def in_use(self) -> int:
        """Live leases on this server, all holders together."""
        return int(self.redis.eval(_SEM_COUNT, 1, self.key))
