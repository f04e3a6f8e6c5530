"""Noninteractive.Basic and TTY.TTYUI: plain timestamped lines, no colours, no cursor control."""

from __future__ import annotations

import getpass
import sys
import time

from fastsync.ui.base import UI, AccountSummary
from fastsync.ui.progress import ProgressTracker, format_seconds
from fastsync.workers import events as ev

PROGRESS_EVERY = 2.0  # seconds between progress lines of one worker (the last one always shows)


class BasicUI(UI):
    name = "Noninteractive.Basic"

    def __init__(self, out: object = None, err: object = None) -> None:
        super().__init__(out, err)
        self.progress = ProgressTracker()
        self._shown: dict[tuple[str, int], float] = {}

    def line(self, text: str) -> None:
        self._print(self.out, f"{time.strftime('%H:%M:%S')} {text}")

    def warn(self, text: str) -> None:
        self._print(self.err, f"WARNING: {text}")

    def note(self, text: str) -> None:
        self.line(text)

    def account_started(self, name: str, quick: bool = False) -> None:
        self.line(f"account {name}: {'quick ' if quick else ''}syncing")

    def account_done(self, summary: AccountSummary) -> None:
        self.line(summary.line())

    def account_sleeping(self, name: str, seconds: float | None) -> None:
        if seconds is None:
            self.line(f"account {name}: waiting for new mail (IDLE)")
        else:
            self.line(f"account {name}: next sync in {format_seconds(seconds)}")

    def event(self, account: str, e: object) -> None:
        if isinstance(e, ev.Info):
            if e.level == "error":
                self.error(f"account {account}: {e.folder!r}: {e.text}")
            elif e.level == "warning":
                self.warn(f"account {account}: {e.folder!r}: {e.text}")
            elif e.level == "newmail":
                self.line(f"account {account}: {e.folder!r}: changed on the server (IDLE)")
            elif e.level == "info":
                self.line(f"account {account}: {e.folder!r}: {e.text}")
        elif isinstance(e, ev.Progress):
            self._progress(account, e)
        elif isinstance(e, ev.JobDone | ev.JobFailed):
            self.progress.finish(account, e.worker)
            if isinstance(e, ev.JobDone) and e.changed:
                s = e.stats
                what = f"{e.folder!r} (range copy {e.part})" if e.part else repr(e.folder)
                self.line(
                    f"account {account}: {what}: {s.to_near} ->near, {s.to_far} ->far, "
                    f"{s.flags_far + s.flags_near} flags, {s.del_far + s.del_near} deleted"
                )

    def _progress(self, account: str, e: ev.Progress) -> None:
        work = self.progress.update(account, e)
        key = (account, e.worker)
        last = self._shown.get(key, 0.0)
        if e.total > 0 and (e.done >= e.total or work.now - last >= PROGRESS_EVERY):
            self._shown[key] = work.now
            if work.done > 0:
                self.line(f"account {account}: {work.describe()}")


class TTYUI(BasicUI):
    """TTY.TTYUI: like Basic, and asks for passwords on the terminal (never echoed)."""

    name = "TTY.TTYUI"

    def can_prompt(self) -> bool:
        return sys.stdin.isatty()

    def ask_password(self, prompt: str) -> str | None:
        if not self.can_prompt():
            return None
        return getpass.getpass(prompt)
