"""The model behind both Blinkenlights UIs: one light per account and per worker, a log.

Curses and Tk only draw this board; every event updates it here, so the two show the same.
Light states: idle, connecting, syncing (folder), copying, flagging, deleting, sleeping,
failed.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from fastsync import events as ev
from fastsync.ui.base import UI
from fastsync.ui.lines import Line, lines_of
from fastsync.ui.progress import ProgressTracker, Work, format_seconds

_WorkerLit = ev.WorkerUp | ev.JobStarted | ev.Progress | ev.JobDone | ev.JobFailed | ev.Discovered
_OfAWorker = (ev.WorkerUp, ev.JobStarted, ev.Progress, ev.JobDone, ev.JobFailed, ev.Discovered)
_BY_WHAT = {"to_near": "copying", "to_far": "copying", "flags": "flagging", "delete": "deleting"}


@dataclass
class WorkerLight:
    worker: int
    state: str = "connecting"
    folder: str = ""
    work: Work | None = None

    def text(self) -> str:
        if self.work is not None and self.state in ("copying", "flagging", "deleting"):
            return self.work.describe()
        return f"{self.state} {self.folder}".rstrip()


@dataclass
class AccountLight:
    name: str
    state: str = "idle"
    detail: str = ""
    wake_at: float | None = None  # monotonic time of the next autorefresh sync
    workers: dict[int, WorkerLight] = field(default_factory=dict)

    def text(self, now: float) -> str:
        if self.state == "sleeping":
            if self.wake_at is None:
                return "sleeping (waiting for new mail)"
            return f"sleeping, next sync in {format_seconds(max(0.0, self.wake_at - now))}"
        return f"{self.state} {self.detail}".rstrip()


class Board:
    def __init__(self, accounts: tuple[str, ...] = (), log_lines: int = 500) -> None:
        self.accounts: dict[str, AccountLight] = {a: AccountLight(a) for a in accounts}
        self.log: deque[str] = deque(maxlen=log_lines)
        self.progress = ProgressTracker()
        self.version = 0  # bumped on every change, so a UI redraws only when needed
        self.log_count = 0  # lines ever logged (the deque drops old ones)

    def account(self, name: str) -> AccountLight:
        if name not in self.accounts:
            self.accounts[name] = AccountLight(name)
        return self.accounts[name]

    def add_log(self, text: str) -> None:
        self.log.append(f"{time.strftime('%H:%M:%S')} {text}")
        self.log_count += 1
        self.version += 1

    def apply(self, e: ev.Event) -> list[Line]:
        """Update the lights for one event and log its lines (returned too)."""
        lines = lines_of(e)
        for level, text in lines:
            self.add_log(text if level == "info" else f"{level.upper()}: {text}")
        a = self.account(e.account)
        if isinstance(e, ev.AccountStarted):
            a.state, a.detail, a.wake_at = "syncing", "(quick)" if e.quick else "", None
        elif isinstance(e, ev.AccountDone):
            a.state = "failed" if e.summary.failed else "idle"
            a.detail = e.summary.state() if e.summary.failed else ""
        elif isinstance(e, ev.AccountSleeping):
            a.state = "sleeping"
            a.wake_at = None if e.seconds is None else time.monotonic() + e.seconds
            for w in a.workers.values():
                w.state, w.folder, w.work = "idle", "", None
        elif isinstance(e, ev.WorkerExited):
            a.workers.pop(e.worker, None)
            self.progress.finish(e.account, e.worker)
        elif isinstance(e, _OfAWorker):
            self._worker(a, e)
        self.version += 1
        return lines

    def _worker(self, a: AccountLight, e: _WorkerLit) -> None:
        w = a.workers.setdefault(e.worker, WorkerLight(e.worker))
        if isinstance(e, ev.WorkerUp):
            w.state = "connecting"
        elif isinstance(e, ev.JobStarted):
            w.state, w.folder, w.work = "syncing", e.folder, None
        elif isinstance(e, ev.Progress):
            w.state, w.folder = _BY_WHAT.get(e.what, "syncing"), e.folder
            w.work = self.progress.update(e)
        else:
            w.state, w.folder, w.work = "idle", "", None
            self.progress.finish(e.account, e.worker)

    def busiest(self) -> Work | None:
        """The long work to show on the progress bar: the one with the most left to do."""
        works = [w.work for a in self.accounts.values() for w in a.workers.values() if w.work]
        return max(works, key=lambda w: w.total - w.done, default=None)


class BoardUI(UI):
    """A UI that keeps a Board of lights and a log (the Blinkenlights): reports go to the board."""

    def __init__(self, out: object = None, err: object = None) -> None:
        super().__init__(out, err)
        self.board = Board()

    def render(self, e: ev.Event) -> None:
        for level, text in self.board.apply(e):
            if level == "error":
                self.show_error(text)

    def show_error(self, text: str) -> None:
        """An error line beyond the board's log (the screen may be gone when it matters)."""
