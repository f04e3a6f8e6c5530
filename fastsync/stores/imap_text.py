"""IMAP text helpers shared by the imapclient connection and the raw one: quoted strings (RFC
3501 4.3) and which servers take a command pipelined after LOGIN."""

from __future__ import annotations


def quotable(text: str) -> bool:
    """Whether ``text`` can travel as an IMAP quoted string (7-bit, no NUL, CR or LF)."""
    return all(0 < ord(ch) < 128 and ch not in "\r\n" for ch in text)


def quoted(text: str) -> bytes:
    return b'"' + text.replace("\\", "\\\\").replace('"', '\\"').encode("ascii") + b'"'


# Greetings of servers that lose what a client sends after LOGIN before LOGIN's answer:
# Courier's imaplogin reads the command, then execs imapd, and the bytes it had buffered are
# gone (the pipelined command is never answered). Verified against Courier-IMAP 5.0.
_DROPS_PIPELINED_LOGIN = (b"Courier-IMAP",)


def keeps_pipelined_login(welcome: bytes | None) -> bool:
    """Whether a command may follow LOGIN in the same write, judging by the server's greeting."""
    return not any(name in (welcome or b"") for name in _DROPS_PIPELINED_LOGIN)
