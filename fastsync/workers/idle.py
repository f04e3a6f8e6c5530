"""The IDLE watcher process: one far connection per watched folder (``idlefolders``).

It selects the folder read-only, sits in IMAP IDLE, and reports ``Info(level="newmail")``
when the server says the folder changed (EXISTS, EXPUNGE, FETCH, RECENT); the supervisor
then runs a quick sync of the account. IDLE is re-issued every ``renew`` seconds, well
before the 29 minutes after which RFC 2177 lets a server drop an idle client. A dropped
connection is re-opened after a short pause; a refused login ends the watcher with
``JobFailed(scope="account")``. It never writes to the store.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import msgspec

from fastsync import events as ev
from fastsync.config import ImapRepo
from fastsync.errors import AccountError, FastsyncError
from fastsync.workers import detach_from_supervisor
from fastsync.workers.channel import EventWriter

log = logging.getLogger(__name__)

RENEW_SECONDS = 25 * 60.0
_CHANGES = (b"EXISTS", b"EXPUNGE", b"FETCH", b"RECENT")


class IdleSpec(msgspec.Struct, frozen=True):
    worker: int
    repo: ImapRepo
    password: str | None
    folder: str
    renew: float = RENEW_SECONDS
    poll: float = 1.0  # seconds per idle_check, so a stop request is seen quickly


class _Watcher:
    def __init__(self, spec: IdleSpec, events: int) -> None:
        self.spec = spec
        self.emit = EventWriter(events).emit
        self.stopping = False

    def run(self) -> None:
        from imapclient.exceptions import IMAPClientError

        s = self.spec
        delay = 1.0
        while not self.stopping:
            store = self._connect()
            try:
                store.client.select_folder(s.folder, readonly=True)
                self.emit(ev.Info(worker=s.worker, folder=s.folder, level="idle", text="watching"))
                delay = 1.0
                while not self.stopping:
                    if self._idle_once(store.client):
                        self.emit(ev.Info(worker=s.worker, folder=s.folder, level="newmail", text=""))
            except (OSError, IMAPClientError) as e:
                log.info("IDLE on %r dropped (%s); reconnecting in %.0f s", s.folder, e, delay)
            finally:
                store.close()
            self._sleep(delay)
            delay = min(delay * 2, 60.0)

    def _connect(self) -> Any:
        from fastsync.stores.imap import ImapStore

        store = ImapStore(self.spec.repo, self.spec.password or "", readonly=True)
        store.connect()
        return store

    def _idle_once(self, client: Any) -> bool:
        """One IDLE command, until a change or ``renew`` seconds; True when something changed."""
        client.idle()
        deadline = time.monotonic() + self.spec.renew
        changed = False
        try:
            while not self.stopping and not changed and time.monotonic() < deadline:
                for resp in client.idle_check(timeout=self.spec.poll):
                    if len(resp) > 1 and resp[1] in _CHANGES:
                        changed = True
        finally:
            client.idle_done()
        return changed

    def _sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < end:
            time.sleep(0.1)


def idle_main(spec: IdleSpec, events: int) -> None:
    """Entry point of the IDLE watcher process; ``events``: the write end of its event pipe."""
    watcher = _Watcher(spec, events)

    def ask_stop(signum: int, frame: object) -> None:
        watcher.stopping = True

    detach_from_supervisor()
    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    try:
        watcher.run()
    except AccountError as e:
        watcher.emit(ev.JobFailed(worker=spec.worker, folder=spec.folder, scope="account", message=str(e)))
    except FastsyncError as e:
        watcher.emit(ev.JobFailed(worker=spec.worker, folder=spec.folder, scope="folder", message=str(e)))
