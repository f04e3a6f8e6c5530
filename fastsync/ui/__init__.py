"""User interfaces, by OfflineIMAP's names. ``choose`` takes the first of a list that works here.

``ui = Tk.Blinkenlights, Curses.Blinkenlights, TTY.TTYUI``: no display -> curses; no terminal
-> TTYUI (which always works); none of the list works -> one ConfigError saying why each
could not run.
"""

from __future__ import annotations

from collections.abc import Callable

from fastsync.errors import ConfigError
from fastsync.ui.base import UI, UIUnavailable
from fastsync.ui.basic import TTYUI, BasicUI


def _curses() -> UI:
    from fastsync.ui.curses_ui import CursesUI

    return CursesUI()


def _tk() -> UI:
    from fastsync.ui.tk_ui import TkUI

    return TkUI()


def _json() -> UI:
    from fastsync.ui.jsonui import JsonUI

    return JsonUI()


_KNOWN: dict[str, Callable[[], UI]] = {
    "noninteractive.quiet": UI,
    "quiet": UI,
    "noninteractive.basic": BasicUI,
    "basic": BasicUI,
    "tty.ttyui": TTYUI,
    "ttyui": TTYUI,
    "curses.blinkenlights": _curses,
    "blinkenlights": _curses,
    "tk.blinkenlights": _tk,
    "json": _json,
    "machineui": _json,
}
NAMES = "Noninteractive.Quiet, Noninteractive.Basic, TTY.TTYUI, JSON, Curses.Blinkenlights, Tk.Blinkenlights"


def choose(names: tuple[str, ...] | list[str]) -> UI:
    """The first UI of ``names`` that can run here; ConfigError if none can (or a name is unknown)."""
    reasons: list[str] = []
    for name in names:
        make = _KNOWN.get(name.strip().lower())
        if make is None:
            raise ConfigError(f"unknown user interface {name!r} (expected one of {NAMES})")
        try:
            return make()
        except UIUnavailable as e:
            reasons.append(str(e))
    raise ConfigError(f"none of the user interfaces {', '.join(names)} can run here: {'; '.join(reasons)}")
