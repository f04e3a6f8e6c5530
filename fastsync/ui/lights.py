"""The model behind both Blinkenlights UIs: one light per account and per worker, a log.

Curses and Tk only draw this board; every event updates it here, so the two show the same.
Light states: idle, connecting, syncing (folder), copying, flagging, deleting, sleeping,
failed.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field

from fastsync.ui.base import UI, AccountSummary
from fastsync.ui.progress import ProgressTracker, Work, format_seconds
from fastsync.workers import events as ev

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

    def account_started(self, name: str, quick: bool) -> None:
        a = self.account(name)
        a.state, a.detail, a.wake_at = "syncing", "(quick)" if quick else "", None
        self.version += 1

    def account_done(self, s: AccountSummary) -> None:
        a = self.account(s.name)
        a.state = "failed" if s.failed else "idle"
        a.detail = s.state() if s.failed else ""
        self.add_log(s.line())

    def account_sleeping(self, name: str, seconds: float | None) -> None:
        a = self.account(name)
        a.state = "sleeping"
        a.wake_at = None if seconds is None else time.monotonic() + seconds
        for w in a.workers.values():
            w.state, w.folder, w.work = "idle", "", None
        self.version += 1

    def worker_exited(self, account: str, worker: int) -> None:
        self.account(account).workers.pop(worker, None)
        self.progress.finish(account, worker)
        self.version += 1

    def apply(self, account: str, e: object) -> None:
        a = self.account(account)
        if isinstance(e, ev.Info):
            if e.level in ("error", "warning", "info"):
                self.add_log(f"{account}: {e.folder}: {e.text}" if e.folder else f"{account}: {e.text}")
            elif e.level == "newmail":
                self.add_log(f"{account}: {e.folder}: new mail (IDLE)")
            return
        worker = getattr(e, "worker", None)
        if worker is None or isinstance(e, ev.Beat):
            return
        w = a.workers.setdefault(worker, WorkerLight(worker))
        if isinstance(e, ev.WorkerUp):
            w.state = "connecting"
        elif isinstance(e, ev.JobStarted):
            w.state, w.folder, w.work = "syncing", e.folder, None
        elif isinstance(e, ev.Progress):
            w.state, w.folder = _BY_WHAT.get(e.what, "syncing"), e.folder
            w.work = self.progress.update(account, e)
        elif isinstance(e, ev.JobDone | ev.JobFailed | ev.Discovered):
            w.state, w.folder, w.work = "idle", "", None
            self.progress.finish(account, worker)
            if isinstance(e, ev.JobFailed):
                self.add_log(f"{account}: {e.folder}: {e.message}")
        self.version += 1

    def busiest(self) -> Work | None:
        """The long work to show on the progress bar: the one with the most left to do."""
        works = [w.work for a in self.accounts.values() for w in a.workers.values() if w.work]
        return max(works, key=lambda w: w.total - w.done, default=None)


class BoardUI(UI):
    """A UI that keeps a Board of lights and a log (the Blinkenlights): reports go to the board."""

    def __init__(self, out: object = None, err: object = None) -> None:
        super().__init__(out, err)
        self.board = Board()

    def warn(self, text: str) -> None:
        self.board.add_log(f"WARNING: {text}")

    def note(self, text: str) -> None:
        self.board.add_log(text)

    def account_started(self, name: str, quick: bool = False) -> None:
        self.board.account_started(name, quick)

    def account_done(self, summary: AccountSummary) -> None:
        self.board.account_done(summary)

    def account_sleeping(self, name: str, seconds: float | None) -> None:
        self.board.account_sleeping(name, seconds)

    def worker_exited(self, account: str, worker: int) -> None:
        self.board.worker_exited(account, worker)

    def event(self, account: str, e: object) -> None:
        self.board.apply(account, e)
