"""Completeness: every message of every folder of a Maildir tree, compared with the source's.

Each message is reduced to (content hash, flags) in its folder: the hash is of its bytes
without CR characters (a copy stored with LF and one with CRLF are the same message) and
without an ``X-TUID:`` header line (mbsync's bookkeeping, added to every message it stores);
the flags are the Maildir letters of its file name (system flags only). A destination is
complete when each folder holds exactly the source folder's multiset of (hash, flags).

Any directory named ``cur`` or ``new`` is a Maildir part, whatever the folder layout of the
tool (Maildir++ ``.a.b``, nested ``a/b``, verbatim); folder names are compared with the
separators unified and modified UTF-7 decoded. A message whose bytes differ but whose
Message-ID and flags match one missing at the same place is "altered", not missing: OfflineIMAP
rewrites a few headers (runs of spaces) and bare CRs. Altered messages are allowed up to
``BYTES_TOLERANCE`` of the source's bytes in total, and noted.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import imap_utf7

_TUID = re.compile(rb"^X-TUID: [^\r\n]*\r?\n", re.MULTILINE)
_MSGID = re.compile(rb"^message-id:[ \t]*(<[^>\r\n]*>)", re.MULTILINE | re.IGNORECASE)
_SYSTEM_FLAGS = frozenset("DFPRST")
BYTES_TOLERANCE = 1e-4

Message = tuple[bytes, str]  # (sha1 of the normalised bytes, sorted system flag letters)


@dataclass
class Tally:
    messages: int = 0
    imap_bytes: int = 0
    flagged: int = 0
    folders: dict[str, Counter[Message]] = field(default_factory=dict)
    ids: dict[tuple[str, Message], bytes] = field(default_factory=dict)  # -> Message-ID
    sizes: dict[bytes, int] = field(default_factory=dict)  # hash -> normalised size

    def differences(self, source: Tally) -> str:
        """'' when complete against ``source``; else one line naming what differs, by folder."""
        out, altered_bytes = [], 0
        for folder in sorted(set(source.folders) | set(self.folders)):
            missing, extra, _altered, delta = self._compare(source, folder)
            altered_bytes += delta
            parts = [f"{n} {what}" for n, what in ((missing, "missing"), (extra, "extra")) if n]
            if parts:
                out.append(f"{folder!r}: {', '.join(parts)}")
        if altered_bytes > BYTES_TOLERANCE * max(source.imap_bytes, 1):
            out.append(f"altered content: {altered_bytes} bytes differ (over the tolerance)")
        return "; ".join(out)

    def altered(self, source: Tally) -> str:
        """A note naming the messages present with changed bytes, else ''."""
        n = sum(self._compare(source, f)[2] for f in source.folders)
        return f"content altered in {n} messages" if n else ""

    def _compare(self, source: Tally, folder: str) -> tuple[int, int, int, int]:
        """(missing, extra, altered, bytes of the altered) of ``folder`` against ``source``."""
        want, have = source.folders.get(folder, Counter()), self.folders.get(folder, Counter())
        missing, extra = want - have, have - want
        by_id: Counter[tuple[bytes, str]] = Counter()
        for msg, n in extra.items():
            by_id[(self.ids.get((folder, msg), b""), msg[1])] += n
        altered = delta = 0
        for msg, n in list(missing.items()):
            key = (source.ids.get((folder, msg), b""), msg[1])  # same Message-ID, same flags
            take = min(n, by_id[key]) if key[0] else 0
            if take:
                by_id[key] -= take
                altered += take
                delta += take * source.sizes.get(msg[0], 0)
        n_missing = sum(missing.values()) - altered
        n_extra = sum(extra.values()) - altered
        return n_missing, n_extra, altered, delta


def folder_name(root: Path, folder_dir: str) -> str:
    """The folder a Maildir directory holds, in one spelling for every tool's layout."""
    rel = os.path.relpath(folder_dir, root)
    parts = [p for p in re.split(r"[/.]", rel) if p] if rel != "." else []
    decoded = [imap_utf7.decode(p.encode("ascii")) if "&" in p and p.isascii() else p for p in parts]
    name = "/".join(decoded)
    return "INBOX" if name in ("", "INBOX") else name


def tally(root: Path) -> Tally:
    t = Tally()
    for dirpath, dirnames, filenames in os.walk(root):
        if os.path.basename(dirpath) not in ("cur", "new"):
            continue
        dirnames.clear()
        where = folder_name(root, os.path.dirname(dirpath))
        folder = t.folders.setdefault(where, Counter())
        for name in filenames:
            with open(os.path.join(dirpath, name), "rb") as f:
                data = f.read()
            head_end = data.find(b"\n\n")
            head = data[: head_end if head_end >= 0 else len(data)]
            if b"X-TUID: " in head:
                data = _TUID.sub(b"", data, count=1)
            data = data.replace(b"\r", b"")
            _, sep, info = name.rpartition(":2,")
            flags = "".join(sorted(set(info) & _SYSTEM_FLAGS)) if sep else ""
            msg = (hashlib.sha1(data).digest(), flags)
            folder[msg] += 1
            m = _MSGID.search(head)
            if m:
                t.ids[(where, msg)] = m.group(1)
            t.sizes[msg[0]] = len(data)
            t.messages += 1
            t.imap_bytes += len(data)
            t.flagged += "F" in flags
    return t
