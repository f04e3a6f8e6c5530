"""IMAP quoted strings (RFC 3501 4.3), shared by the imapclient connection and the raw one."""

from __future__ import annotations


def quotable(text: str) -> bool:
    """Whether ``text`` can travel as an IMAP quoted string (7-bit, no NUL, CR or LF)."""
    return all(0 < ord(ch) < 128 and ch not in "\r\n" for ch in text)


def quoted(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'
