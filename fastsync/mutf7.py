"""IMAP's modified UTF-7 for mailbox names (RFC 3501 section 5.1.3), both ways.

Printable US-ASCII stands for itself, except ``&``, written ``&-``; any other run of
characters is ``&``, the modified base64 (``,`` for ``/``, no padding) of its UTF-16BE
form, then ``-``. Kept here rather than taken from imapclient so that the run which finds
nothing to do (fastsync.nochange) never has to import imapclient.
"""

from __future__ import annotations

import binascii

_AMP = 0x26
_DASH = 0x2D


def encode(name: str) -> bytes:
    out = bytearray()
    run: list[str] = []
    for ch in name:
        code = ord(ch)
        if 0x20 <= code <= 0x7E:
            if run:
                out += _shifted(run)
                run.clear()
            out += b"&-" if code == _AMP else bytes((code,))
        else:
            run.append(ch)
    if run:
        out += _shifted(run)
    return bytes(out)


def decode(raw: bytes) -> str:
    """Wire bytes -> text. Bytes outside a shifted run are taken one char each (latin-1).
    A run that is not the canonical form of some text (bad base64, half a character, left
    open at the end) is kept as it came, so one odd name from a server stays one folder's
    problem instead of failing the whole listing."""
    if _AMP not in raw:
        return raw.decode("latin-1")
    out: list[str] = []
    i, n = 0, len(raw)
    while i < n:
        amp = raw.find(b"&", i)
        if amp < 0:
            out.append(raw[i:].decode("latin-1"))
            break
        out.append(raw[i:amp].decode("latin-1"))
        dash = raw.find(b"-", amp + 1)
        if dash < 0:
            out.append(raw[amp:].decode("latin-1"))
            break
        body = raw[amp + 1 : dash]
        out.append("&" if not body else _unshifted(body))
        i = dash + 1
    return "".join(out)


def _shifted(run: list[str]) -> bytes:
    b64 = binascii.b2a_base64("".join(run).encode("utf-16-be"), newline=False)
    return b"&" + b64.rstrip(b"=").replace(b"/", b",") + b"-"


def _unshifted(body: bytes) -> str:
    b64 = body.replace(b",", b"/")
    try:
        text = binascii.a2b_base64(b64 + b"=" * (-len(b64) % 4), strict_mode=True).decode("utf-16-be")
    except (binascii.Error, UnicodeDecodeError):
        text = ""
    if not text or any(0x20 <= ord(c) <= 0x7E for c in text) or _shifted([text]) != b"&" + body + b"-":
        return "&" + body.decode("latin-1") + "-"
    return text
