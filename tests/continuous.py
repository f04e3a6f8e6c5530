"""A fastsync left running (autorefresh, IDLE, signals), as a real process in its own session."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tests.syncenv import REPO_ROOT, SyncEnv

MESSAGE = b"From: a@example.org\r\nTo: b@example.org\r\nSubject: %s\r\nMessage-ID: <%s@t>\r\n\r\nbody\r\n"


class Running:
    """``fastsync -c CFG`` (no ``-o``) with its output collected line by line."""

    def __init__(self, env: SyncEnv, *args: str, ui: str = "Noninteractive.Basic") -> None:
        if not env.config.exists():
            env.write_config()
        cmd = [sys.executable, "-m", "fastsync", "-c", str(env.config), "-u", ui, *args]
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
            start_new_session=True,  # its own process group: the test can always kill all of it
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def count(self, pattern: str) -> int:
        return sum(1 for line in list(self.lines) if re.search(pattern, line))

    def wait_for(self, pattern: str, times: int = 1, timeout: float = 30) -> None:
        until(lambda: self.count(pattern) >= times, timeout, f"{times}x {pattern!r} in:\n{self.output}")

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def wait_exit(self, timeout: float = 30) -> int:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"fastsync did not exit within {timeout} s:\n{self.output}") from None
        self._reader.join(5)
        return code

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def descendants(self) -> set[int]:
        import psutil

        return {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)}


def until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def append_far(env: SyncEnv, folder: str, subject: str) -> None:
    c = env.imap()
    try:
        c.append(folder, MESSAGE % (subject.encode(), subject.encode()))
    finally:
        c.logout()


def local_subjects(maildir: Path, folder: str) -> set[str]:
    out = set()
    for sub in ("new", "cur"):
        d = maildir / folder / sub
        for f in d.iterdir() if d.is_dir() else ():
            m = re.search(rb"^Subject: (.*)$", f.read_bytes(), re.M)
            if m:
                out.add(m.group(1).decode().strip())
    return out
