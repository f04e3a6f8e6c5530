"""A server that drops the connection while the client logs in: `fastsync migrate` exits 12
(SRC) or 13 (DST) and the sync command 3 (the account failed), each with one line on stderr
and never a traceback; a single dropped login is retried transparently."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.imapenv import append, folder_messages, message, new_user
from tests.oauthenv import logins
from tests.syncenv import REPO_ROOT, SyncEnv
from tools.corpus import CorpusSpec, generate
from tools.dovecot import Dovecot, User
from tools.faultproxy import FaultProxy

pytestmark = pytest.mark.dovecot


def _drop_every(proxy: FaultProxy, pattern: bytes, times: int = 30) -> None:
    for _ in range(times):  # a Cut fires once: one per connection the client may open
        proxy.cut("up", pattern, action="close")


def _migrate(tmp: Path, src: str, dst: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "fastsync", "migrate", src, dst, "--no-tls1", "--no-tls2",
           "--metadata", str(tmp / "meta"), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))


def _passwords(tmp: Path, src: User, dst: User) -> list[str]:
    (tmp / "p1").write_text(src.password + "\n")
    (tmp / "p2").write_text(dst.password + "\n")
    return ["--password1-file", str(tmp / "p1"), "--password2-file", str(tmp / "p2")]


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def _url(user: User, port: int) -> str:
    return f"imap://{user.name}@127.0.0.1:{port}"


@pytest.mark.parametrize("fault", ["at LOGIN", "after the greeting"])
def test_migrate_whose_source_drops_the_login_exits_12_with_one_line(dovecot: Dovecot, tmp_path, fault):
    src, dst = new_user(dovecot, "dropsrc"), new_user(dovecot, "dropdst")
    append(src, "INBOX", message(1))
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        if fault == "at LOGIN":
            _drop_every(proxy, b" LOGIN ")
        else:
            proxy.greeting_then_close = set(range(1, 30))  # 0: the reachability probe
        pw = _passwords(tmp_path, src, dst)
        proc = _migrate(tmp_path, _url(src, proxy.port), _url(dst, dovecot.port), *pw)
        tries = sum("close up" in e or "greeting then close" in e for e in proxy.events)
    assert proc.returncode == 12, proc.stderr
    line = _one_line(proc)
    assert line.startswith("fastsync migrate: SRC:") and "logging in" in line
    assert tries == 2  # one retry, then the clear failure
    assert folder_messages(dst, "INBOX") == {}


def test_migrate_whose_destination_drops_the_login_exits_13_with_one_line(dovecot: Dovecot, tmp_path):
    src, dst = new_user(dovecot, "dropsrc"), new_user(dovecot, "dropdst")
    append(src, "INBOX", message(1))
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        _drop_every(proxy, b" LOGIN ")
        pw = _passwords(tmp_path, src, dst)
        proc = _migrate(tmp_path, _url(src, dovecot.port), _url(dst, proxy.port), *pw)
    assert proc.returncode == 13, proc.stderr
    assert _one_line(proc).startswith("fastsync migrate: DST:")


def test_migrate_whose_oauth_source_drops_at_authenticate_exits_12(oauth_dovecot, provider, tmp_path):
    src, dst = new_user(oauth_dovecot, "dropsrc"), new_user(oauth_dovecot, "dropdst")
    token = tmp_path / "token"
    token.write_text(provider.issue(src.name) + "\n")
    (tmp_path / "p2").write_text(dst.password + "\n")
    with FaultProxy(oauth_dovecot.host, oauth_dovecot.port) as proxy:
        _drop_every(proxy, b" AUTHENTICATE ")
        proc = _migrate(tmp_path, _url(src, proxy.port), _url(dst, oauth_dovecot.port),
                        "--oauthaccesstoken1", str(token), "--password2-file", str(tmp_path / "p2"))
    assert proc.returncode == 12, proc.stderr
    assert _one_line(proc).startswith("fastsync migrate: SRC:")
    assert logins(oauth_dovecot, src) == []


def test_sync_whose_server_drops_every_login_fails_the_account_with_exit_3_and_one_line(
    dovecot, imap_user, tmp_path
):
    generate(imap_user.maildir, CorpusSpec(folders=["INBOX"], messages=3, seed=21))
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        _drop_every(proxy, b" LOGIN ")
        env = SyncEnv(dovecot, imap_user, tmp_path, remote_opts={"remoteport": str(proxy.port)})
        proc = env.run(expect=3)
    line = _one_line(proc)
    assert "account Test" in line and "logging in" in line
    assert not env.maildir.exists() or not any(env.maildir.rglob("*:2,*"))


def test_sync_whose_server_drops_one_login_reconnects_and_syncs_everything(dovecot, imap_user, tmp_path):
    generate(imap_user.maildir, CorpusSpec(folders=["INBOX"], messages=5, seed=22))
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        proxy.cut("up", b" LOGIN ", action="close")
        env = SyncEnv(dovecot, imap_user, tmp_path, remote_opts={"remoteport": str(proxy.port)})
        env.run()
        assert any("close up" in e for e in proxy.events), proxy.events
    assert len(env.local_folder("INBOX")) == 5
