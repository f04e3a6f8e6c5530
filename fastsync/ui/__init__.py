"""User interfaces, by OfflineIMAP's names. ``choose`` takes the first of a list that works here."""

from __future__ import annotations

from fastsync.errors import ConfigError
from fastsync.ui.base import UI
from fastsync.ui.basic import TTYUI, BasicUI

_KNOWN = {
    "noninteractive.quiet": UI,
    "quiet": UI,
    "noninteractive.basic": BasicUI,
    "basic": BasicUI,
    "tty.ttyui": TTYUI,
    "ttyui": TTYUI,
}
_LATER = {"curses.blinkenlights", "tk.blinkenlights", "blinkenlights", "machineui", "json"}


def choose(names: tuple[str, ...] | list[str]) -> UI:
    """The first UI of ``names`` that can run here; ConfigError if none can."""
    tried = []
    for name in names:
        key = name.strip().lower()
        if key in _KNOWN:
            return _KNOWN[key]()
        tried.append(name)
        if key not in _LATER:
            raise ConfigError(
                f"unknown user interface {name!r} (expected one of Noninteractive.Basic, "
                "Noninteractive.Quiet, TTY.TTYUI, Curses.Blinkenlights, Tk.Blinkenlights)"
            )
    raise ConfigError(f"none of the user interfaces {', '.join(tried)} can run here")
