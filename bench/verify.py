"""Completeness: count the messages, their bytes and their \\Flagged flags in a Maildir tree.

Bytes are counted without CR characters, so a copy stored with LF and one stored with CRLF
both equal the server's size; an ``X-TUID:`` header line (mbsync's bookkeeping, added to every
message it stores) is not counted either. Any directory named ``cur`` or ``new`` is a
Maildir part, whatever the folder layout of the tool (Maildir++, nested, verbatim).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_TUID = re.compile(rb"^X-TUID: [^\r\n]*\r?\n", re.MULTILINE)
# Tolerated difference in total bytes, as a share of the source's (count and flags stay exact):
# OfflineIMAP rewrites a few headers (runs of spaces) and bare CRs; that is not missing mail.
BYTES_TOLERANCE = 1e-4


@dataclass(frozen=True)
class Tally:
    messages: int
    imap_bytes: int
    flagged: int

    def differences(self, source: Tally) -> str:
        """'' when complete against ``source``; else one line naming what differs."""
        parts = [f"{what} {mine} != {theirs}" for what, mine, theirs in (
            ("messages", self.messages, source.messages),
            ("flagged", self.flagged, source.flagged),
        ) if mine != theirs]
        if abs(self.imap_bytes - source.imap_bytes) > BYTES_TOLERANCE * source.imap_bytes:
            parts.append(f"bytes {self.imap_bytes} != {source.imap_bytes}")
        return "; ".join(parts)

    def altered(self, source: Tally) -> str:
        """A note when the bytes differ within the tolerance, else ''."""
        delta = self.imap_bytes - source.imap_bytes
        return f"content altered: {delta:+d} bytes in total" if delta else ""


def tally(root: Path) -> Tally:
    messages = size = flagged = 0
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) not in ("cur", "new"):
            continue
        dirnames.clear()
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                data = f.read()
            messages += 1
            head_end = data.find(b"\n\n")
            if b"X-TUID: " in data[: head_end if head_end >= 0 else len(data)]:
                data = _TUID.sub(b"", data, count=1)
            size += len(data) - data.count(b"\r")
            _, sep, info = name.rpartition(":2,")
            flagged += bool(sep) and "F" in info
    return Tally(messages, size, flagged)
