"""Tk.Blinkenlights: a small window with a light per account and per worker, a progress bar,
a log, and a "Sync immediately" button per account. Closing the window quits cleanly.

Tk runs on the supervisor's asyncio loop: a task pumps Tk's events every 50 ms, so no second
thread touches either. Passwords are asked in a dialog that shows "*" for each character.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from fastsync.ui.base import Controls, UIUnavailable
from fastsync.ui.lights import BoardUI

PUMP = 0.05  # seconds between Tk event pumps
_COLOURS = {
    "idle": "#2e7d32",
    "connecting": "#f9a825",
    "syncing": "#00acc1",
    "copying": "#00acc1",
    "flagging": "#8e24aa",
    "deleting": "#8e24aa",
    "sleeping": "#1e88e5",
    "failed": "#c62828",
}


class TkUI(BoardUI):
    name = "Tk.Blinkenlights"

    def __init__(self, out: object = None, err: object = None) -> None:
        super().__init__(out, err)
        if not os.environ.get("DISPLAY"):
            raise UIUnavailable("Tk.Blinkenlights needs an X display (DISPLAY is not set)")
        try:
            import tkinter
        except ImportError as e:
            raise UIUnavailable(f"Tk.Blinkenlights needs tkinter, which this Python lacks ({e})") from None
        self.tk = tkinter
        try:
            self.root: Any = tkinter.Tk(className="fastsync")
        except tkinter.TclError as e:
            raise UIUnavailable(
                f"Tk.Blinkenlights cannot open display {os.environ['DISPLAY']!r}: {e}"
            ) from None
        self.root.title("fastsync")
        self.root.withdraw()
        self.controls: Controls | None = None
        self._rows: dict[str, dict[str, Any]] = {}
        self._task: asyncio.Task[None] | None = None
        self._drawn = (-1, 0.0)
        self._logged = 0

    # -- passwords ------------------------------------------------------------------------
    def can_prompt(self) -> bool:
        return True

    def ask_password(self, prompt: str) -> str | None:
        from tkinter import simpledialog

        self.root.deiconify()
        answer: str | None = simpledialog.askstring("fastsync", prompt, show="*", parent=self.root)
        self.root.withdraw()
        return answer

    # -- lifecycle ------------------------------------------------------------------------
    def start_screen(self, controls: Controls, loop: asyncio.AbstractEventLoop) -> None:
        from tkinter import ttk

        tk, root = self.tk, self.root
        self.controls = controls
        for name in controls.accounts:
            self.board.account(name)
            frame = tk.Frame(root)
            frame.pack(fill="x", padx=4, pady=2)
            button = tk.Button(frame, text="Sync immediately", command=lambda n=name: self._sync(n))
            button.pack(side="left")
            light = tk.Canvas(frame, width=16, height=16, highlightthickness=0)
            light.create_oval(2, 2, 14, 14, fill=_COLOURS["idle"], tags="light")
            light.pack(side="left", padx=4)
            text = tk.Label(frame, text=name, anchor="w", width=48)
            text.pack(side="left", fill="x")
            workers = tk.Label(root, text="", anchor="w", justify="left", font="TkFixedFont")
            workers.pack(fill="x", padx=28)
            self._rows[name] = {"light": light, "text": text, "workers": workers}
        self._bar = ttk.Progressbar(root, length=360, maximum=1000)
        self._bar.pack(fill="x", padx=4, pady=2)
        self._bar_text = tk.Label(root, text="", anchor="w")
        self._bar_text.pack(fill="x", padx=4)
        self._log = tk.Text(root, height=10, width=80, state="disabled")
        self._log.pack(fill="both", expand=True, padx=4, pady=2)
        root.protocol("WM_DELETE_WINDOW", controls.quit)
        root.deiconify()
        self._task = loop.create_task(self._pump())

    def _sync(self, name: str) -> None:
        assert self.controls is not None
        self.board.add_log(f"{name}: sync requested")
        self.controls.sync_now(name)

    def stop_screen(self) -> None:
        if self._task is not None:
            self._task.cancel()
        with contextlib.suppress(self.tk.TclError):
            self.root.destroy()

    async def _pump(self) -> None:
        while True:
            now = time.monotonic()
            if self.board.version != self._drawn[0] or now - self._drawn[1] >= 1:
                self.draw()
                self._drawn = (self.board.version, now)
            try:
                self.root.update()
            except self.tk.TclError:  # window destroyed under us
                return
            await asyncio.sleep(PUMP)

    # -- reports --------------------------------------------------------------------------
    def show_error(self, text: str) -> None:
        self._print(self.err, f"ERROR: {text}")  # the window may be closed before anyone reads it

    # -- drawing --------------------------------------------------------------------------
    def draw(self) -> None:
        now = time.monotonic()
        for name, row in self._rows.items():
            a = self.board.account(name)
            row["light"].itemconfigure("light", fill=_COLOURS.get(a.state, "grey"))
            row["text"].configure(text=f"{name}: {a.text(now)}")
            row["workers"].configure(
                text="\n".join(f"w{w.worker} [{w.state}] {w.text()}" for w in a.workers.values())
            )
        work = self.board.busiest()
        self._bar.configure(value=int(1000 * work.fraction) if work else 0)
        self._bar_text.configure(text=work.describe() if work else "")
        fresh = min(self.board.log_count - self._logged, len(self.board.log))
        self._logged = self.board.log_count
        if fresh > 0:
            self._log.configure(state="normal")
            for line in list(self.board.log)[-fresh:]:
                self._log.insert("end", line + "\n")
            self._log.see("end")
            self._log.configure(state="disabled")
