"""The batch in Redis: one hash per account, the accounts in queue order, fenced updates.

An account record holds what the CSV line said (endpoints, password *references*, never a
password), the options, where the account is (``status``, its current RQ ``job_id``) and the
cumulative results of its slices. Each slice of an account runs under the account lock
(lease.py); its writes go through ``update()``, which applies them only while the writer's
fencing token is the lock's value, so a runner that lost its lock changes nothing.

``job_id`` names the one job that may advance the account ("<account>-<n>", n counted up per
slice): a job that starts and finds another id there is stale and ends at once. That keeps one
chain of jobs per account even when RQ runs a job twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

ACTIVE = ("queued", "running")
FINAL = ("done", "partial", "failed")

_REGISTER = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'status', 'queued', 'seq', 1, 'job_id', ARGV[1] .. '-1',
           'queued_at', now, 'touched', now)
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[2], redis.call('INCR', KEYS[3]), ARGV[1])
return 1
"""
# KEYS[1] lock, KEYS[2] record; ARGV[1] token ('' = no lock check), ARGV[2] JSON
# {"set": {...}, "incr": {...}, "next": bool}. -> the new job id with "next", else "1"; nil when fenced off.
_UPDATE = """
if ARGV[1] ~= '' and redis.call('GET', KEYS[1]) ~= ARGV[1] then return false end
local d = cjson.decode(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for k, v in pairs(d['set'] or {}) do redis.call('HSET', KEYS[2], k, tostring(v)) end
for k, v in pairs(d['incr'] or {}) do redis.call('HINCRBYFLOAT', KEYS[2], k, v) end
for _, k in ipairs(d['stamp'] or {}) do redis.call('HSET', KEYS[2], k, now) end
redis.call('HSET', KEYS[2], 'touched', now)
if d['next'] then
  local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
  local id = d['account'] .. '-' .. seq
  redis.call('HSET', KEYS[2], 'job_id', id)
  return id
end
return '1'
"""
# Revive an orphan: KEYS[1] lock, KEYS[2] record; ARGV[1] the job id seen, ARGV[2] account id.
_REVIVE = """
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
if redis.call('HGET', KEYS[2], 'job_id') ~= ARGV[1] then return false end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local id = ARGV[2] .. '-' .. seq
redis.call('HSET', KEYS[2], 'job_id', id, 'status', 'queued', 'touched', now)
redis.call('HINCRBY', KEYS[2], 'revivals', 1)
return id
"""


@dataclass
class Account:
    """One account record, decoded (numbers as numbers)."""

    id: str
    fields: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.fields.get(name, default)

    def num(self, name: str) -> float:
        try:
            return float(self.fields.get(name, "0") or 0)
        except ValueError:
            return 0.0

    @property
    def status(self) -> str:
        return self.get("status")

    @property
    def job_id(self) -> str:
        return self.get("job_id")

    @property
    def opts(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self.get("opts", "{}"))
        return loaded


class Batch:
    """The accounts of the batch kept in one Redis database under ``prefix``."""

    def __init__(self, redis: Any, prefix: str = "fastsync") -> None:
        self.redis = redis
        self.prefix = prefix
        self.index_key = f"{prefix}:accounts"

    def key(self, account: str) -> str:
        return f"{self.prefix}:acct:{account}"

    def lock_key(self, account: str) -> str:
        return f"{self.prefix}:lock:{account}"

    def register(self, account: str, values: dict[str, str]) -> bool:
        """Add the account (status queued, job "<account>-1"); False when it was already there."""
        flat = [x for kv in values.items() for x in kv]
        keys = (self.key(account), self.index_key, f"{self.prefix}:order")
        return bool(self.redis.eval(_REGISTER, 3, *keys, account, *flat))

    def update(
        self,
        account: str,
        token: int | None,
        *,
        set: dict[str, Any] | None = None,
        incr: dict[str, float] | None = None,
        stamp: tuple[str, ...] = (),
        next_job: bool = False,
    ) -> str | None:
        """Apply the changes if ``token`` still holds the lock (None: no check, for the CLI).
        Returns the new job id with ``next_job``, "1" otherwise; None when fenced off."""
        doc = {"set": set or {}, "incr": incr or {}, "stamp": list(stamp), "next": next_job, "account": account}
        got = self.redis.eval(
            _UPDATE, 2, self.lock_key(account), self.key(account), "" if token is None else str(token),
            json.dumps(doc),
        )
        return None if got is None else (got.decode() if isinstance(got, bytes) else str(got))

    def revive(self, account: str, seen_job: str) -> str | None:
        """Give an orphaned account a new job id (no lock held, job id unchanged since seen)."""
        got = self.redis.eval(_REVIVE, 2, self.lock_key(account), self.key(account), seen_job, account)
        return None if got is None else (got.decode() if isinstance(got, bytes) else str(got))

    def account(self, account: str) -> Account | None:
        raw = self.redis.hgetall(self.key(account))
        if not raw:
            return None
        return Account(account, {_s(k): _s(v) for k, v in raw.items()})

    def ids(self) -> list[str]:
        return [_s(x) for x in self.redis.zrange(self.index_key, 0, -1)]

    def accounts(self) -> list[Account]:
        ids = self.ids()
        pipe = self.redis.pipeline(transaction=False)
        for a in ids:
            pipe.hgetall(self.key(a))
        return [Account(a, {_s(k): _s(v) for k, v in raw.items()}) for a, raw in zip(ids, pipe.execute(), strict=True)
                if raw]

    def locked(self, account: str) -> bool:
        return bool(self.redis.exists(self.lock_key(account)))

    def now_ms(self) -> int:
        sec, usec = self.redis.time()
        return int(sec) * 1000 + int(usec) // 1000


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)
