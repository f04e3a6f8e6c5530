"""Curses.Blinkenlights: a terminal screen with a status light per account and per worker,
a progress bar for long work, and a scrolling log. Keys: 1-9 sync that account now, q quit.

Passwords are asked (without echo) before the screen starts. While the screen is up, stderr
(ours and the workers', which inherit it) is read into the log pane so nothing scribbles over
the screen; at the end the terminal is restored and the errors seen are printed again.
"""

from __future__ import annotations

import asyncio
import contextlib
import curses
import getpass
import os
import sys
import time
from typing import Any

from fastsync.ui.base import Controls, UIUnavailable
from fastsync.ui.lights import BoardUI
from fastsync.ui.progress import format_seconds

TICK = 0.2  # seconds between key polls and redraws
_COLOURS = {
    "idle": curses.COLOR_GREEN,
    "connecting": curses.COLOR_YELLOW,
    "syncing": curses.COLOR_CYAN,
    "copying": curses.COLOR_CYAN,
    "flagging": curses.COLOR_MAGENTA,
    "deleting": curses.COLOR_MAGENTA,
    "sleeping": curses.COLOR_BLUE,
    "failed": curses.COLOR_RED,
}


class CursesUI(BoardUI):
    name = "Curses.Blinkenlights"

    def __init__(self, out: object = None, err: object = None) -> None:
        super().__init__(out, err)
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UIUnavailable("Curses.Blinkenlights needs a terminal on stdin and stdout")
        try:
            curses.setupterm()
        except curses.error as e:
            raise UIUnavailable(f"Curses.Blinkenlights: terminal {os.environ.get('TERM')!r}: {e}") from None
        self.scr: Any = None
        self.controls: Controls | None = None
        self.errors: list[str] = []
        self._pairs: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._saved_err: int | None = None
        self._log_fd: int | None = None
        self._partial = b""
        self._drawn = (-1, -1.0)

    # -- passwords: before the screen exists ----------------------------------------------
    def can_prompt(self) -> bool:
        return self.scr is None and sys.stdin.isatty()

    def ask_password(self, prompt: str) -> str | None:
        return getpass.getpass(prompt) if self.can_prompt() else None

    # -- lifecycle ------------------------------------------------------------------------
    def start_screen(self, controls: Controls, loop: asyncio.AbstractEventLoop) -> None:
        self.controls = controls
        for name in controls.accounts:
            self.board.account(name)
        self._capture_stderr(loop)
        self.scr = curses.initscr()
        curses.noecho()
        curses.cbreak()
        self.scr.keypad(True)
        self.scr.nodelay(True)
        with contextlib.suppress(curses.error):
            curses.curs_set(0)
        if curses.has_colors():
            curses.start_color()
            background = curses.COLOR_BLACK
            with contextlib.suppress(curses.error):
                curses.use_default_colors()
                background = -1  # the terminal's own background
            for i, (state, colour) in enumerate(_COLOURS.items(), start=1):
                curses.init_pair(i, colour, background)
                self._pairs[state] = i
        self._task = loop.create_task(self._ticker())

    def stop_screen(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self.scr is not None:
            self.scr.keypad(False)
            curses.nocbreak()
            curses.echo()
            curses.endwin()
            self.scr = None
        self._restore_stderr()
        for line in self.errors:
            print(line, file=sys.stderr, flush=True)

    def _capture_stderr(self, loop: asyncio.AbstractEventLoop) -> None:
        sys.stderr.flush()
        self._saved_err = os.dup(2)
        r, w = os.pipe()
        os.dup2(w, 2)
        os.close(w)
        os.set_blocking(r, False)
        self._log_fd = r
        loop.add_reader(r, self._read_stderr)

    def _read_stderr(self) -> None:
        assert self._log_fd is not None
        try:
            data = os.read(self._log_fd, 65536)
        except BlockingIOError:
            return
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for line in lines:
            self.board.add_log(line.decode("utf-8", "replace"))

    def _restore_stderr(self) -> None:
        if self._saved_err is None:
            return
        sys.stderr.flush()
        os.dup2(self._saved_err, 2)
        os.close(self._saved_err)
        self._saved_err = None
        if self._log_fd is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(self._log_fd)
            os.close(self._log_fd)
            self._log_fd = None

    # -- reports --------------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self.errors.append(f"ERROR: {text}")  # printed again once the screen is closed

    # -- keys and drawing -----------------------------------------------------------------
    async def _ticker(self) -> None:
        while self.scr is not None:
            self._keys()
            now = time.monotonic()
            if self.scr is not None and (self.board.version != self._drawn[0] or now - self._drawn[1] >= 1):
                self.draw()
                self._drawn = (self.board.version, now)
            await asyncio.sleep(TICK)

    def _keys(self) -> None:
        assert self.controls is not None
        while self.scr is not None:
            key = self.scr.getch()
            if key == -1:
                return
            if key == curses.KEY_RESIZE:
                curses.update_lines_cols()
                self.scr.clear()
                self._drawn = (-1, 0.0)
            elif key in (ord("q"), ord("Q")):
                self.board.add_log("quitting after the current batch")
                self.controls.quit()
            elif ord("1") <= key <= ord("9"):
                i = key - ord("1")
                if i < len(self.controls.accounts):
                    name = self.controls.accounts[i]
                    self.board.add_log(f"{name}: sync requested")
                    self.controls.sync_now(name)

    def _put(self, row: int, col: int, text: str, attr: int = 0) -> None:
        height, width = self.scr.getmaxyx()
        if row >= height or col >= width - 1:
            return
        with contextlib.suppress(curses.error):
            self.scr.addnstr(row, col, text, width - 1 - col, attr)

    def _light(self, row: int, col: int, state: str) -> None:
        pair = self._pairs.get(state)
        attr = curses.color_pair(pair) | curses.A_BOLD if pair else curses.A_BOLD
        self._put(row, col, "(*)" if state != "idle" else "( )", attr)

    def draw(self) -> None:
        scr = self.scr
        height, width = scr.getmaxyx()
        scr.erase()
        now = time.monotonic()
        self._put(0, 0, "fastsync  [1-9] sync account now  [q] quit".ljust(width), curses.A_REVERSE)
        row = 1
        for i, a in enumerate(self.board.accounts.values(), start=1):
            self._put(row, 0, f"{i}")
            self._light(row, 2, a.state)
            self._put(row, 6, f"{a.name}: {a.text(now)}")
            row += 1
            for w in a.workers.values():
                self._light(row, 4, w.state)
                self._put(row, 8, f"w{w.worker} {w.text()}")
                row += 1
        work = self.board.busiest()
        if work is not None and row < height - 2:
            bar = max(10, min(40, width - 50))
            filled = int(bar * work.fraction)
            eta = f" ETA {format_seconds(work.eta)}" if work.eta is not None else ""
            self._put(row, 0, f"[{'#' * filled}{'.' * (bar - filled)}] {work.fraction:4.0%}{eta}")
            row += 1
        self._put(row, 0, "-" * (width - 1))
        row += 1
        space = height - row
        if space > 0:
            for line in list(self.board.log)[-space:]:
                self._put(row, 0, line)
                row += 1
        scr.noutrefresh()
        curses.doupdate()
