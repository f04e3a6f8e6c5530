"""Curses.Blinkenlights driven in a real terminal (tmux): lights, the number key, resize, q."""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
import time

import pytest

from tests.continuous import append_far, local_subjects, until
from tests.syncenv import REPO_ROOT, SyncEnv

pytestmark = pytest.mark.dovecot


class Tmux:
    def __init__(self, command: str, width: int = 80, height: int = 24) -> None:
        self.socket = f"fastsync-test-{secrets.token_hex(4)}"
        self.tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), command)

    def tmux(self, *args: str) -> str:
        proc = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10)
        if proc.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} failed: {proc.stderr}")
        return proc.stdout

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "t")

    def wait_screen(self, text: str, timeout: float = 20) -> str:
        until(lambda: text in self.screen(), timeout, f"{text!r} on the screen:\n{self.screen()}")
        return self.screen()

    def keys(self, *keys: str) -> None:
        self.tmux("send-keys", "-t", "t", *keys)

    def close(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=10)


def test_curses_lights_number_key_resize_and_q_restores_the_terminal(dovecot, imap_user, tmp_path):
    env = SyncEnv(dovecot, imap_user, tmp_path)
    env.account_opts.update(autorefresh="30", presynchook="sleep 1.5")  # the sync light stays on 1.5 s
    env.write_config()
    cmd = [sys.executable, "-m", "fastsync", "-c", str(env.config), "-u", "Curses.Blinkenlights"]
    shell = (
        f"cd {shlex.quote(str(tmp_path))}; PYTHONPATH={shlex.quote(str(REPO_ROOT))} "
        f"{shlex.join(cmd)}; echo EXIT=$?; sleep 60"
    )
    assert os.path.exists("/usr/bin/tmux"), "tmux is missing: run tools/setup.sh"
    term = Tmux(shell)
    try:
        screen = term.wait_screen("Test: syncing")  # first sync, light on
        assert "[1-9] sync account now" in screen and "[q] quit" in screen
        screen = term.wait_screen("Test: sleeping, next sync in")
        assert "account Test: ok" in screen  # the log pane
        append_far(env, "INBOX", "by-key")
        term.keys("1")
        term.wait_screen("Test: syncing", timeout=5)
        until(lambda: "by-key" in local_subjects(env.maildir, "INBOX"), 20, "the message synced by key 1")
        term.wait_screen("Test: sleeping")
        term.tmux("resize-window", "-t", "t", "-x", "100", "-y", "30")
        time.sleep(0.5)
        lines = term.screen().splitlines()
        assert lines[0].startswith("fastsync  [1-9]") and "Test: sleeping" in "\n".join(lines)
        term.keys("q")
        screen = term.wait_screen("EXIT=0")
        assert "[1-9] sync account now" not in screen  # the normal screen is back
        assert term.tmux("display", "-p", "-t", "t", "#{alternate_on}").strip() == "0"
    finally:
        term.close()
