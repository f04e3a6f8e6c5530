"""Tk.Blinkenlights on a real X server (Xvfb): the window appears, its "Sync immediately"
button (clicked with xdotool) syncs, closing the window (WM_DELETE_WINDOW, as a window manager
sends it) quits with exit 0; a screenshot goes to the test artifacts
(``$FASTSYNC_TEST_ARTIFACTS``, default ``test-artifacts/`` in the repository)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from tests.continuous import Running, append_far, local_subjects, until
from tests.syncenv import REPO_ROOT, SyncEnv

pytestmark = pytest.mark.dovecot


def _need(tool: str) -> str:
    path = shutil.which(tool)
    assert path, f"{tool} is missing: run tools/setup.sh (it installs xvfb, xdotool, x11-apps)"
    return path


@pytest.fixture
def display() -> Iterator[str]:
    """A private Xvfb; its display name (``:N``)."""
    r, w = os.pipe()
    xvfb = subprocess.Popen(
        [_need("Xvfb"), "-displayfd", str(w), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
        pass_fds=(w,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(w)
    with os.fdopen(r) as f:
        number = f.readline().strip()
    assert number.isdigit(), "Xvfb did not report a display number"
    try:
        yield f":{number}"
    finally:
        xvfb.terminate()
        xvfb.wait(10)


def xdotool(display: str, *args: str) -> str:
    proc = subprocess.run(
        [_need("xdotool"), *args],
        capture_output=True,
        text=True,
        timeout=10,
        env={**os.environ, "DISPLAY": display},
    )
    return proc.stdout if proc.returncode == 0 else ""


def screenshot(display: str, dest: Path) -> None:
    """The whole screen as a PNG (xwd, converted here: no ImageMagick needed)."""
    raw = subprocess.run(
        [_need("xwd"), "-root", "-silent", "-display", display], capture_output=True, check=True, timeout=20
    ).stdout
    dest.write_bytes(xwd_to_png(raw))


def xwd_to_png(data: bytes) -> bytes:
    """Convert a 24/32-bit TrueColor ZPixmap XWD dump to PNG."""
    head = struct.unpack(">25I", data[:100])
    header_size, width, height = head[0], head[4], head[5]
    byte_order, bpp, stride, ncolors = head[6], head[11], head[12], head[19]
    assert bpp == 32, f"xwd gave {bpp} bits per pixel (expected 32)"
    pixels = data[header_size + ncolors * 12 :]
    rows = []
    for y in range(height):
        row = pixels[y * stride : y * stride + width * 4]
        # LSB first: B G R X per pixel
        b, g, r = (row[0::4], row[1::4], row[2::4]) if byte_order == 0 else (row[3::4], row[2::4], row[1::4])
        rgb = bytearray(width * 3)
        rgb[0::3], rgb[1::3], rgb[2::3] = r, g, b
        rows.append(b"\x00" + bytes(rgb))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def close_window(display: str, window: str) -> None:
    """Ask ``window`` to close the way a window manager's close button does: a WM_PROTOCOLS
    ClientMessage carrying WM_DELETE_WINDOW (Xvfb has no window manager; xdotool 3.2016 can
    only destroy a window). Xlib through ctypes."""
    import ctypes
    import ctypes.util

    class ClientMessage(ctypes.Structure):
        _fields_: ClassVar = [
            ("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
            ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
            ("format", ctypes.c_int), ("data", ctypes.c_long * 5),
        ]

    class XEvent(ctypes.Union):
        _fields_: ClassVar = [("xclient", ClientMessage), ("pad", ctypes.c_long * 24)]

    xlib = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
    xlib.XOpenDisplay.restype = ctypes.c_void_p
    xlib.XOpenDisplay.argtypes = [ctypes.c_char_p]
    xlib.XInternAtom.restype = ctypes.c_ulong
    xlib.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    xlib.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
    xlib.XFlush.argtypes = xlib.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = xlib.XOpenDisplay(display.encode())
    assert dpy, f"cannot open display {display}"
    try:
        event = XEvent()
        event.xclient.type = 33  # ClientMessage
        event.xclient.window = int(window)
        event.xclient.message_type = xlib.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        event.xclient.format = 32
        event.xclient.data[0] = xlib.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        assert xlib.XSendEvent(dpy, int(window), 0, 0, ctypes.byref(event)), "XSendEvent failed"
        xlib.XFlush(dpy)
    finally:
        xlib.XCloseDisplay(dpy)


def test_tk_window_appears_button_syncs_and_closing_quits(dovecot, imap_user, tmp_path, display, monkeypatch):
    env = SyncEnv(dovecot, imap_user, tmp_path)
    syncs = tmp_path / "syncs"
    env.account_opts.update(autorefresh="30", postsynchook=f"echo done >> {syncs}")
    env.write_config()

    def synced() -> int:
        return len(syncs.read_text().splitlines()) if syncs.exists() else 0

    monkeypatch.setenv("DISPLAY", display)
    run = Running(env, ui="Tk.Blinkenlights")
    try:
        until(
            lambda: xdotool(display, "search", "--name", "^fastsync$").strip() != "",
            20,
            "the fastsync window",
        )
        window = xdotool(display, "search", "--name", "^fastsync$").split()[0]
        until(lambda: synced() == 1, 20, "the first sync")
        append_far(env, "INBOX", "by-button")
        time.sleep(0.5)
        assert "by-button" not in local_subjects(env.maildir, "INBOX")  # autorefresh is 30 min away
        # The account's button is the first widget of the first row, at the window's top left.
        xdotool(display, "mousemove", "--window", window, "40", "14", "click", "1")
        until(
            lambda: "by-button" in local_subjects(env.maildir, "INBOX"),
            20,
            "the message synced by the button",
        )
        until(lambda: synced() == 2, 20, "the end of the second sync")
        time.sleep(1.2)  # a redraw: the light shows sleeping
        artifacts = Path(os.environ.get("FASTSYNC_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))
        artifacts.mkdir(parents=True, exist_ok=True)
        shot = artifacts / "tk-blinkenlights.png"
        screenshot(display, shot)
        assert shot.stat().st_size > 1000 and shot.read_bytes()[:4] == b"\x89PNG"
        close_window(display, window)
        assert run.wait_exit() == 0, run.output
    finally:
        run.kill()


def test_tk_ui_falls_back_when_the_display_cannot_be_opened(tmp_path):
    code = "from fastsync.ui import choose; print(choose(['Tk.Blinkenlights', 'TTY.TTYUI']).name)"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**os.environ, "DISPLAY": ":9999", "PYTHONPATH": str(REPO_ROOT)},
        timeout=30,
    )
    assert proc.stdout.strip() == "TTY.TTYUI", proc.stderr
