"""Noninteractive.Basic and TTY.TTYUI: plain timestamped lines, no cursor control."""

from __future__ import annotations

import getpass
import sys
import time

from fastsync.ui.base import UI, AccountSummary
from fastsync.workers import events as ev


class BasicUI(UI):
    name = "Noninteractive.Basic"

    def line(self, text: str) -> None:
        self._print(self.out, f"{time.strftime('%H:%M:%S')} {text}")

    def warn(self, text: str) -> None:
        self._print(self.err, f"WARNING: {text}")

    def note(self, text: str) -> None:
        self.line(text)

    def account_started(self, name: str) -> None:
        self.line(f"account {name}: syncing")

    def account_done(self, summary: AccountSummary) -> None:
        self.line(summary.line())

    def event(self, account: str, e: object) -> None:
        if isinstance(e, ev.Info):
            if e.level == "error":
                self.error(f"account {account}: {e.folder!r}: {e.text}")
            elif e.level == "warning":
                self.warn(f"account {account}: {e.folder!r}: {e.text}")
            else:
                self.line(f"account {account}: {e.folder!r}: {e.text}")
        elif isinstance(e, ev.JobDone) and e.changed:
            s = e.stats
            self.line(
                f"account {account}: {e.folder!r}: {s.to_near} ->near, {s.to_far} ->far, "
                f"{s.flags_far + s.flags_near} flags, {s.del_far + s.del_near} deleted"
            )


class TTYUI(BasicUI):
    """TTY.TTYUI: like Basic, but may ask for passwords on the terminal."""

    name = "TTY.TTYUI"

    def can_prompt(self) -> bool:
        return sys.stdin.isatty()

    def ask_password(self, prompt: str) -> str | None:
        if not self.can_prompt():
            return None
        return getpass.getpass(prompt)
