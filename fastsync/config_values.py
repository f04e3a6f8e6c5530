"""The values of one configuration option: raw text -> a typed value, or ``Bad`` saying what
is wrong and what was expected (config.py adds the file, section and option)."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

from fastsync import auth_options


class Bad(Exception):
    """A value is wrong; the message says how and what was expected."""


Conv = Callable[[str], Any]


def text(raw: str) -> str:
    return raw


def nonempty(raw: str) -> str:
    if not raw:
        raise Bad("empty (expected a value)")
    return raw


_BOOLS = {"yes": True, "true": True, "on": True, "1": True}
_BOOLS.update({"no": False, "false": False, "off": False, "0": False})


def boolean(raw: str) -> bool:
    try:
        return _BOOLS[raw.lower()]
    except KeyError:
        raise Bad(f"{raw!r} is not a boolean (expected yes/no, true/false, on/off or 1/0)") from None


def whole(lo: int, hi: int | None = None) -> Conv:
    expected = f"a whole number from {lo} to {hi}" if hi is not None else f"a whole number >= {lo}"

    def conv(raw: str) -> int:
        try:
            value = int(raw)
        except ValueError:
            raise Bad(f"{raw!r} is not a whole number (expected {expected})") from None
        if value < lo or (hi is not None and value > hi):
            raise Bad(f"{value} is out of range (expected {expected})")
        return value

    return conv


def positive_float(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise Bad(f"{raw!r} is not a number (expected a number > 0)") from None
    if not value > 0 or value == float("inf"):
        raise Bad(f"{raw!r} is out of range (expected a number > 0)")
    return value


def names(raw: str) -> tuple[str, ...]:
    """A comma-separated list; empty items (a trailing comma) are dropped."""
    items = tuple(item.strip() for item in raw.replace("\n", ",").split(","))
    return tuple(item for item in items if item)


def nonempty_names(raw: str) -> tuple[str, ...]:
    items = names(raw)
    if not items:
        raise Bad("empty (expected a comma-separated list)")
    return items


def path(raw: str) -> str:
    if not raw:
        raise Bad("empty (expected a path)")
    return os.path.expandvars(os.path.expanduser(raw))


def existing_file(raw: str) -> str:
    where = path(raw)
    if not os.path.isfile(where):
        raise Bad(f"{where!r} does not exist or is not a file (expected an existing file)")
    return where


def sep(raw: str) -> str:
    if len(raw) != 1 or not raw.isprintable() or raw.isspace() or raw in "'\"":
        raise Bad(f"{raw!r} is not one separator character (expected e.g. '.' or '/', without quotes)")
    return raw


def cacert(raw: str) -> str | None:
    return None if raw == "OS-DEFAULT" else existing_file(raw)


_HEX_LENGTHS = {64: "SHA-256", 128: "SHA-512"}


def fingerprints(raw: str) -> tuple[str, ...]:
    out = []
    for item in names(raw):
        digest = item.replace(":", "").lower()
        if not re.fullmatch(r"[0-9a-f]+", digest):
            raise Bad(f"{item!r} is not hexadecimal (expected SHA-256 or SHA-512 hex, colons allowed)")
        if len(digest) not in _HEX_LENGTHS:
            raise Bad(
                f"{item!r} has {len(digest)} hex digits (expected 64 for SHA-256 or 128 for SHA-512; "
                "SHA-1 and others are not accepted)"
            )
        out.append(digest)
    if not out:
        raise Bad("empty (expected SHA-256 or SHA-512 hex fingerprints, comma-separated)")
    return tuple(out)


def mechanisms(raw: str) -> tuple[str, ...]:
    try:
        return auth_options.parse_mechanisms(raw)
    except ValueError as e:
        raise Bad(str(e)) from None


def expr(raw: str) -> str:
    return nonempty(raw)  # syntax is checked by the section reader, which knows pythonfile
