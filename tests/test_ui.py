"""User interfaces: the fallback chain, JSON lines, progress with rate and ETA, password safety."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from fastsync import events as ev
from fastsync.errors import ConfigError
from fastsync.ui import choose
from fastsync.ui.basic import BasicUI
from fastsync.ui.jsonui import JsonUI
from fastsync.ui.progress import ProgressTracker
from tests.syncenv import REPO_ROOT, SyncEnv


def _choose_in_child(ui: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = f"from fastsync.ui import choose; print(choose({ui!r}.split(',')).name)"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "PYTHONPATH": str(REPO_ROOT)},
        stdin=subprocess.DEVNULL,
        timeout=30,
    )


CHAIN = "Tk.Blinkenlights,Curses.Blinkenlights,TTY.TTYUI"


def test_fallback_without_display_or_terminal_lands_on_ttyui():
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = _choose_in_child(CHAIN, env)
    assert proc.stdout.strip() == "TTY.TTYUI", proc.stderr


def test_no_usable_ui_in_the_list_is_one_clear_error():
    env = {k: v for k, v in os.environ.items() if k != "DISPLAY"}
    proc = _choose_in_child("Tk.Blinkenlights,Curses.Blinkenlights", env)
    assert proc.returncode != 0
    assert "none of the user interfaces" in proc.stderr
    assert "DISPLAY is not set" in proc.stderr and "needs a terminal" in proc.stderr


def test_unknown_ui_name_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown user interface 'Fancy'"):
        choose(["Fancy"])


def test_json_ui_writes_one_parseable_event_per_line():
    out = io.StringIO()
    ui = JsonUI(out=out)
    ui.render(ev.AccountStarted(account="A", quick=True))
    ui.render(ev.Progress(worker=1, folder="INBOX", what="to_near", done=3, total=9, bytes=300, account="A"))
    ui.render(ev.Notice(level="error", text="boom"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["type"] for r in lines] == ["account_started", "progress", "error"]
    assert lines[1]["folder"] == "INBOX" and lines[1]["done"] == 3 and lines[1]["account"] == "A"


def test_progress_reports_messages_bytes_rate_and_eta():
    clock = iter([0.0, 10.0])
    tracker = ProgressTracker(clock=lambda: next(clock))
    tracker.update(ev.Progress(worker=1, folder="INBOX", what="to_near", done=0, total=100, bytes=0))
    w = tracker.update(
        ev.Progress(worker=1, folder="INBOX", what="to_near", done=25, total=100, bytes=5_000_000)
    )
    assert w.rate == 2.5 and w.eta == 30.0
    text = w.describe()
    assert "25/100 msgs" in text and "5.0 MB" in text and "0.5 MB/s" in text and "ETA 0:30" in text


def test_basic_ui_prints_progress_lines_throttled_with_the_last_always_shown():
    out = io.StringIO()
    ui = BasicUI(out=out, err=io.StringIO())
    for done in range(1, 11):
        ui.render(
            ev.Progress(worker=1, folder="F", what="to_far", done=done, total=10, bytes=done, account="A")
        )
    lines = out.getvalue().splitlines()
    assert 1 <= len(lines) <= 3
    assert "10/10 msgs" in lines[-1]


@pytest.mark.dovecot
def test_ttyui_prompts_on_a_terminal_and_never_echoes_or_logs_the_password(dovecot, imap_user, tmp_path):
    """A real pty: the password typed at the prompt logs in and appears nowhere in the output."""
    import pty

    env = SyncEnv(dovecot, imap_user, tmp_path)
    env.remote_opts["remotepass"] = ""  # set below: no password source -> prompt
    env.write_config()
    text = env.config.read_text().replace("remotepass = \n", "")
    text = "\n".join(line for line in text.splitlines() if not line.startswith("remotepassfile"))
    env.config.write_text(text + "\n")
    cmd = [sys.executable, "-m", "fastsync", "-c", str(env.config), "-o", "-u", "TTY.TTYUI", "-d"]
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.environ["PYTHONPATH"] = str(REPO_ROOT)
        os.execv(cmd[0], cmd)
    seen = b""
    sent = False
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        seen += chunk
        if not sent and b"Password for" in seen:
            os.write(fd, imap_user.password.encode() + b"\n")
            sent = True
    _, status = os.waitpid(pid, 0)
    assert sent, seen.decode(errors="replace")
    assert os.waitstatus_to_exitcode(status) == 0, seen.decode(errors="replace")
    assert imap_user.password.encode() not in seen
    assert b"account Test: ok" in seen


@pytest.mark.dovecot
def test_json_ui_reports_a_failed_folder_once_and_every_line_parses(dovecot, imap_user, tmp_path):
    """One event per happening: a folder the server names but that cannot be synced is one
    record, not an error line plus a failure event for the same thing."""
    from tools.faultproxy import FaultProxy

    c = imap_user.connect()
    c.append("INBOX", b"From: a\r\nMessage-ID: <j1@x>\r\n\r\nhello\r\n")
    c.create_folder("Later")
    c.logout()

    def add_broken(line: bytes) -> bytes:  # a folder that LIST shows but SELECT refuses
        if line.startswith(b"* LIST ") and line.rstrip().endswith(b" INBOX"):
            return line + b'* LIST (\\HasNoChildren) "." Ghost\r\n'
        return line

    env = SyncEnv(dovecot, imap_user, tmp_path)
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        proxy.rewrite_down = add_broken
        env.remote_opts["remoteport"] = str(proxy.port)
        env.write_config()
        proc = env.run("-u", "JSON", expect=None, timeout=120)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    reports = ("error", "warning", "note", "job_failed", "info")
    about_ghost = [r for r in records if r["type"] in reports and "Ghost" in json.dumps(r)]
    assert len(about_ghost) == 1, about_ghost
    assert about_ghost[0]["type"] == "job_failed" and about_ghost[0]["account"] == "Test", about_ghost
    done = [r for r in records if r["type"] == "account_done"]
    assert len(done) == 1 and done[0]["folders_failed"] == 1 and done[0]["state"] == "with errors", done
