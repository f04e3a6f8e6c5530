"""Noninteractive.Basic and TTY.TTYUI: plain timestamped lines, no colours, no cursor control."""

from __future__ import annotations

import getpass
import sys
import time

from fastsync import events as ev
from fastsync.ui.base import UI
from fastsync.ui.lines import lines_of
from fastsync.ui.progress import ProgressTracker

PROGRESS_EVERY = 2.0  # seconds between progress lines of one worker (the last one always shows)


class BasicUI(UI):
    name = "Noninteractive.Basic"

    def __init__(self, out: object = None, err: object = None) -> None:
        super().__init__(out, err)
        self.progress = ProgressTracker()
        self._shown: dict[tuple[str, int], float] = {}

    def line(self, text: str) -> None:
        self._print(self.out, f"{time.strftime('%H:%M:%S')} {text}")

    def render(self, e: ev.Event) -> None:
        if isinstance(e, ev.Progress):
            self._progress(e)
        elif isinstance(e, ev.JobDone | ev.JobFailed):
            self.progress.finish(e.account, e.worker)
        for level, text in lines_of(e):
            if level == "info":
                self.line(text)
            else:
                self._print(self.err, f"{level.upper()}: {text}")

    def _progress(self, e: ev.Progress) -> None:
        account = e.account
        work = self.progress.update(e)
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
