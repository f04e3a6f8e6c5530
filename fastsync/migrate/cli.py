"""The command line of ``fastsync migrate SRC DST``: one-way bulk copy of every folder from one
IMAP server to another.

Without a config file. The copy is the ordinary sync engine run one way (far = SRC, opened
read-only; near = DST) with its state under ``--metadata`` (default ~/.fastsync/migrate), so a
re-run copies nothing twice; with no state, messages already on DST are recognised by content
(header block + size; then Message-ID + INTERNALDATE + size, which survives a server rewriting
header bytes in place) and not copied again.

Exit codes: 0 everything copied; 1 partial (some messages or folders failed, the destination
altered a copied message, verify found a difference, or --errorsmax stopped the run); 2 usage
or configuration error; 3 an account failed during the run; 4 another run holds this
migration's lock; 10/11 login refused on SRC/DST; 12/13 cannot connect to SRC/DST (network or
TLS); 14 DST over quota; 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys

from fastsync.errors import ConfigError, ExitCode
from fastsync.migrate.auth import add_arguments, side_auth, uses_oauth
from fastsync.migrate.jobs import DEFAULT_METADATA, Job, run_jobs
from fastsync.migrate.urls import parse_endpoint


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fastsync migrate",
        description="Copy every folder from SRC to DST (imap://user@host[:port] or imaps://...), once; "
        "re-runs copy only what is new. Passwords: --password1-file/--passcmd1 or $FASTSYNC_PASSWORD1 "
        "(2 for DST).",
    )
    p.add_argument("src", nargs="?", metavar="SRC")
    p.add_argument("dst", nargs="?", metavar="DST")
    for n, side in (("1", "SRC"), ("2", "DST")):
        p.add_argument(f"--password{n}-file", metavar="FILE", help=f"{side} password: first line of FILE")
        p.add_argument(f"--passcmd{n}", metavar="CMD", help=f"{side} password: first line CMD prints")
        p.add_argument(f"--cafile{n}", metavar="FILE", help=f"CA certificates for {side} (default: system)")
        p.add_argument(
            f"--no-tls{n}",
            action="store_true",
            help=f"allow plaintext imap:// to {side} (trusted links only)",
        )
        add_arguments(p, n, side)
    p.add_argument("--folder", action="append", default=[], help="copy only this source folder (repeatable)")
    p.add_argument("--include", action="append", default=[], metavar="REGEX", help="copy folders matching")
    p.add_argument("--exclude", action="append", default=[], metavar="REGEX", help="skip folders matching")
    p.add_argument("--map", action="append", default=[], metavar="OLD=NEW", help="rename a folder")
    p.add_argument("--no-automap", dest="automap", action="store_false", help="no SPECIAL-USE mapping")
    p.add_argument("--maxsize", type=int, metavar="BYTES", help="skip messages larger than this")
    p.add_argument("--maxage", type=float, metavar="DAYS", help="copy only messages at most this old")
    p.add_argument("--minage", type=float, metavar="DAYS", help="copy only messages at least this old")
    p.add_argument(
        "--delete2",
        action="store_true",
        help="delete on DST the messages this migration copied (or paired) that SRC has deleted since",
    )
    p.add_argument("--force-deletes", action="store_true", help="let --delete2 delete over the guard")
    p.add_argument(
        "--gmail-once",
        action="store_true",
        help="from Gmail: copy each message once in all, into the first label folder holding it "
        "(INBOX, then by name); by default once per label, and All Mail only what has no other label",
    )
    p.add_argument("--dry-run", action="store_true", help="say what would be copied; change nothing")
    p.add_argument(
        "--verify",
        nargs="?",
        const="ids",
        choices=("ids", "body"),
        help="compare both sides after copying: ids = (Message-ID, size) per message (the default), "
        "body = a SHA-256 of every message's bytes (reads every message again)",
    )
    p.add_argument("--report", metavar="FILE", help="write the statistics as JSON")
    p.add_argument("--errorsmax", type=int, metavar="N", help="stop after N message errors")
    p.add_argument("--workers", type=int, default=4, help="parallel connections per server (default 4)")
    p.add_argument(
        "--splitthreshold",
        type=int,
        default=20000,
        help="a source folder with this many messages is copied in UID ranges by all workers (0: never)",
    )
    p.add_argument("--batch-messages", type=int, default=500, help="messages per fetch/append batch")
    p.add_argument("--batch-bytes", type=int, default=16 << 20, help="bytes per fetch/append batch")
    p.add_argument("--timeout", type=float, default=120.0, help="socket timeout in seconds")
    p.add_argument("--metadata", default=DEFAULT_METADATA, help="state directory (default %(default)s)")
    p.add_argument("--batch", metavar="FILE.csv", help="migrate the accounts of a CSV file (see README)")
    p.add_argument("--maxsyncaccounts", type=int, default=2, help="accounts in flight with --batch")
    p.add_argument("-q", "--quiet", action="store_true", help="only errors and the statistics")
    d = p.add_argument_group("many machines (with --batch; needs the extra fastsync[dist])")
    d.add_argument(
        "--queue", metavar="redis://HOST:PORT/DB", help="queue the accounts for `fastsync worker`s"
    )
    d.add_argument("--max-per-server", type=int, default=0, metavar="N",
                   help="connections to one source server, all machines together (default: no cap)")
    d.add_argument("--slice", type=float, default=900.0, metavar="SECONDS",
                   help="a job works on one account at most this long, then queues its next slice")
    d.add_argument("--retries", type=int, default=5, help="retries of network/server failures (default 5)")
    d.add_argument("--retry-backoff", type=float, default=30.0, metavar="SECONDS",
                   help="first retry delay; doubles each time, with jitter (default 30)")
    d.add_argument("--lock-ttl", type=float, default=60.0, metavar="SECONDS",
                   help="a runner's lock and leases expire this long after its last heartbeat")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.queue:
            from fastsync.dist.cli import enqueue_main  # imports rq only after checking for it

            return enqueue_main(args)
        if args.batch:
            from fastsync.migrate.batch import run_batch

            if uses_oauth(args):
                raise ConfigError("the OAuth2 options are for one account (expected them without --batch)")
            return int(run_batch(args))
        if not args.src or not args.dst:
            raise ConfigError("expected SRC and DST (or --batch FILE.csv)")
        src = parse_endpoint(args.src, "SRC", plain=args.no_tls1)
        dst = parse_endpoint(args.dst, "DST", plain=args.no_tls2)
        src_auth, dst_auth = side_auth(args, "1", "SRC"), side_auth(args, "2", "DST")
        job = Job(src, dst, src_auth.password, dst_auth.password, src_auth=src_auth, dst_auth=dst_auth)
    except ConfigError as e:
        print(f"fastsync migrate: {e}", file=sys.stderr)
        return int(ExitCode.CONFIG)
    return run_jobs([job], args)[0]
