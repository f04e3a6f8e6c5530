"""What every user interface offers. Code emits events; a UI only renders them.

A UI is chosen by name (OfflineIMAP's names) from ``-u`` or the ``ui`` fallback list in
[general]; the first that can run here wins (fastsync.ui.choose).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from fastsync.workers import events as ev


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

    def line(self) -> str:
        s = self.stats
        if self.locked:
            state = "LOCKED"
        elif self.failed:
            state = "FAILED"
        elif self.interrupted:
            state = "interrupted"
        else:
            state = "ok" if not (s.errors or self.folders_failed) else "with errors"
        return (
            f"account {self.name}: {state}: {self.folders} folders, "
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

    def error(self, text: str) -> None:
        self._print(self.err, f"ERROR: {text}")

    def warn(self, text: str) -> None:
        pass

    def note(self, text: str) -> None:
        pass

    def account_started(self, name: str) -> None:
        pass

    def account_done(self, summary: AccountSummary) -> None:
        pass

    def event(self, account: str, e: object) -> None:
        if isinstance(e, ev.Info) and e.level == "error":
            self.error(f"account {account}: {e.folder!r}: {e.text}")

    def can_prompt(self) -> bool:
        return False

    def ask_password(self, prompt: str) -> str | None:
        return None
