"""The run that finds nothing to do, decided in the first process: no worker, no imapclient.

Most runs of a mail synchroniser (from cron, or a user's key) find nothing moved. Deciding
that costs one round trip to the far server (LOGIN + LIST-STATUS, stores/imap_quick.py),
the Maildir's directory times and each folder pair's state header: about what mbsync does.
Forking workers, importing asyncio, imapclient and the engine would cost several times more
than the decision itself, so this path comes before the supervisor.

It answers only when it can answer fully: every account a one-shot run (no autorefresh, no
IDLE), without hooks, with a Maildir near side and a UI with no screen of its own, and every
folder pair of every account unchanged by the same rules discovery applies (workers/quick.py).
Otherwise, or on any error, it answers None and the ordinary run does everything again (and
reports errors the ordinary way).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from fastsync.config import AccountConfig, Config, MaildirRepo
from fastsync.errors import FastsyncError
from fastsync.events import AccountDone, AccountStarted, AccountSummary
from fastsync.state.paths import account_dir
from fastsync.stores.imap_quick import PendingListing, begin_listing
from fastsync.ui.base import UI

log = logging.getLogger(__name__)


def eligible(account: AccountConfig, ui: UI, once: bool) -> bool:
    """Whether this path may decide for ``account`` at all."""
    continuous = not once and bool(account.autorefresh or account.remote.idlefolders)
    return (
        not continuous
        and isinstance(account.local, MaildirRepo)
        and not (account.presynchook or account.postsynchook)
        and type(ui).start_screen is UI.start_screen
    )


def unchanged_account(
    config: Config,
    account: AccountConfig,
    far_listing: PendingListing,
    pyglobals: dict[str, Any],
    *,
    folders: tuple[str, ...],
    quick: bool,
    dry_run: bool,
) -> bool:
    """True when no folder pair of ``account`` needs a visit (under its account lock).
    ``far_listing`` is the far server's listing, asked for already: its answer arrives while
    this imports what it needs and opens the near side."""
    # imported here, after the far server was asked: they load while it answers
    from fastsync.state import AccountLock
    from fastsync.stores import make_store
    from fastsync.workers.discovery import discover

    lock = AccountLock(Path(config.general.metadata), account.name)
    try:
        lock.acquire()
    except FastsyncError:
        return False  # locked, or the lock cannot be taken: the ordinary run says so
    try:
        near = make_store(account.local, None, dry_run=dry_run, fsync=config.general.fsync)
        near.connect()
        try:
            far = far_listing.finish()
            if far is None:
                return False
            pairs, _sizes, warnings, _ranges = discover(
                far,
                near,
                account,
                config.path,
                pyglobals,
                folders,
                metadata=config.general.metadata,
                quick=quick or account.quick < 0,
                split=(0, 1),
            )
        finally:
            near.close()
        return not pairs and not warnings
    except FastsyncError as e:
        log.debug("account %s: no quick answer (%s); the ordinary run follows", account.name, e)
        return False
    finally:
        lock.release()


def _has_states(metadata: Path, account: str) -> bool:
    try:
        with os.scandir(account_dir(metadata, account, create=False)) as it:
            return any(e.name.endswith(".state") for e in it)
    except OSError:
        return False


def settle(
    config: Config,
    names: tuple[str, ...],
    ui: UI,
    passwords: dict[str, str | None],
    pyglobals: dict[str, Any],
    *,
    folders: tuple[str, ...] = (),
    quick: bool = False,
    once: bool = False,
    dry_run: bool = False,
) -> bool:
    """True when every account in ``names`` is unchanged: each is then reported as synced
    with nothing to do, as the ordinary run would. False: nothing was reported."""
    started = time.monotonic()
    accounts = [config.accounts[n] for n in names]
    if not accounts or not all(eligible(a, ui, once) for a in accounts):
        return False
    if not all(_has_states(Path(config.general.metadata), a.name) for a in accounts):
        return False  # a first sync: no need to ask the server
    asked: list[PendingListing] = []
    try:
        for account in accounts:  # every far server asked first: they all answer meanwhile
            pending = begin_listing(account.remote, passwords.get(account.remote.name) or "")
            if pending is None:
                return False
            asked.append(pending)
        for account, pending in zip(accounts, asked, strict=True):
            if not unchanged_account(
                config, account, pending, pyglobals, folders=folders, quick=quick, dry_run=dry_run
            ):
                return False
    finally:
        for pending in asked:
            pending.close()
    seconds = time.monotonic() - started
    log.debug("nothing moved in %s: decided without workers in %.3f s", ", ".join(names), seconds)
    for account in accounts:
        ui.render(AccountStarted(account=account.name, quick=quick or account.quick < 0))
        summary = AccountSummary(name=account.name, seconds=seconds / len(accounts))
        ui.render(AccountDone(account=account.name, summary=summary))
    return True
