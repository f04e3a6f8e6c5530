"""``fastsync migrate --batch FILE.csv --queue URL``: one record and one job per account.

The account id is the migration's id (SRC and DST user@host:port), so queueing the same CSV
twice adds nothing: an account already in the batch is left as it is (whatever its state).
Only password *references* (``file:``, ``cmd:``, ``env:``) are stored; each worker reads
them itself, on its own machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from fastsync.dist.queue import PREFIX, connect, describe, enqueue_slice
from fastsync.dist.records import Batch
from fastsync.errors import ConfigError, ExitCode
from fastsync.migrate.batch import Row, read_rows
from fastsync.migrate.urls import migration_id

# The migrate options a worker applies to every slice of the account.
_CARRIED = (
    "no_tls1", "no_tls2", "cafile1", "cafile2", "folder", "include", "exclude", "map", "automap",
    "maxsize", "workers", "batch_messages", "batch_bytes", "timeout", "errorsmax",
)


def job_options(args: argparse.Namespace) -> dict[str, Any]:
    if args.slice <= 0 or args.lock_ttl <= 0:
        raise ConfigError("--slice and --lock-ttl must be positive")
    if args.max_per_server < 0 or args.retries < 0:
        raise ConfigError("--max-per-server and --retries must be 0 or more")
    opts = {name: getattr(args, name) for name in _CARRIED}
    opts.update(
        max_per_server=args.max_per_server,
        slice=args.slice,
        retries=args.retries,
        retry_backoff=args.retry_backoff,
        lock_ttl=args.lock_ttl,
        job_timeout=args.slice + max(600.0, 4 * args.lock_ttl),
    )
    return opts


def record_for(row: Row, opts: dict[str, Any]) -> dict[str, str]:
    return {
        "src": row.src.label(),
        "dst": row.dst.label(),
        "src_url": row.src_url,
        "dst_url": row.dst_url,
        "password1": row.password1,  # a reference (file:/cmd:/env:), checked by read_rows
        "password2": row.password2,
        "server": f"{row.src.host}:{row.src.port}",
        "opts": json.dumps(opts),
    }


def enqueue_batch(args: argparse.Namespace) -> int:
    if not args.batch:
        raise ConfigError("--queue goes with --batch FILE.csv")
    if args.dry_run or args.verify or args.delete2 or args.report:
        raise ConfigError("--queue: --dry-run, --verify, --delete2 and --report are for runs on one machine")
    opts = job_options(args)
    rows = read_rows(args.batch, args)
    conn = connect(args.queue)
    batch = Batch(conn, PREFIX)
    added = known = 0
    worst = int(ExitCode.OK)
    for row in rows:
        if isinstance(row, str):
            print(f"fastsync migrate: {row}", file=sys.stderr)
            worst = int(ExitCode.CONFIG)
            continue
        account = migration_id(row.src, row.dst)
        if batch.register(account, record_for(row, opts)):
            enqueue_slice(conn, account, f"{account}-1", 0, opts["job_timeout"])
            added += 1
        else:
            known += 1
    print(f"queued {added} accounts on {describe(args.queue)} ({known} already in the batch)", flush=True)
    return worst
