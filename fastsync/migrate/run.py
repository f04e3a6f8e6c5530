"""One migration run: check both servers, map the folders, then copy through the supervisor.

Before any worker starts, the main process logs in to each side once (so a failure is
reported per side with its own exit code), lists folders and namespaces, maps them
(migrate.map) and counts what each source folder holds. The copy itself is the ordinary
engine, one way (far = source, read-only; near = destination), run by the ordinary
supervisor with the folder pairs computed here.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from fastsync import events as ev
from fastsync.config import ImapRepo
from fastsync.errors import AccountError, AuthError, FastsyncError, FolderError, StoreError
from fastsync.events import AccountSummary
from fastsync.folders import FolderPair
from fastsync.migrate import gmail
from fastsync.migrate.map import FolderMap, Selection, Side, map_folders
from fastsync.state import StateFile, state_path
from fastsync.stores.imap import ImapStore
from fastsync.ui.base import UI
from fastsync.ui.lines import lines_of
from fastsync.workers.split import split_ranges

log = logging.getLogger(__name__)

# Exit codes of `fastsync migrate` beyond errors.ExitCode (0 ok, 1 partial, 2 usage, 3 account,
# 4 locked, 130 interrupted).
EXIT_SRC_AUTH = 10
EXIT_DST_AUTH = 11
EXIT_SRC_CONNECT = 12
EXIT_DST_CONNECT = 13
EXIT_QUOTA = 14
RECONNECT_PAUSE = 0.5  # seconds before the one retry of a login the server dropped


class SideFailed(FastsyncError):
    """One side cannot be used; ``code`` is its exit code."""

    def __init__(self, text: str, code: int) -> None:
        super().__init__(text)
        self.code = code


def open_side(repo: ImapRepo, password: str, which: str) -> ImapStore:
    """A logged-in store; SideFailed with the side's connect or auth exit code."""
    auth, conn = (EXIT_SRC_AUTH, EXIT_SRC_CONNECT) if which == "SRC" else (EXIT_DST_AUTH, EXIT_DST_CONNECT)
    where = f"{which} {repo.remoteuser}@{repo.remotehost}:{repo.port}"
    try:
        socket.create_connection((repo.remotehost, repo.port), timeout=repo.timeout).close()
    except OSError as e:
        raise SideFailed(f"{where}: cannot connect: {e.strerror or e}", conn) from None
    store = ImapStore(repo, password, readonly=repo.readonly)
    for attempt in range(2):
        try:
            store.connect()
            return store
        except AuthError as e:  # the server or the OAuth2 token endpoint refused the credentials
            raise SideFailed(f"{which}: {e}", auth) from None
        except AccountError as e:  # TLS, unreachable, the token endpoint down
            raise SideFailed(f"{which}: {e}", conn) from None
        except StoreError as e:  # dropped during login (or the server is full): once more, then give up
            if attempt:
                raise SideFailed(f"{which}: {e}", conn) from None
            log.info("%s: %s; connecting again", which, e)
            time.sleep(RECONNECT_PAUSE)
    raise AssertionError("unreachable")


class Preflight(msgspec.Struct):
    maps: list[FolderMap]
    found: dict[str, int]  # source folder -> messages
    skipped: dict[str, int]  # source folder -> messages over --maxsize
    warnings: list[str] = msgspec.field(default_factory=list)
    ranges: dict[str, list[tuple[int, int]]] = msgspec.field(default_factory=dict)  # range copies
    gmail: Any = None  # a gmail.GmailPlan when SRC is Gmail (X-GM-EXT-1); never encoded


class SplitSetting(msgspec.Struct, frozen=True):
    """When huge source folders are copied in UID ranges by several workers, as sync does
    (workers/split.py): where their states live, the threshold and the connections."""

    metadata: str
    account: str
    threshold: int
    connections: int


def preflight(
    src_repo: ImapRepo,
    src_pw: str,
    dst_repo: ImapRepo,
    dst_pw: str,
    sel: Selection,
    maxsize: int | None,
    split: SplitSetting | None = None,
    *,
    gmail_once: bool = False,
) -> Preflight:
    src = open_side(src_repo, src_pw, "SRC")
    try:
        dst = open_side(dst_repo, dst_pw, "DST")
        try:
            try:
                src_side = _side(src)
                maps = map_folders(src_side, _side(dst), sel)
            except (FolderError, StoreError) as e:
                raise SideFailed(f"listing folders: {e}", 3) from None
            pre = _count(src, maps, maxsize)
            if src.has(gmail.CAPABILITY):
                pre.gmail = _gmail_plan(src, src_side, pre, gmail_once)
            if split is not None:
                _plan_ranges(src, dst, pre, split)
            return pre
        finally:
            dst.close()
    finally:
        src.close()


def _gmail_plan(src: ImapStore, side: Side, pre: Preflight, once: bool) -> gmail.GmailPlan:
    """Each source folder's X-GM-MSGIDs (one round trip a folder), the All Mail folder, and
    with ``once`` what each label folder leaves out. A folder whose ids cannot be read
    leaves nothing out, and nothing is left out because of it (a duplicate, not a loss)."""
    names = [m.src for m in pre.maps]
    special = {e.name: e.special_use for e in side.entries}
    found = gmail.all_mail((n, special.get(n)) for n in names)
    ids: dict[str, gmail.Ids] = {}
    for name in names:
        try:
            ids[name] = src.gmail_ids(name)
        except FolderError as e:
            pre.warnings.append(f"{e}; its Gmail labels are not de-duplicated")
    plan = gmail.GmailPlan(all_mail=found, ids=ids)
    if once:
        plan.skips = gmail.first_copies(gmail.copy_order(list(ids), found), ids)
    return plan


def _plan_ranges(src: ImapStore, dst: ImapStore, pre: Preflight, split: SplitSetting) -> None:
    """UID ranges for the source folders big enough to split (the same rule as sync's
    discovery); a missing destination folder is created here, once, for the range jobs."""
    for i, m in enumerate(pre.maps):
        if pre.found.get(m.src, 0) < split.threshold:
            continue
        try:
            fst = src.status(m.src)
            nst = dst.status(m.dst) if m.dst_exists else None
            state = (
                StateFile(state_path(Path(split.metadata), split.account, m.src, m.dst)).load()
                if nst is not None
                else None
            )
            found = split_ranges(fst, nst, state, split.threshold, split.connections)
            if found and not m.dst_exists:
                dst.create_folder(m.dst)
                pre.maps[i] = msgspec.structs.replace(m, dst_exists=True)
        except FolderError as e:
            pre.warnings.append(str(e))
            continue
        if found:
            pre.ranges[m.src] = found


def _side(store: ImapStore) -> Side:
    prefix = ""
    if store.has(b"NAMESPACE"):
        with store._errors("NAMESPACE"):
            ns = store.client.namespace()
        personal = ns.personal if ns is not None else None
        if personal:
            raw = personal[0][0]
            prefix = raw.decode() if isinstance(raw, bytes) else str(raw)
    return Side(entries=store.list_folders(), sep=store.separator, prefix=prefix)


def _count(src: ImapStore, maps: list[FolderMap], maxsize: int | None) -> Preflight:
    out = Preflight(maps=maps, found={}, skipped={})
    for m in maps:
        try:
            out.found[m.src] = src.status(m.src).messages
            if maxsize is not None and out.found[m.src]:
                src.select(m.src)
                with src._errors("SEARCH LARGER"):
                    out.skipped[m.src] = len(src.client.search(["LARGER", str(maxsize)]))
        except FolderError as e:
            out.warnings.append(str(e))
            out.found.setdefault(m.src, 0)
    return out


def folder_pairs(pre: Preflight) -> list[tuple[FolderPair, int]]:
    """Supervisor jobs, largest source folder first."""
    pairs = [(FolderPair(m.src, m.dst, True, m.dst_exists), pre.found.get(m.src, 0)) for m in pre.maps]
    return sorted(pairs, key=lambda ps: -ps[1])


@dataclass
class FolderResult:
    src: str
    dst: str
    found: int = 0
    copied: int = 0
    present: int = 0
    skipped: int = 0
    failed: int = 0
    bytes: int = 0
    seconds: float = 0.0
    deleted: int = 0  # --delete2
    altered: int = 0  # copied, but the destination server kept something else (stored_check)
    duplicates: int = 0  # Gmail: left out, another label folder copies it (migrate.gmail)
    error: str | None = None  # the folder could not be done
    message_errors: list[str] = field(default_factory=list)


@dataclass
class AccountResult:
    name: str
    src: str
    dst: str
    folders: dict[str, FolderResult] = field(default_factory=dict)  # by source name
    summary: AccountSummary | None = None
    errors: list[str] = field(default_factory=list)

    def settle(self) -> None:
        """Already present = what the run did not need to copy (nor left out, nor failed on)."""
        for f in self.folders.values():
            f.present = max(0, f.found - f.copied - f.skipped - f.failed - f.duplicates)


class Collector(UI):
    """Gathers per-folder results from worker events; prints errors and warnings to stderr."""

    def __init__(self, results: dict[str, AccountResult], errorsmax: int | None, quiet: bool) -> None:
        super().__init__()
        self.results = results
        self.errorsmax = errorsmax
        self.quiet = quiet
        self.started: dict[tuple[str, str], float] = {}
        self.errors = 0
        self.stop: Any = None  # set to a callable that stops the run
        self.stopped_by_errors = False

    def render(self, e: ev.Event) -> None:
        if isinstance(e, ev.AccountDone):
            r = self.results[e.account]
            r.summary = e.summary if r.summary is None else _joined(r.summary, e.summary)
            r.settle()
            return
        if isinstance(e, ev.Info):
            self._info(self.results[e.account], e)
            return
        if isinstance(e, ev.JobStarted | ev.JobDone | ev.JobFailed):
            self._job(self.results[e.account], e)
        for level, text in lines_of(e):
            if level == "error":
                for r in self.results.values():
                    if r.name == e.account or (not e.account and r.name in text):
                        r.errors.append(text)
                self._print(self.err, f"ERROR: {text}")
            elif level == "warning":
                self._print(self.err, f"WARNING: {text}")

    def _job(self, r: AccountResult, e: ev.JobStarted | ev.JobDone | ev.JobFailed) -> None:
        key = (r.name, e.folder)
        if isinstance(e, ev.JobStarted):
            self.started.setdefault(key, time.monotonic())  # the first of its jobs
        elif e.folder not in r.folders:
            return
        elif isinstance(e, ev.JobDone):
            f = r.folders[e.folder]  # a folder copied in UID ranges ends one job per range, then its sync
            f.copied += e.stats.to_near
            f.failed += e.stats.errors
            f.bytes += e.stats.bytes
            f.altered += e.stats.altered
            f.deleted += e.stats.del_near  # --delete2: pairs whose SRC message was deleted
            f.seconds = time.monotonic() - self.started.get(key, time.monotonic())
        else:
            f = r.folders[e.folder]
            f.error = e.message
            if e.scope == "interrupted":  # stopped (SIGTERM, a slice's end): what it had stored
                f.copied += e.stats.to_near
                f.bytes += e.stats.bytes

    def _info(self, r: AccountResult, e: ev.Info) -> None:
        if e.level == "error":
            self.errors += 1
            if e.folder in r.folders:
                r.folders[e.folder].message_errors.append(e.text)
            self._print(self.err, f"ERROR: {e.text}")
            if self.errorsmax is not None and self.errors >= self.errorsmax and not self.stopped_by_errors:
                self.stopped_by_errors = True
                self._print(self.err, f"ERROR: stopping after {self.errors} message errors (--errorsmax)")
                if self.stop is not None:
                    self.stop()
        elif e.level == "warning":
            self._print(self.err, f"WARNING: {e.folder!r}: {e.text}")
        elif not self.quiet:
            log.info("%s: %s", e.folder, e.text)


def _joined(first: AccountSummary, then: AccountSummary) -> AccountSummary:
    """One account's summary over two supervised passes (Gmail's All Mail goes last)."""
    stats = msgspec.structs.replace(first.stats)
    stats.add(then.stats)
    return msgspec.structs.replace(
        then,
        stats=stats,
        folders=first.folders + then.folders,
        folders_failed=first.folders_failed + then.folders_failed,
        seconds=first.seconds + then.seconds,
        failed=first.failed or then.failed,
        locked=first.locked or then.locked,
        interrupted=first.interrupted or then.interrupted,
        config_error=first.config_error or then.config_error,
    )


def close_quietly(store: ImapStore) -> None:
    with contextlib.suppress(FastsyncError):
        store.close()
