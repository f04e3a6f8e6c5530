"""Progress of long work, from Progress events: messages done/total, bytes, rate and ETA.

Progress events carry cumulative counters per worker, folder and kind of work; the tracker
remembers when each piece of work started, so rates and the ETA need no clock in the worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec

from fastsync import events as ev

WHAT = {
    "to_near": "copying far->near",
    "to_far": "copying near->far",
    "flags": "flagging",
    "delete": "deleting",
}


class Work(msgspec.Struct):
    folder: str
    what: str
    done: int
    total: int
    bytes: int
    started: float
    now: float

    @property
    def fraction(self) -> float:
        return min(1.0, self.done / self.total) if self.total > 0 else 0.0

    @property
    def rate(self) -> float:
        """Messages per second so far."""
        spent = self.now - self.started
        return self.done / spent if spent > 0 else 0.0

    @property
    def byte_rate(self) -> float:
        spent = self.now - self.started
        return self.bytes / spent if spent > 0 else 0.0

    @property
    def eta(self) -> float | None:
        """Seconds left at the rate so far; None before there is a rate."""
        if self.total <= 0 or self.done <= 0 or self.rate <= 0:
            return None
        return max(0.0, (self.total - self.done) / self.rate)

    def describe(self) -> str:
        """``copying far->near INBOX: 120/500 msgs, 3.4 MB, 40 msg/s, 1.2 MB/s, ETA 0:09``."""
        parts = [f"{WHAT.get(self.what, self.what)} {self.folder}: {self.done}/{self.total} msgs"]
        if self.bytes:
            parts.append(f"{self.bytes / 1e6:.1f} MB")
        if self.rate:
            parts.append(f"{self.rate:.0f} msg/s")
        if self.byte_rate:
            parts.append(f"{self.byte_rate / 1e6:.1f} MB/s")
        eta = self.eta
        if eta is not None:
            parts.append(f"ETA {format_seconds(eta)}")
        return ", ".join(parts)


def format_seconds(seconds: float) -> str:
    s = int(seconds + 0.5)
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


class ProgressTracker:
    """Per (account, worker): the piece of work it is doing now."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._work: dict[tuple[str, int], Work] = {}

    def update(self, e: ev.Progress) -> Work:
        now = self._clock()
        key = (e.account, e.worker)
        w = self._work.get(key)
        if w is None or w.folder != e.folder or w.what != e.what or e.done < w.done:
            w = Work(e.folder, e.what, e.done, e.total, e.bytes, started=now, now=now)
            self._work[key] = w
        w.done, w.total, w.bytes, w.now = e.done, e.total, e.bytes, now
        return w

    def current(self, account: str, worker: int) -> Work | None:
        return self._work.get((account, worker))

    def finish(self, account: str, worker: int) -> None:
        self._work.pop((account, worker), None)
