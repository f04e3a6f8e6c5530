"""The migration of a list of accounts: check both sides, map folders, copy through the
supervisor (--delete2 deletes through the sync's state), then --verify; one exit code per account.

With no state, messages already on DST are recognised by content (header block + size; then
Message-ID + INTERNALDATE + size, which survives a server rewriting header bytes in place).
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
from fastsync.folders import FolderPair
from fastsync.migrate.auth import SideAuth
from fastsync.migrate.map import Selection, parse_renames
from fastsync.migrate.report import as_json, stats_block, write_json
from fastsync.migrate.run import (
    EXIT_QUOTA,
    AccountResult,
    Collector,
    FolderResult,
    Preflight,
    SideFailed,
    SplitSetting,
    folder_pairs,
    open_side,
    preflight,
)
from fastsync.migrate.urls import Endpoint, migration_id, repo_for
from fastsync.supervisor import RunControl, RunOptions, Supervisor

DEFAULT_METADATA = "~/.fastsync/migrate"
_NOTHING = "lambda folder: False"  # the workers' own discovery maps nothing: pairs come from here


class Job:
    """One account to migrate: endpoints, passwords (never printed), results."""

    def __init__(
        self,
        src: Endpoint,
        dst: Endpoint,
        src_pw: str,
        dst_pw: str,
        *,
        src_auth: SideAuth | None = None,
        dst_auth: SideAuth | None = None,
    ) -> None:
        self.src, self.dst = src, dst
        self.src_pw, self.dst_pw = src_pw, dst_pw
        self.src_auth, self.dst_auth = src_auth, dst_auth  # None: password, default mechanisms
        self.name = migration_id(src, dst)
        self.result = AccountResult(name=self.name, src=src.label(), dst=dst.label())
        self.pre: Preflight | None = None
        self.code: int = int(ExitCode.OK)


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
    src, dst = _with_auth(src, job.src_auth), _with_auth(dst, job.dst_auth)
    dst = _with_filter(dst)
    account = AccountConfig(
        name=job.name,
        remote=_with_filter(src),
        local=dst,
        maxsize=args.maxsize,
        splitthreshold=max(0, args.splitthreshold),
    )
    return account, dst


def _with_auth(repo: ImapRepo, auth: SideAuth | None) -> ImapRepo:
    if auth is None:
        return repo
    return msgspec.structs.replace(repo, oauth2=auth.oauth2, auth_mechanisms=auth.mechanisms)


def _with_filter(repo: ImapRepo) -> ImapRepo:
    return msgspec.structs.replace(repo, folderfilter=_NOTHING)


def run_jobs(jobs: list[Job], args: argparse.Namespace, control: RunControl | None = None) -> list[int]:
    """Check, map and migrate the jobs; print each one's statistics; return exit codes in order.
    A job that cannot start keeps its error text in ``job.result.errors``."""
    sel = selection(args)
    started = time.monotonic()
    ready: list[Job] = []
    for job in jobs:
        try:
            account, dst = _repos(job, args)
            split = _split_setting(account, args)
            job.pre = preflight(
                account.remote, job.src_pw, dst, job.dst_pw, sel, args.maxsize, split,
                gmail_once=getattr(args, "gmail_once", False),
            )
        except SideFailed as e:
            print(f"fastsync migrate: {e}", file=sys.stderr)
            job.code = e.code
            job.result.errors.append(str(e))
            continue
        except ConfigError as e:
            print(f"fastsync migrate: {e}", file=sys.stderr)
            job.code = int(ExitCode.CONFIG)
            job.result.errors.append(str(e))
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
        _supervise(ready, args, control, phase="first")
        last = [j for j in ready if _all_mail(j) is not None and j.code != ExitCode.INTERRUPTED]
        if last:  # Gmail's All Mail, after every other folder, without what they copied
            _supervise(last, args, control, phase="last")
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


def _all_mail(job: Job) -> str | None:
    """The Gmail All Mail folder this job copies on its own, last; None: not Gmail."""
    if job.pre is None or job.pre.gmail is None:
        return None
    found: str | None = job.pre.gmail.all_mail
    return found if any(m.src == found for m in job.pre.maps) else None


def _phase(job: Job, phase: str) -> tuple[list[tuple[FolderPair, int]], dict[str, Any], dict[str, Any]]:
    """The folder pairs, ranges and engine fields of ``job`` in this phase: "first" (all
    but Gmail's All Mail, label folders leaving out what an earlier one copies with
    --gmail-once) or "last" (All Mail alone, leaving out what the others copied)."""
    assert job.pre is not None
    pairs, ranges = folder_pairs(job.pre), dict(job.pre.ranges)
    plan, last = job.pre.gmail, _all_mail(job)
    if plan is None:
        return pairs, ranges, {}
    if phase == "first":
        pairs = [(p, n) for p, n in pairs if p.far != last]
        ranges = {f: r for f, r in ranges.items() if f != last}
        skips = {f: u for f, u in plan.skips.items() if f != last}
    else:
        pairs = [(p, n) for p, n in pairs if p.far == last]
        ranges = {f: r for f, r in ranges.items() if f == last}
        done = [f for f, res in job.result.folders.items() if not res.error and not res.failed]
        skips = {last: plan.last_skip(done)}
    for folder, uids in skips.items():
        if folder in job.result.folders:
            job.result.folders[folder].duplicates = len(uids)
    return pairs, ranges, {"skip_far": {f: u.tobytes() for f, u in skips.items() if u}}


def _supervise(
    jobs: list[Job], args: argparse.Namespace, control: RunControl | None = None, *, phase: str = "first"
) -> None:
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
    phases = {job.name: _phase(job, phase) for job in jobs if job.pre is not None}
    sup = Supervisor(
        config,
        opts,
        ui,
        passwords,
        folder_pairs={name: pairs for name, (pairs, _, _) in phases.items()},
        folder_ranges={name: ranges for name, (_, ranges, _) in phases.items()},
        engine_tune=tune,
        account_tune={name: extra for name, (_, _, extra) in phases.items() if extra},
        control=control,
    )
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
    altered = any(f.altered for f in r.folders.values())
    if s.errors or s.folders_failed or altered or any(f.error for f in r.folders.values()):
        return int(ExitCode.PARTIAL)
    return int(ExitCode.OK)


def _finish(job: Job, args: argparse.Namespace, seconds: float, many: bool) -> None:
    verify = None
    wanted = args.verify and not args.dry_run
    if wanted and job.pre is not None and job.code in (0, 1):
        verify = _post_pass(job, args)
        if verify is not None and not verify["clean"]:
            job.code = max(job.code, int(ExitCode.PARTIAL))
    if not (many and args.quiet):
        print(stats_block(job.result, seconds, args.dry_run), flush=True)
    if verify is not None and args.verify:
        from fastsync.migrate.verify import verify_text

        print(verify_text(verify), flush=True)
    if args.report and not many:
        write_json(args.report, as_json(job.result, seconds, args.dry_run, job.code, verify))


def _post_pass(job: Job, args: argparse.Namespace) -> dict[str, Any] | None:
    """--verify, on one fresh connection per side. (--delete2 needs no pass of its own: the
    sync deletes on DST, through its state, only what it had paired with a SRC message that
    SRC deleted since; mail that was never on SRC is not touched.)"""
    from fastsync.migrate.verify import verify

    assert job.pre is not None
    account, dst_repo = _repos(job, args)
    try:
        src = open_side(account.remote, job.src_pw, "SRC")
        try:
            dst = open_side(dst_repo, job.dst_pw, "DST")
            try:
                if not args.verify:
                    return None
                return verify(src, dst, job.pre.maps, args.maxsize, mode=args.verify)
            finally:
                dst.close()
        finally:
            src.close()
    except (SideFailed, FastsyncError) as e:
        print(f"fastsync migrate: verify: {e}", file=sys.stderr)
        job.code = max(job.code, int(ExitCode.PARTIAL))
        return None
