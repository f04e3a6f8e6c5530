"""What every user interface offers. Code emits events; a UI only renders them.

A UI is chosen by name (OfflineIMAP's names) from ``-u`` or the ``ui`` fallback list in
[general]; the first that can run here wins (fastsync.ui.choose). Every UI has one
``render(event)`` for the events of fastsync.events; only the supervisor (and the CLI, for
what happens before it starts) hands it events. An interactive UI talks back through the
``Controls`` it is given at ``start_screen``: "sync this account now" and "quit" (which is the
same request as SIGTERM).

A UI never shows, logs or echoes a password: ``ask_password`` returns it to the caller only.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import msgspec

from fastsync import events as ev
from fastsync.ui.lines import lines_of

if TYPE_CHECKING:  # asyncio costs a run that finds nothing to do a good part of its start-up
    import asyncio


class UIUnavailable(Exception):
    """This UI cannot run here (no display, no terminal, no tkinter); the message says why."""


class Controls(msgspec.Struct):
    """What an interactive UI may ask of the supervisor."""

    accounts: tuple[str, ...]
    sync_now: Callable[[str | None], None]
    quit: Callable[[], None]


class UI:
    """Base UI: prints errors to stderr and nothing else (Noninteractive.Quiet)."""

    name = "Noninteractive.Quiet"

    def __init__(self, out: object = None, err: object = None) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr

    def _print(self, stream: object, text: str) -> None:
        print(text, file=stream, flush=True)  # type: ignore[call-overload]

    # -- lifecycle (interactive UIs draw their screen between start_screen and stop_screen) --------------
    def start_screen(self, controls: Controls, loop: asyncio.AbstractEventLoop) -> None:
        """Called once on the supervisor's loop before the first sync (after password prompts)."""

    def stop_screen(self) -> None:
        """Called once at the end; restores the terminal or closes the window."""

    # -- the one entry for everything that happens ---------------------------------------------
    def render(self, e: ev.Event) -> None:
        """Show one event. Quiet shows errors only, on stderr."""
        for level, text in lines_of(e):
            if level == "error":
                self._print(self.err, f"ERROR: {text}")

    # -- passwords ----------------------------------------------------------------------------
    def can_prompt(self) -> bool:
        return False

    def ask_password(self, prompt: str) -> str | None:
        return None
