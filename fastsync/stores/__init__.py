"""Mail stores behind one interface (base.Store): IMAP servers and Maildirs."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastsync.stores.base import Store

if TYPE_CHECKING:
    from fastsync.config import ImapRepo, MaildirRepo


def make_store(repo: ImapRepo | MaildirRepo, password: str | None, *, dry_run: bool, fsync: bool) -> Store:
    """The store a repository section describes (not connected yet)."""
    from fastsync.config import ImapRepo

    if isinstance(repo, ImapRepo):
        from fastsync.stores.imap import ImapStore

        return ImapStore(repo, password or "", readonly=repo.readonly, dry_run=dry_run)
    from fastsync.stores.maildir import MaildirStore

    return MaildirStore(repo.localfolders, repo.sep, fsync=fsync, readonly=repo.readonly, dry_run=dry_run)
