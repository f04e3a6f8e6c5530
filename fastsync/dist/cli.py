"""Command lines of the distributed batch: arguments in, exit codes out. No logic here.

``fastsync migrate --batch FILE.csv --queue URL`` (enqueue.py), ``fastsync worker --queue URL``
(worker.py), ``fastsync batch status|report|retry --queue URL`` (status.py). Each checks the
optional extra first and stops with one line and exit 2 when rq or redis is missing.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable

from fastsync.dist import require
from fastsync.errors import ConfigError, ExitCode


def _guarded(prog: str, body: Callable[[], int]) -> int:
    try:
        require()
        from fastsync.dist.queue import REDIS_ERRORS

        try:
            return body()
        except REDIS_ERRORS as e:
            print(f"{prog}: cannot reach the queue: {e}", file=sys.stderr)
            return int(ExitCode.ACCOUNT)
    except ConfigError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return int(ExitCode.CONFIG)


def enqueue_main(args: argparse.Namespace) -> int:
    def body() -> int:
        from fastsync.dist.enqueue import enqueue_batch

        return enqueue_batch(args)

    return _guarded("fastsync migrate", body)


def worker_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="fastsync worker", description="Run migration jobs from the queue.")
    p.add_argument("--queue", required=True, metavar="redis://HOST:PORT/DB")
    p.add_argument("--name", help="worker name (default: RQ's)")
    p.add_argument("--metadata", default="~/.fastsync/migrate", help="this machine's state directory")
    p.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    p.add_argument("--processes", type=int, default=1, metavar="N",
                   help="RQ workers on this machine, each running one account at a time (default 1)")
    p.add_argument("--sweep-every", type=float, default=5.0, metavar="SECONDS",
                   help="how often to look for accounts whose runner died (default 5)")
    p.add_argument("-v", "--verbose", action="store_true", help="log each job")
    args = p.parse_args(argv)
    logging.getLogger().setLevel(logging.INFO if args.verbose else logging.WARNING)
    logging.getLogger("fastsync.dist").setLevel(logging.INFO)

    def body() -> int:
        from fastsync.dist.worker import run_worker

        return run_worker(args.queue, name=args.name, metadata=args.metadata, burst=args.burst,
                          sweep_every=args.sweep_every, processes=max(1, args.processes))

    return _guarded("fastsync worker", body)


def batch_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="fastsync batch", description="Follow a queued migration batch.")
    sub = p.add_subparsers(dest="command", required=True)
    st = sub.add_parser("status", help="accounts done/running/failed, messages, MB, rate, ETA")
    st.add_argument("--json", action="store_true", help="one JSON object")
    rp = sub.add_parser("report", help="write the per-account table as PREFIX.csv and PREFIX.json")
    rp.add_argument("--out", default="fastsync-batch", metavar="PREFIX")
    rt = sub.add_parser("retry", help="queue failed accounts again")
    rt.add_argument("accounts", nargs="*", help="only these account ids")
    rt.add_argument("--partial", action="store_true", help="partial accounts too")
    for sp in (st, rp, rt):
        sp.add_argument("--queue", required=True, metavar="redis://HOST:PORT/DB")
    args = p.parse_args(argv)

    def body() -> int:
        from fastsync.dist import status
        from fastsync.dist.queue import PREFIX, connect
        from fastsync.dist.records import Batch

        batch = Batch(connect(args.queue), PREFIX)
        if args.command == "status":
            s = status.summary(batch)
            print(json.dumps(s) if args.json else status.status_text(s), flush=True)
        elif args.command == "report":
            paths = status.write_report(batch, args.out)
            print(f"wrote {paths[0]} and {paths[1]}", flush=True)
        else:
            ids = status.retry(batch, args.accounts, args.partial)
            print(f"queued {len(ids)} accounts again", flush=True)
        return 0

    return _guarded("fastsync batch", body)
