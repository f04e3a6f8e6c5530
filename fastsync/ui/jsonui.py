"""JSON: one event per line on stdout, for machines and log shippers.

Every line is an object with ``time`` (seconds since the epoch), ``type`` and ``account``
where there is one; worker events keep their own field names (see events.py). No
password ever crosses into an event, so none can reach this output.
"""

from __future__ import annotations

import time
from typing import Any

import msgspec

from fastsync import events as ev
from fastsync.ui.base import UI

_encoder = msgspec.json.Encoder()


class JsonUI(UI):
    name = "JSON"

    def emit(self, kind: str, **fields: Any) -> None:
        record = {"time": round(time.time(), 3), "type": kind, **fields}
        self.out.write(_encoder.encode(record).decode() + "\n")  # type: ignore[attr-defined]
        self.out.flush()  # type: ignore[attr-defined]

    def render(self, e: ev.Event) -> None:
        """One line per event: a Notice as ``error``/``warning``/``note``, an AccountDone with its
        summary's fields at the top level, every other event with its own fields."""
        if isinstance(e, ev.Notice):
            kind = "note" if e.level == "info" else e.level
            fields: dict[str, Any] = {"text": e.text}
            if e.account:
                fields["account"] = e.account
            self.emit(kind, **fields)
        elif isinstance(e, ev.AccountDone):
            s = e.summary
            self.emit(
                "account_done",
                account=s.name,
                state=s.state(),
                folders=s.folders,
                folders_failed=s.folders_failed,
                seconds=round(s.seconds, 3),
                stats=msgspec.structs.asdict(s.stats),
            )
        else:
            self.emit(_snake(type(e).__name__), **msgspec.to_builtins(msgspec.structs.asdict(e)))


def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() and i else c.lower() for i, c in enumerate(name))
