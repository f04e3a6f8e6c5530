"""What every user interface offers. Code emits events; a UI only renders them.

A UI is chosen by name (OfflineIMAP's names) from ``-u`` or the ``ui`` fallback list in
[general]; the first that can run here wins (fastsync.ui.choose). Only the supervisor calls
a UI. An interactive UI talks back through the ``Controls`` it is given at ``start_screen``: "sync
this account now" and "quit" (which is the same request as SIGTERM).

A UI never shows, logs or echoes a password: ``ask_password`` returns it to the caller only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastsync.workers import events as ev

if TYPE_CHECKING:  # asyncio costs a run that finds nothing to do a good part of its start-up
    import asyncio


class UIUnavailable(Exception):
    """This UI cannot run here (no display, no terminal, no tkinter); the message says why."""


@dataclass
class Controls:
    """What an interactive UI may ask of the supervisor."""

    accounts: tuple[str, ...]
    sync_now: Callable[[str | None], None]
    quit: Callable[[], None]


@dataclass
class AccountSummary:
    name: str
    stats: ev.FolderStats = field(default_factory=ev.FolderStats)
    folders: int = 0
    folders_failed: int = 0
    seconds: float = 0.0
    failed: bool = False
    locked: bool = False
    interrupted: bool = False

    @property
    def errors(self) -> int:
        return self.stats.errors

    def state(self) -> str:
        if self.locked:
            return "LOCKED"
        if self.failed:
            return "FAILED"
        if self.interrupted:
            return "interrupted"
        return "ok" if not (self.stats.errors or self.folders_failed) else "with errors"

    def line(self) -> str:
        s = self.stats
        return (
            f"account {self.name}: {self.state()}: {self.folders} folders, "
            f"copied {s.to_near} far->near and {s.to_far} near->far, "
            f"flags changed {s.flags_far + s.flags_near}, deleted {s.del_far + s.del_near}, "
            f"errors {s.errors + self.folders_failed}, {self.seconds:.1f} s"
        )


class UI:
    """Base UI: prints errors to stderr and nothing else (Noninteractive.Quiet)."""

    name = "Noninteractive.Quiet"

    def __init__(self, out: object = None, err: object = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def _print(self, stream: object, text: str) -> None:
        print(text, file=stream, flush=True)  # type: ignore[call-overload]

    # -- lifecycle (interactive UIs draw their screen between start_screen and stop_screen) --------------
    def start_screen(self, controls: Controls, loop: asyncio.AbstractEventLoop) -> None:
        """Called once on the supervisor's loop before the first sync (after password prompts)."""

    def stop_screen(self) -> None:
        """Called once at the end; restores the terminal or closes the window."""

    # -- what the supervisor reports ----------------------------------------------------------
    def error(self, text: str) -> None:
        self._print(self.err, f"ERROR: {text}")

    def warn(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def account_started(self, name: str, quick: bool = False) -> None:
        pass

    def account_done(self, summary: AccountSummary) -> None:
        pass

    def account_sleeping(self, name: str, seconds: float | None) -> None:
        """The account waits for its next sync: ``seconds`` (autorefresh), or None (IDLE only)."""

    def worker_exited(self, account: str, worker: int) -> None:
        pass

    def event(self, account: str, e: object) -> None:
        if isinstance(e, ev.Info) and e.level == "error":
            self.error(f"account {account}: {e.folder!r}: {e.text}")

    # -- passwords ----------------------------------------------------------------------------
    def can_prompt(self) -> bool:
        return False

    def ask_password(self, prompt: str) -> str | None:
        return None
