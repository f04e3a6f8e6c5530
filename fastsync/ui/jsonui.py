"""JSON: one event per line on stdout, for machines and log shippers.

Every line is an object with ``time`` (seconds since the epoch), ``type`` and ``account``
where there is one; worker events keep their own field names (see workers/events.py). No
password ever crosses into an event, so none can reach this output.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from fastsync.ui.base import UI, AccountSummary

_encoder = msgspec.json.Encoder()


class JsonUI(UI):
    name = "JSON"

    def emit(self, kind: str, **fields: Any) -> None:
        record = {"time": round(time.time(), 3), "type": kind, **fields}
        self.out.write(_encoder.encode(record).decode() + "\n")  # type: ignore[attr-defined]
        self.out.flush()  # type: ignore[attr-defined]

    def error(self, text: str) -> None:
        self.emit("error", text=text)

    def warn(self, text: str) -> None:
        self.emit("warning", text=text)

    def note(self, text: str) -> None:
        self.emit("note", text=text)

    def account_started(self, name: str, quick: bool = False) -> None:
        self.emit("account_started", account=name, quick=quick)

    def account_done(self, summary: AccountSummary) -> None:
        self.emit(
            "account_done",
            account=summary.name,
            state=summary.state(),
            folders=summary.folders,
            folders_failed=summary.folders_failed,
            seconds=round(summary.seconds, 3),
            stats=msgspec.structs.asdict(summary.stats),
        )

    def account_sleeping(self, name: str, seconds: float | None) -> None:
        self.emit("account_sleeping", account=name, seconds=seconds)

    def worker_exited(self, account: str, worker: int) -> None:
        self.emit("worker_exited", account=account, worker=worker)

    def event(self, account: str, e: object) -> None:
        if isinstance(e, msgspec.Struct):
            fields = msgspec.to_builtins(msgspec.structs.asdict(e))
            self.emit(_snake(type(e).__name__), account=account, **fields)


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))
