"""File-name grammar of Maildir messages as fastsync reads and writes them.

A message file is named ``<base>[:<info>]``. The base starts with a unique part
(``<sec>.M<usec>P<pid>Q<counter>.<host>`` for the files we create) and may carry
comma-separated fields; ours are ``,U=<uid>,V=<validity in lower-case hex>`` right after
the unique part (as mbsync keeps native UIDs, plus the validity so that a file moved in
from another folder is recognised). Other tools' fields (OfflineIMAP's ``FMD5=...``) are
kept. The info ``2,<letters>`` holds the flags in ASCII order; letters we do not sync
(keywords a-z, unknown capitals) are kept when we change flags.

The base never changes when a mail reader changes flags, so a message keeps its UID.
"""

from __future__ import annotations

import itertools
import os
import socket
import time

from fastsync.model import flags_from_maildir, flags_to_maildir

INFO_SEP = ":"
NAME_MAX = 255  # bytes in one file name on the file systems Maildirs live on
_OUR_LETTERS = frozenset("DFPRST")
_counter = itertools.count(1)
_host: str | None = None


def escape_host(host: str) -> str:
    """Host name as Maildir allows it in a unique name: '/', ':' and ',' escaped in octal."""
    return host.replace("/", "\\057").replace(":", "\\072").replace(",", "\\054")


def unique_base() -> str:
    """A fresh unique part for a file we create in this process."""
    global _host
    if _host is None:
        _host = escape_host(socket.gethostname() or "localhost")
    now = time.time_ns()
    sec, usec = divmod(now // 1000, 1_000_000)
    return f"{sec}.M{usec}P{os.getpid()}Q{next(_counter)}.{_host}"


def split_name(name: str) -> tuple[str, str | None]:
    """(base, info) of a file name; info is None when the name has no info part."""
    i = name.rfind(INFO_SEP)
    if i < 0:
        return name, None
    return name[:i], name[i + 1 :]


def join_name(base: str, info: str | None) -> str:
    return base if info is None else f"{base}{INFO_SEP}{info}"


def info_flags(info: str | None) -> int:
    """Flags bits of an info part; anything but ``2,...`` carries no flags."""
    if info is None or not info.startswith("2,"):
        return 0
    return flags_from_maildir(info[2:])


def info_with_flags(info: str | None, flags: int) -> str:
    """The info part holding ``flags``, keeping letters of ``info`` that are not ours."""
    kept = {c for c in info[2:] if c not in _OUR_LETTERS} if info and info.startswith("2,") else set()
    letters = kept.union(flags_to_maildir(flags))
    return "2," + "".join(sorted(letters))


def uid_of(base: str, vhex: str) -> int:
    """The UID written in ``base`` if its V field equals ``vhex``; 0 when absent or foreign.

    The U and V fields are the first of their kind among the comma-separated fields after
    the first. Names as with_uid writes them (``...,U=7,V=1f``, perhaps more fields after)
    are read without splitting; anything else takes the general way."""
    u = base.find(",U=")
    if u < 0:
        return 0
    end = base.find(",", u + 3)
    if end > u + 3 and base.startswith("V=", end + 1) and base.find(",V=") == end:
        digits = base[u + 3 : end]
        tail = end + 3 + len(vhex)
        if digits.isdigit() and digits.isascii() and digits[0] != "0":
            ours = base.startswith(vhex, end + 3) and (tail == len(base) or base[tail] == ",")
            return int(digits) if ours else 0
    return _uid_of_fields(base, vhex)


def _uid_of_fields(base: str, vhex: str) -> int:
    uid = 0
    validity: str | None = None
    for field in base.split(",")[1:]:
        if field.startswith("U=") and not uid:
            digits = field[2:]
            if not (digits.isascii() and digits.isdigit()):
                return 0
            uid = int(digits)
        elif field.startswith("V=") and validity is None:
            validity = field[2:]
    return uid if validity == vhex else 0


def with_uid(base: str, uid: int, vhex: str) -> str:
    """``base`` with our U and V fields (any old U/V fields dropped, other fields kept)."""
    fields = base.split(",")
    rest = [f for f in fields[1:] if not f.startswith(("U=", "V="))]
    return ",".join([fields[0], f"U={uid}", f"V={vhex}", *rest])


def fits(name: str) -> bool:
    """Whether ``name`` is short enough to be a file name."""
    return len(name.encode("utf-8", "surrogateescape")) <= NAME_MAX
