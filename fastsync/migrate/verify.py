"""``--verify[=ids|body]``: compare source and destination folder by folder after a migration.

Mode ``ids`` (the default): a message is identified by (Message-ID, size); one without a
Message-ID by (sha1 of its bytes, size). Cheap (headers only), but blind to a server that
rewrites bytes in place. Mode ``body``: every message by (sha256 of its bytes, size), so any
change to any byte is a difference; it reads every message of both sides again. Both sides
are compared as multisets, so duplicates count. Source messages over ``--maxsize`` are
expected to be missing and are left out.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from typing import Any

from fastsync.migrate.map import FolderMap
from fastsync.stores.imap import ImapStore

_MSGID = re.compile(rb"message-id:[ \t]*(.*?)[ \t]*\r?\n(?![ \t])", re.I | re.S)
Ident = tuple[str, int]
_CHUNK = 500  # UIDs per FETCH: keeps command lines short
_BODY_CHUNK = 50  # messages per FETCH of whole bodies: bounds the memory a response takes


def identities(
    store: ImapStore, folder: str, maxsize: int | None = None, mode: str = "ids"
) -> Counter[Ident]:
    """Identities (see the module docstring) of every message of ``folder``, with multiplicity."""
    if mode == "body":
        return Counter(body_identities(store, folder, maxsize).values())
    return Counter(uid_identities(store, folder, maxsize).values())


def body_identities(store: ImapStore, folder: str, maxsize: int | None = None) -> dict[int, Ident]:
    """UID -> (sha256 of the message's bytes, size) of every message of ``folder``."""
    out: dict[int, Ident] = {}
    if not store.select(folder).messages:
        return out
    with store._errors("UID SEARCH ALL", folder=folder):
        uids = sorted(store.client.search(["ALL"]))
    for i in range(0, len(uids), _BODY_CHUNK):
        with store._errors("UID FETCH (BODY.PEEK[])", folder=folder):
            bodies = store.client.fetch(uids[i : i + _BODY_CHUNK], [b"BODY.PEEK[]"])
        for uid, d in bodies.items():
            body = d.get(b"BODY[]")
            if body is None or (maxsize is not None and len(body) > maxsize):
                continue
            out[uid] = ("sha256:" + hashlib.sha256(body).hexdigest(), len(body))
    return out


def uid_identities(store: ImapStore, folder: str, maxsize: int | None = None) -> dict[int, Ident]:
    """UID -> (Message-ID or body hash, size) of every message of the (now selected) ``folder``.

    Reads through imapclient's own search/fetch: verification stays independent of the
    sync's fetch path it is checking.
    """
    out: dict[int, Ident] = {}
    if not store.select(folder).messages:
        return out
    with store._errors("UID SEARCH ALL", folder=folder):
        uids = sorted(store.client.search(["ALL"]))
    no_id: list[int] = []
    for i in range(0, len(uids), _CHUNK):
        chunk = uids[i : i + _CHUNK]
        with store._errors("UID FETCH (RFC822.SIZE MESSAGE-ID)", folder=folder):
            resp = store.client.fetch(chunk, [b"RFC822.SIZE", b"BODY.PEEK[HEADER.FIELDS (MESSAGE-ID)]"])
        for uid in chunk:
            d = resp.get(uid)
            if d is None or b"RFC822.SIZE" not in d:
                continue  # expunged meanwhile
            size = int(d[b"RFC822.SIZE"])
            if maxsize is not None and size > maxsize:
                continue
            header = next((v for k, v in d.items() if k.startswith(b"BODY[HEADER.FIELDS")), b"") or b""
            m = _MSGID.search(header + b"\r\n")
            if m and m.group(1).strip():
                out[uid] = (" ".join(m.group(1).decode("ascii", "replace").split()), size)
            else:
                no_id.append(uid)
    for i in range(0, len(no_id), _CHUNK):
        with store._errors("UID FETCH (BODY.PEEK[])", folder=folder):
            bodies = store.client.fetch(no_id[i : i + _CHUNK], [b"BODY.PEEK[]"])
        for uid, d in bodies.items():
            body = d.get(b"BODY[]")
            if body is not None:
                out[uid] = ("sha1:" + hashlib.sha1(body).hexdigest(), len(body))
    return out


def verify(
    src: ImapStore, dst: ImapStore, maps: list[FolderMap], maxsize: int | None, mode: str = "ids"
) -> dict[str, Any]:
    """Per folder: counts on both sides and the identities missing on or extra on the destination."""
    folders = []
    clean = True
    for m in maps:
        a = identities(src, m.src, maxsize, mode)
        b = identities(dst, m.dst, mode=mode) if _exists(dst, m.dst) else Counter()
        missing, extra = a - b, b - a
        ok = not missing and not extra
        clean = clean and ok
        folders.append(
            {
                "src": m.src,
                "dst": m.dst,
                "src_count": sum(a.values()),
                "dst_count": sum(b.values()),
                "ok": ok,
                "missing_on_dst": [f"{i} ({s} bytes)" for i, s in sorted(missing.elements())][:50],
                "extra_on_dst": [f"{i} ({s} bytes)" for i, s in sorted(extra.elements())][:50],
            }
        )
    return {"clean": clean, "mode": mode, "folders": folders}


def _exists(store: ImapStore, name: str) -> bool:
    return any(e.name == name for e in store.list_folders())


def verify_text(result: dict[str, Any]) -> str:
    mode = "by message bytes" if result.get("mode") == "body" else "by Message-ID and size"
    lines = ["verify: " + ("clean" if result["clean"] else "DIFFERENCES") + f" ({mode})"]
    for f in result["folders"]:
        state = "ok" if f["ok"] else "DIFFERS"
        lines.append(
            f"  {f['src']!r} -> {f['dst']!r}: source {f['src_count']}, destination {f['dst_count']}: {state}"
        )
        for label in ("missing_on_dst", "extra_on_dst"):
            for item in f[label]:
                lines.append(f"    {label.replace('_', ' ')}: {item}")
    return "\n".join(lines)
