"""fastsync[dist] pieces against a real redis-server: the connection lease semaphore, the account
lock's fencing, queueing a CSV (idempotent, no password in Redis), the retry policy (pure) and
the one-line error without the extra."""

from __future__ import annotations

import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from fastsync.dist.lease import AccountLock, ServerLeases
from fastsync.dist.policy import decide, suggested_backoff
from fastsync.dist.records import Batch
from tests.distenv import REPO_ROOT, Fleet, queue_url, redis_server  # noqa: F401


def test_the_lease_semaphore_never_grants_more_than_the_cap_and_a_dead_holders_leases_expire(
    queue_url: str,  # noqa: F811
) -> None:
    r = redis.Redis.from_url(queue_url)
    holders = [ServerLeases(r, "t", "imap.example:993", limit=3, ttl=0.6) for _ in range(4)]
    assert [h.acquire(2) for h in holders] == [2, 1, 0, 0]
    assert holders[0].in_use() == 3
    holders[1].release()
    assert holders[2].acquire(5) == 1 and holders[3].acquire(1) == 0
    # holder 0 "dies" (no renewals); holder 2 keeps renewing: only the dead one's leases free up
    for _ in range(4):
        time.sleep(0.25)
        assert holders[2].renew()
    assert holders[0].in_use() == 1
    assert not holders[0].renew()  # a holder whose leases lapsed learns it
    assert holders[3].acquire(3) == 2 and holders[3].in_use() == 3


def test_the_account_lock_gives_rising_fencing_tokens_and_a_stale_holder_can_change_nothing(
    queue_url: str,  # noqa: F811
) -> None:
    r = redis.Redis.from_url(queue_url)
    batch = Batch(r, "fastsync")
    assert batch.register("acct1", {"src": "a@h:1", "copied": "0"})
    assert not batch.register("acct1", {"src": "other"})
    first = AccountLock(r, "fastsync", "acct1", ttl=0.5)
    second = AccountLock(r, "fastsync", "acct1", ttl=5)
    t1 = first.acquire()
    assert t1 is not None and second.acquire() is None  # one runner at a time
    assert batch.update("acct1", t1, incr={"copied": 5}) == "1"
    time.sleep(0.7)  # the first runner stalls past its TTL
    t2 = second.acquire()
    assert t2 is not None and t2 > t1
    assert not first.renew()
    assert batch.update("acct1", t1, incr={"copied": 100}) is None  # fenced off
    assert batch.update("acct1", t2, incr={"copied": 1}, next_job=True) == "acct1-2"
    acct = batch.account("acct1")
    assert acct is not None and acct.num("copied") == 6 and acct.job_id == "acct1-2"
    first.release()  # releasing a lock it lost leaves the new holder's lock alone
    assert batch.locked("acct1")


def _csv(tmp: Path, n: int) -> Path:
    lines = ["# src,dst,password1,password2"]
    for k in range(n):
        (tmp / f"pw{k}").write_text(f"secret-src-{k}\n")
        src, dst = f"imap://u{k}@127.0.0.1:1143", f"imaps://v{k}@127.0.0.1:1993"
        lines.append(f"{src},{dst},file:{tmp / f'pw{k}'},env:DSTPW{k}")
    lines.append("imap://broken,imap://x@127.0.0.1,file:/x,env:Y")
    path = tmp / "accounts.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_queueing_the_same_csv_twice_adds_nothing_and_no_password_reaches_redis(
    queue_url: str, tmp_path: Path  # noqa: F811
) -> None:
    fleet = Fleet(queue_url, tmp_path, env={f"DSTPW{k}": f"secret-dst-{k}" for k in range(3)})
    path = _csv(tmp_path, 3)
    first = fleet.cli("migrate", "--batch", str(path), "--queue", queue_url, "--no-tls1", expect=2)
    assert "queued 3 accounts" in first.stdout and "line 5" in first.stderr  # the broken line
    again = fleet.cli("migrate", "--batch", str(path), "--queue", queue_url, "--no-tls1", expect=2)
    assert "queued 0 accounts" in again.stdout and "(3 already in the batch)" in again.stdout
    r = redis.Redis.from_url(queue_url)
    assert r.llen("rq:queue:fastsync") == 3
    dump = b"".join(
        repr(r.hgetall(k) if r.type(k) == b"hash" else r.dump(k)).encode() for k in r.scan_iter()
    )
    assert b"file:" in dump  # the references are there...
    assert b"secret-" not in dump  # ...the passwords never
    s = fleet.status()
    assert s["accounts"] == 3 and s["queued"] == 3 and s["done"] == 0


def test_without_the_extra_queue_worker_and_batch_stop_with_one_line_and_exit_2(tmp_path: Path) -> None:
    block = (
        "import sys; sys.modules['rq'] = None; from fastsync.cli import main; sys.exit(main(sys.argv[1:]))"
    )
    for argv in (
        ["migrate", "--batch", "x.csv", "--queue", "redis://127.0.0.1:1/0"],
        ["worker", "--queue", "redis://127.0.0.1:1/0"],
        ["batch", "status", "--queue", "redis://127.0.0.1:1/0"],
    ):
        env = {"PYTHONPATH": str(REPO_ROOT), "PATH": "/usr/bin"}
        proc = subprocess.run([sys.executable, "-c", block, *argv], capture_output=True, text=True,
                              timeout=60, cwd=tmp_path, env=env)
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"fastsync {argv[0]}: `--queue` needs the optional extra: pip install 'fastsync[dist]'"
        ]


@pytest.mark.parametrize("code", [10, 11, 14, 2])
def test_login_refused_quota_and_config_errors_are_never_retried(code: int) -> None:
    d = decide(code, ["SRC: login failed"], attempts=1, retries=5, base=1.0)
    assert d.action == "failed" and d.error_class in ("login", "quota", "config")


def test_network_failures_are_retried_with_growing_jittered_backoff_then_fail() -> None:
    rng = random.Random(7)
    delays = []
    for attempt in range(1, 5):
        d = decide(12, ["SRC x: cannot connect: Connection refused"], attempts=attempt, retries=4, base=2.0,
                   rng=rng)
        assert d.action == "retry" and d.error_class == "network"
        assert 1.0 <= d.delay <= 2.0 * 2 ** (attempt - 1)
        delays.append(d.delay)
    assert len(set(delays)) == 4 and delays[-1] > delays[0]
    assert decide(12, ["cannot connect"], attempts=5, retries=4, base=2.0).action == "failed"
    unavailable = decide(3, ["account: NO [UNAVAILABLE] backend down"], attempts=1, retries=4, base=2.0)
    assert unavailable.action == "retry" and unavailable.error_class == "network"


def test_throttling_waits_as_long_as_the_server_asks_without_using_a_retry() -> None:
    text = "NO Request is throttled. Suggested Backoff Time: 92000 milliseconds"
    assert suggested_backoff([text]) == 92.0
    d = decide(3, [text], attempts=99, retries=0, base=1.0)  # retries exhausted: still a wait
    assert d.action == "wait" and d.delay == 92.0 and d.error_class == "throttled"
    assert decide(130, [], attempts=1, retries=0, base=1.0).action == "continue"
    assert decide(0, [], attempts=1, retries=0, base=1.0).action == "done"
    assert decide(1, ["UID 7: [LIMIT] too big"], attempts=1, retries=5, base=1.0).action == "partial"
