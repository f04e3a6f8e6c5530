"""``fastsync migrate SRC DST``: one-way bulk copy of every folder from one IMAP server to another.

Without a config file. The copy is the ordinary sync engine run one way (far = SRC, opened
read-only; near = DST) with its state under ``--metadata`` (default ~/.fastsync/migrate), so a
re-run copies nothing twice; with no state, messages already on DST are recognised by content
(the engine's content key: header block + size) and not copied again.

Exit codes: 0 everything copied; 1 partial (some messages or folders failed, verify found a
difference, or --errorsmax stopped the run); 2 usage or configuration error; 3 an account
failed during the run; 4 another run holds this migration's lock; 10/11 login refused on
SRC/DST; 12/13 cannot connect to SRC/DST (network or TLS); 14 DST over quota; 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

import msgspec

from fastsync.config import AccountConfig, Config, GeneralConfig, ImapRepo
from fastsync.errors import ConfigError, ExitCode, FastsyncError
from fastsync.migrate_map import Selection, parse_renames
from fastsync.migrate_report import as_json, stats_block, write_json
from fastsync.migrate_run import (
    EXIT_QUOTA,
    AccountResult,
    Collector,
    FolderResult,
    MigrateSupervisor,
    Preflight,
    SideFailed,
    SplitSetting,
    folder_pairs,
    open_side,
    preflight,
)
from fastsync.migrate_urls import Endpoint, migration_id, parse_endpoint, read_password, repo_for
from fastsync.supervisor import RunOptions

DEFAULT_METADATA = "~/.fastsync/migrate"
_NOTHING = "lambda folder: False"  # the workers' own discovery maps nothing: pairs come from here


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
    p.add_argument("--folder", action="append", default=[], help="copy only this source folder (repeatable)")
    p.add_argument("--include", action="append", default=[], metavar="REGEX", help="copy folders matching")
    p.add_argument("--exclude", action="append", default=[], metavar="REGEX", help="skip folders matching")
    p.add_argument("--map", action="append", default=[], metavar="OLD=NEW", help="rename a folder")
    p.add_argument("--no-automap", dest="automap", action="store_false", help="no SPECIAL-USE mapping")
    p.add_argument("--maxsize", type=int, metavar="BYTES", help="skip messages larger than this")
    p.add_argument("--maxage", type=float, metavar="DAYS", help="copy only messages at most this old")
    p.add_argument("--minage", type=float, metavar="DAYS", help="copy only messages at least this old")
    p.add_argument("--delete2", action="store_true", help="delete on DST what was deleted on SRC")
    p.add_argument("--force-deletes", action="store_true", help="let --delete2 delete over the guard")
    p.add_argument("--dry-run", action="store_true", help="say what would be copied; change nothing")
    p.add_argument("--verify", action="store_true", help="compare both sides after copying")
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
    return p


class Job:
    """One account to migrate: endpoints, passwords (never printed), results."""

    def __init__(self, src: Endpoint, dst: Endpoint, src_pw: str, dst_pw: str) -> None:
        self.src, self.dst = src, dst
        self.src_pw, self.dst_pw = src_pw, dst_pw
        self.name = migration_id(src, dst)
        self.result = AccountResult(name=self.name, src=src.label(), dst=dst.label())
        self.pre: Preflight | None = None
        self.code: int = int(ExitCode.OK)


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.batch:
            from fastsync.migrate_batch import run_batch

            return int(run_batch(args))
        if not args.src or not args.dst:
            raise ConfigError("expected SRC and DST (or --batch FILE.csv)")
        job = Job(
            parse_endpoint(args.src, "SRC", plain=args.no_tls1),
            parse_endpoint(args.dst, "DST", plain=args.no_tls2),
            read_password("SRC", file=args.password1_file, command=args.passcmd1, env="FASTSYNC_PASSWORD1"),
            read_password("DST", file=args.password2_file, command=args.passcmd2, env="FASTSYNC_PASSWORD2"),
        )
    except ConfigError as e:
        print(f"fastsync migrate: {e}", file=sys.stderr)
        return int(ExitCode.CONFIG)
    return run_jobs([job], args)[0]


def selection(args: argparse.Namespace) -> Selection:
    return Selection(
        folders=tuple(args.folder),
        include=tuple(args.include),
        exclude=tuple(args.exclude),
        renames=parse_renames(args.map),
        automap=args.automap,
    )


def _repos(job: Job, args: argparse.Namespace) -> tuple[AccountConfig, ImapRepo]:
    common = {"timeout": args.timeout, "connections": max(1, args.workers)}
    src = repo_for(
        job.src, f"src-{job.name}", cafile=args.cafile1, readonly=True, sync_deletes=False, **common
    )
    dst = repo_for(
        job.dst, f"dst-{job.name}", cafile=args.cafile2, readonly=False, sync_deletes=args.delete2, **common
    )
    dst = _with_filter(dst)
    account = AccountConfig(
        name=job.name,
        remote=_with_filter(src),
        local=dst,
        maxsize=args.maxsize,
        splitthreshold=max(0, args.splitthreshold),
    )
    return account, dst


def _with_filter(repo: ImapRepo) -> ImapRepo:
    return msgspec.structs.replace(repo, folderfilter=_NOTHING)


def run_jobs(jobs: list[Job], args: argparse.Namespace) -> list[int]:
    """Check, map and migrate the jobs; print each one's statistics; return exit codes in order."""
    sel = selection(args)
    started = time.monotonic()
    ready: list[Job] = []
    for job in jobs:
        try:
            account, dst = _repos(job, args)
            job.pre = preflight(
                account.remote, job.src_pw, dst, job.dst_pw, sel, args.maxsize, _split_setting(account, args)
            )
        except SideFailed as e:
            print(f"fastsync migrate: {e}", file=sys.stderr)
            job.code = e.code
            continue
        except ConfigError as e:
            print(f"fastsync migrate: {e}", file=sys.stderr)
            job.code = int(ExitCode.CONFIG)
            continue
        for w in job.pre.warnings:
            print(f"WARNING: {w}", file=sys.stderr)
        for name, ranges in job.pre.ranges.items():
            if not args.quiet:
                print(f"{name}: copied in {len(ranges)} UID ranges by {args.workers} workers")
        for m in job.pre.maps:
            job.result.folders[m.src] = FolderResult(
                src=m.src, dst=m.dst, found=job.pre.found.get(m.src, 0), skipped=job.pre.skipped.get(m.src, 0)
            )
        ready.append(job)
    if ready:
        _supervise(ready, args)
    seconds = time.monotonic() - started
    for job in ready:
        _finish(job, args, seconds, many=len(jobs) > 1)
    return [job.code for job in jobs]


def _split_setting(account: AccountConfig, args: argparse.Namespace) -> SplitSetting | None:
    """Range copies of huge folders, as sync makes them; not where they do not apply (a dry
    run, a selection by size or age, a single connection)."""
    if args.dry_run or args.maxsize or args.maxage is not None or args.minage is not None:
        return None
    if account.splitthreshold <= 0 or args.workers < 2:
        return None
    return SplitSetting(
        metadata=os.path.expanduser(args.metadata),
        account=account.name,
        threshold=account.splitthreshold,
        connections=max(1, args.workers),
    )


def _supervise(jobs: list[Job], args: argparse.Namespace) -> None:
    accounts = {}
    passwords: dict[str, str | None] = {}
    for job in jobs:
        account, _ = _repos(job, args)
        accounts[job.name] = account
        passwords[account.remote.name] = job.src_pw
        passwords[account.local.name] = job.dst_pw
    metadata = os.path.expanduser(args.metadata)
    Path(metadata).mkdir(parents=True, exist_ok=True, mode=0o700)
    config = Config(
        path="fastsync migrate",
        general=GeneralConfig(
            accounts=tuple(accounts), metadata=metadata, maxsyncaccounts=max(1, args.maxsyncaccounts)
        ),
        accounts=accounts,
    )
    results = {job.name: job.result for job in jobs}
    ui = Collector(results, args.errorsmax, args.quiet)
    opts = RunOptions(
        accounts=tuple(accounts), once=True, dry_run=args.dry_run, force_deletes=args.force_deletes
    )
    tune: dict[str, Any] = {
        "batch_count": max(1, args.batch_messages),
        "batch_bytes": max(1, args.batch_bytes),
    }
    now = time.time()
    if args.maxage is not None:
        tune["since"] = now - args.maxage * 86400
    if args.minage is not None:
        tune["before"] = now - args.minage * 86400
    if args.errorsmax is not None:
        tune["max_message_errors"] = max(1, args.errorsmax)
    pairs = {job.name: folder_pairs(job.pre) for job in jobs if job.pre is not None}
    ranges = {job.name: job.pre.ranges for job in jobs if job.pre is not None}
    sup = MigrateSupervisor(config, opts, ui, passwords, pairs=pairs, tune=tune, ranges=ranges)
    ui.stop = sup._on_stop
    code = int(sup.run())
    for job in jobs:
        job.code = _account_code(job, code, ui.stopped_by_errors)


def _account_code(job: Job, run_code: int, stopped_by_errors: bool) -> int:
    r = job.result
    s = r.summary
    texts = [t for f in r.folders.values() for t in f.message_errors] + r.errors
    texts += [f.error for f in r.folders.values() if f.error]
    if any("OVERQUOTA" in t.upper() or "QUOTA EXCEEDED" in t.upper() for t in texts):
        return EXIT_QUOTA
    if stopped_by_errors:
        return int(ExitCode.PARTIAL)
    if s is None:
        return run_code or int(ExitCode.ACCOUNT)
    if s.locked:
        return int(ExitCode.LOCKED)
    if s.failed:
        return int(ExitCode.ACCOUNT)
    if s.interrupted:
        return int(ExitCode.INTERRUPTED)
    if s.errors or s.folders_failed or any(f.error for f in r.folders.values()):
        return int(ExitCode.PARTIAL)
    return int(ExitCode.OK)


def _finish(job: Job, args: argparse.Namespace, seconds: float, many: bool) -> None:
    verify = None
    wanted = (args.delete2 or args.verify) and not args.dry_run
    if wanted and job.pre is not None and job.code in (0, 1):
        verify = _post_pass(job, args)
        if verify is not None and not verify["clean"]:
            job.code = max(job.code, int(ExitCode.PARTIAL))
    if not (many and args.quiet):
        print(stats_block(job.result, seconds, args.dry_run), flush=True)
    if verify is not None and args.verify:
        from fastsync.migrate_verify import verify_text

        print(verify_text(verify), flush=True)
    if args.report and not many:
        write_json(args.report, as_json(job.result, seconds, args.dry_run, job.code, verify))


def _post_pass(job: Job, args: argparse.Namespace) -> dict[str, Any] | None:
    """--delete2's mirror pass, then --verify, on one fresh connection per side."""
    from fastsync.migrate_verify import mirror, verify

    assert job.pre is not None
    account, dst_repo = _repos(job, args)
    try:
        src = open_side(account.remote, job.src_pw, "SRC")
        try:
            dst = open_side(dst_repo, job.dst_pw, "DST")
            try:
                if args.delete2:
                    _mirror_result(
                        job, mirror(src, dst, job.pre.maps, max_percent=50, force=args.force_deletes)
                    )
                return verify(src, dst, job.pre.maps, args.maxsize) if args.verify else None
            finally:
                dst.close()
        finally:
            src.close()
    except (SideFailed, FastsyncError) as e:
        print(f"fastsync migrate: {'verify' if args.verify else 'delete2'}: {e}", file=sys.stderr)
        job.code = max(job.code, int(ExitCode.PARTIAL))
        return None


def _mirror_result(job: Job, done: dict[str, int | str]) -> None:
    for folder, what in done.items():
        f = job.result.folders[folder]
        if isinstance(what, int):
            f.deleted += what
        else:
            f.error = f.error or what
            print(f"ERROR: delete2: {folder!r} -> {f.dst!r}: {what}", file=sys.stderr)
            job.code = max(job.code, int(ExitCode.PARTIAL))
