"""Small value types shared by every layer: sides, flags, message metadata, content keys.

Flags are one int bitmask whose bits follow the Maildir letter order (D F P R S T), so a
Maildir info suffix and an IMAP flag list convert through one table.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Iterable

import msgspec


class Side(enum.Enum):
    FAR = "far"
    NEAR = "near"

    @property
    def other(self) -> Side:
        return Side.NEAR if self is Side.FAR else Side.FAR


# Bit per Maildir letter, in the letter order Maildir requires for the info suffix.
DRAFT, FLAGGED, PASSED, REPLIED, SEEN, TRASHED = 1, 2, 4, 8, 16, 32
ALL_FLAGS = 63
_LETTERS = "DFPRST"
_IMAP_NAMES = (b"\\Draft", b"\\Flagged", b"$Forwarded", b"\\Answered", b"\\Seen", b"\\Deleted")
_IMAP_BIT = {name.lower(): 1 << i for i, name in enumerate(_IMAP_NAMES)}


def flags_from_maildir(info: str) -> int:
    """Flags of a Maildir info string (the part after ``:2,``); unknown letters are ignored."""
    bits = 0
    for ch in info:
        i = _LETTERS.find(ch)
        if i >= 0:
            bits |= 1 << i
    return bits


def flags_to_maildir(flags: int) -> str:
    return "".join(ch for i, ch in enumerate(_LETTERS) if flags & (1 << i))


def flags_from_imap(names: Iterable[bytes | str]) -> int:
    """Flags we sync from an IMAP flag list; keywords other than $Forwarded are not ours."""
    bits = 0
    for name in names:
        raw = name.encode() if isinstance(name, str) else name
        bits |= _IMAP_BIT.get(raw.lower(), 0)
    return bits


def keywords_of(names: Iterable[bytes | str]) -> tuple[bytes, ...]:
    """The IMAP flags of a list that are not ours (keywords), to carry along on copy."""
    out = []
    for name in names:
        raw = name.encode() if isinstance(name, str) else name
        if not raw.startswith(b"\\") and raw.lower() not in _IMAP_BIT:  # system flags start with \\
            out.append(raw)
    return tuple(out)


def flags_to_imap(flags: int) -> list[bytes]:
    return [name for i, name in enumerate(_IMAP_NAMES) if flags & (1 << i)]


def flags_repr(flags: int) -> str:
    return flags_to_maildir(flags) or "-"


class Fetched(msgspec.Struct, array_like=True):
    """One message read from a store, in canonical wire form (CRLF line ends)."""

    uid: int
    flags: int
    internaldate: float  # seconds since the epoch, UTC
    data: bytes
    keywords: tuple[bytes, ...] = ()  # IMAP keywords fastsync does not sync, kept on copy


class Outgoing(msgspec.Struct, array_like=True):
    """One message to store, in canonical wire form; ``src_uid`` is its UID on the other side."""

    src_uid: int
    flags: int
    internaldate: float
    data: bytes
    keywords: tuple[bytes, ...] = ()  # stored with the message where the store can (IMAP)


def header_section(data: bytes) -> bytes:
    """The header block of a message (up to the first empty line), any line ending."""
    for sep in (b"\r\n\r\n", b"\n\n"):
        i = data.find(sep)
        if i >= 0:
            return data[:i]
    return data


def content_key(header: bytes, size: int) -> bytes:
    """Identity of a message independent of UIDs and line endings.

    The header block is normalised to LF and stripped of trailing line ends, hashed, and
    joined with the message size in CRLF form, so the same message has the same key on an
    IMAP server and in a Maildir file.
    """
    norm = header.replace(b"\r\n", b"\n").rstrip(b"\n")
    return hashlib.sha1(norm).digest()[:12] + size.to_bytes(8, "big")


_MESSAGE_ID = re.compile(rb"^message-id:[ \t]*(.*(?:\r?\n[ \t].*)*)", re.I | re.M)


def message_id(header: bytes) -> bytes | None:
    """The Message-ID of a header block, whitespace-normalised; None when it has none."""
    m = _MESSAGE_ID.search(header)
    if not m:
        return None
    value = b" ".join(m.group(1).split())
    return value or None


def loose_key(header: bytes, internaldate: float, size: int) -> bytes | None:
    """A second identity that survives a server rewriting header bytes in place.

    Cyrus, for one, replaces 8-bit bytes in headers with ``X``: the size stays, the header
    hash (content_key) does not. Message-ID + INTERNALDATE (whole seconds) + size still
    match. None for a message without a Message-ID or a date, which then has no second key.
    """
    mid = message_id(header)
    if mid is None or internaldate <= 0:
        return None
    stamp = int(internaldate).to_bytes(8, "big", signed=True)
    return b"L" + hashlib.sha1(mid).digest()[:11] + stamp + size.to_bytes(8, "big")


def crlf_size(data: bytes) -> int:
    """Size of ``data`` once bare LF line ends are turned into CRLF."""
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


def to_lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def to_crlf(data: bytes) -> bytes:
    """LF -> CRLF, leaving existing CRLF alone."""
    if b"\n" not in data:
        return data
    if b"\r" not in data:  # the usual Maildir file: one pass, one copy
        return data.replace(b"\n", b"\r\n")
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
