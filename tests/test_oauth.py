"""OAuth2 logins (XOAUTH2, OAUTHBEARER) against a real Dovecot whose oauth2 passdb checks each
token with tools.oauthserver: full syncs, refreshes before expiry, after a refused token and
after ``BYE ... AccessTokenExpired``, a bad refresh token, and no token in any output."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fastsync.auth_options import OAuth2Settings
from fastsync.errors import AccountError, AuthError
from fastsync.oauth import TokenSource, sasl_xoauth2
from fastsync.stores.imap import ImapStore
from tests.faultkit import imap_repo
from tests.imapenv import folder_messages, new_user
from tests.oauthenv import logins, oauth_env, refresh_opts
from tests.syncenv import REPO_ROOT
from tools.corpus import CorpusSpec, generate
from tools.dovecot import free_port
from tools.faultproxy import FaultProxy

pytestmark = pytest.mark.dovecot


def _files_text(*roots: Path) -> str:
    return "\n".join(
        p.read_bytes().decode("latin-1") for r in roots if r.exists() for p in r.rglob("*") if p.is_file()
    )


def _message_count(root: Path) -> int:
    return sum(1 for p in root.rglob("*") if p.is_file() and p.parent.name in ("cur", "new"))


def test_xoauth2_with_a_refresh_token_syncs_everything_and_no_token_reaches_logs_or_state(
    oauth_dovecot, oauth_user, provider, tmp_path
):
    generate(oauth_user.maildir, CorpusSpec(folders=["INBOX", "Sent", "Archive"], messages=30, seed=11))
    refresh = provider.add_refresh_token(oauth_user.name)
    env = oauth_env(oauth_dovecot, oauth_user, tmp_path, provider, **refresh_opts(provider, refresh))
    issued_before, rejected_before = len(provider.issued), provider.rejected
    logfile = tmp_path / "debug.log"
    proc = env.run("-d", "all,imap", "-l", str(logfile))
    assert _message_count(env.maildir) == 30
    again = env.run()  # a second run (new processes) logs in again and finds nothing to do
    assert _message_count(env.maildir) == 30
    tokens = provider.issued[issued_before:]
    assert tokens, "the run must have refreshed a token"
    assert provider.rejected == rejected_before  # no login was tried with a token Dovecot refused
    assert set(logins(oauth_dovecot, oauth_user)) == {"XOAUTH2"}
    trace = logfile.read_text(errors="replace")
    assert "AUTHENTICATE **REDACTED**" in trace, "the debug run must trace the login"
    haystack = "\n".join([proc.stdout, proc.stderr, again.stdout, again.stderr, trace,
                          _files_text(env.metadata, env.maildir)])
    encoded = [base64.b64encode(sasl_xoauth2(oauth_user.name, t)).decode() for t in tokens]
    for secret in (*tokens, *encoded, refresh, provider.client_secret):
        assert secret not in haystack
        assert secret[-10:] not in haystack  # nor a piece of it on a split line


def test_oauthbearer_with_a_given_access_token_syncs_without_any_refresh(
    oauth_dovecot, oauth_user, provider, tmp_path
):
    generate(oauth_user.maildir, CorpusSpec(folders=["INBOX", "Drafts"], messages=12, seed=12))
    token = provider.issue(oauth_user.name)
    env = oauth_env(oauth_dovecot, oauth_user, tmp_path, provider,
                    auth_mechanisms="OAUTHBEARER", oauth2_access_token=token)
    refreshes = provider.refreshes
    logfile = tmp_path / "debug.log"
    proc = env.run("-d", "imap", "-l", str(logfile))
    assert _message_count(env.maildir) == 12
    assert provider.refreshes == refreshes
    assert set(logins(oauth_dovecot, oauth_user)) == {"OAUTHBEARER"}
    trace = logfile.read_text(errors="replace")
    assert "AUTHENTICATE **REDACTED**" in trace
    assert token not in trace + proc.stdout + proc.stderr + _files_text(env.metadata)


def test_a_refused_access_token_is_refreshed_once_and_the_sync_goes_on(
    oauth_dovecot, oauth_user, provider, tmp_path
):
    generate(oauth_user.maildir, CorpusSpec(folders=["INBOX"], messages=8, seed=13))
    stale = provider.issue(oauth_user.name)
    provider.revoke(stale)
    refresh = provider.add_refresh_token(oauth_user.name)
    env = oauth_env(oauth_dovecot, oauth_user, tmp_path, provider, maxconnections="1",
                    oauth2_access_token=stale, **refresh_opts(provider, refresh))
    refreshes, rejected = provider.refreshes, provider.rejected
    proc = env.run()
    assert _message_count(env.maildir) == 8
    assert provider.rejected - rejected == 1  # the stale token, once
    assert provider.refreshes - refreshes == 1  # then one refresh, kept for the rest of the run
    assert "Traceback" not in proc.stderr and stale not in proc.stderr


def test_a_bad_refresh_token_stops_the_account_with_one_line_and_exit_3(
    oauth_dovecot, oauth_user, provider, tmp_path
):
    generate(oauth_user.maildir, CorpusSpec(folders=["INBOX"], messages=3, seed=14))
    bogus = "rt-not-a-token-the-provider-knows"
    env = oauth_env(oauth_dovecot, oauth_user, tmp_path, provider, **refresh_opts(provider, bogus))
    proc = env.run(expect=3)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "refresh refused" in lines[0] and "invalid_grant" in lines[0]
    assert bogus not in proc.stderr + proc.stdout and provider.client_secret not in proc.stderr
    assert not any(env.maildir.rglob("*:2,*")) if env.maildir.exists() else True


def test_bye_access_token_expired_mid_run_refreshes_before_reconnecting(
    oauth_dovecot, oauth_user, provider, tmp_path
):
    generate(oauth_user.maildir, CorpusSpec(folders=["INBOX"], messages=40, seed=15))
    refresh = provider.add_refresh_token(oauth_user.name)
    fired: list[bytes] = []

    def expire_at_first_body(line: bytes) -> bytes:
        if not fired and b" FETCH (" in line and b"BODY[]" in line:
            fired.append(line)
            provider.expire_all()  # the token in use is dead: reusing it would be refused
            return b"* BYE Session invalidated - AccessTokenExpired\r\n"
        return line

    with FaultProxy(oauth_dovecot.host, oauth_dovecot.port) as proxy:
        proxy.rewrite_down = expire_at_first_body
        proxy.cut("down", b"AccessTokenExpired\r\n", action="close")
        env = oauth_env(oauth_dovecot, oauth_user, tmp_path, provider, remoteport=str(proxy.port),
                        maxconnections="1", **refresh_opts(provider, refresh))
        refreshes, rejected = provider.refreshes, provider.rejected
        proc = env.run()
    assert fired, "the fault must have fired, or this test proves nothing"
    assert _message_count(env.maildir) == 40
    assert provider.refreshes - refreshes == 2  # at the start, and after the BYE
    assert provider.rejected == rejected  # the dead token was not tried again
    assert "Traceback" not in proc.stderr


def test_without_sasl_ir_the_challenge_response_login_works_and_keeps_the_token_out_of_the_trace(
    oauth_dovecot, oauth_user, provider, tmp_path
):
    generate(oauth_user.maildir, CorpusSpec(folders=["INBOX"], messages=5, seed=18))
    token = provider.issue(oauth_user.name)
    with FaultProxy(oauth_dovecot.host, oauth_dovecot.port) as proxy:
        proxy.rewrite_down = lambda line: line.replace(b" SASL-IR", b"")
        env = oauth_env(oauth_dovecot, oauth_user, tmp_path, provider, remoteport=str(proxy.port),
                        auth_mechanisms="OAUTHBEARER", oauth2_access_token=token)
        logfile = tmp_path / "debug.log"
        proc = env.run("-d", "imap", "-l", str(logfile))
        sent = bytes(proxy.up_log)
    assert _message_count(env.maildir) == 5
    assert b"AUTHENTICATE OAUTHBEARER\r\n" in sent  # no initial response: the server asked for it
    assert set(logins(oauth_dovecot, oauth_user)) == {"OAUTHBEARER"}
    response = sent.split(b"AUTHENTICATE OAUTHBEARER\r\n", 1)[1].split(b"\r\n", 1)[0].decode()
    assert len(response) > 40  # the base64 client response, which holds the token
    trace = logfile.read_text(errors="replace")
    assert token not in trace + proc.stdout + proc.stderr and response not in trace


def _store(dovecot, user, **oauth: str) -> ImapStore:
    repo = imap_repo(dovecot, user, oauth2=OAuth2Settings(**oauth))
    return ImapStore(repo, "")


def test_a_token_is_refreshed_before_it_expires_and_reused_while_fresh(oauth_dovecot, oauth_user, provider):
    refresh = provider.add_refresh_token(oauth_user.name)
    opts = {k.removeprefix("oauth2_"): v for k, v in refresh_opts(provider, refresh).items()}
    old_life, provider.expires_in = provider.expires_in, 4  # refreshed within 2 s of expiry
    try:
        refreshes, rejected = provider.refreshes, provider.rejected
        for expected in (1, 1, 2):
            if expected == 2:
                time.sleep(2.3)
            store = _store(oauth_dovecot, oauth_user, **opts)
            store.connect()
            store.select("INBOX")
            store.close()
            assert provider.refreshes - refreshes == expected
        assert provider.rejected == rejected  # never a login with a token about to expire
    finally:
        provider.expires_in = old_life


def test_the_access_token_file_is_read_again_at_every_login(oauth_dovecot, oauth_user, provider, tmp_path):
    path = tmp_path / "token"
    first = provider.issue(oauth_user.name)
    path.write_text(first + "\n")
    store = _store(oauth_dovecot, oauth_user, access_token_file=str(path))
    store.connect()
    store.close()
    provider.revoke(first)
    path.write_text(provider.issue(oauth_user.name) + "\n")  # as an outside tool renews it
    rejected = provider.rejected
    store.connect()  # the same store reconnecting
    store.select("INBOX")
    store.close()
    assert provider.rejected == rejected
    assert logins(oauth_dovecot, oauth_user) == ["XOAUTH2", "XOAUTH2"]


def test_a_refused_token_without_a_way_to_refresh_is_an_auth_error(oauth_dovecot, oauth_user, provider):
    token = provider.issue(oauth_user.name)
    provider.revoke(token)
    store = _store(oauth_dovecot, oauth_user, access_token=token)
    with pytest.raises(AuthError) as e:
        store.connect()
    assert "login refused" in str(e.value) and "XOAUTH2" in str(e.value) and token not in str(e.value)


def test_token_endpoint_failures_are_graded_and_never_show_secrets(provider):
    good = provider.add_refresh_token("someone")
    bad_client = OAuth2Settings(request_url=provider.token_url, client_id=provider.client_id,
                                client_secret="wrong-secret-xyz", refresh_token=good)
    with pytest.raises(AuthError) as refused:
        TokenSource(bad_client, "acct").token()
    assert "invalid_client" in str(refused.value)
    assert "wrong-secret-xyz" not in str(refused.value) and good not in str(refused.value)
    nowhere = OAuth2Settings(request_url=f"http://127.0.0.1:{free_port()}/token", refresh_token=good)
    with pytest.raises(AccountError) as unreachable:
        TokenSource(nowhere, "acct").token()
    assert not isinstance(unreachable.value, AuthError)  # not the credentials' fault
    assert "cannot reach" in str(unreachable.value) and good not in str(unreachable.value)


# -- fastsync migrate ---------------------------------------------------------------------


def _migrate(tmp: Path, src, dst, *args: str):
    cmd = [sys.executable, "-m", "fastsync", "migrate",
           f"imap://{src.name}@127.0.0.1:{src.server.port}", f"imap://{dst.name}@127.0.0.1:{dst.server.port}",
           "--no-tls1", "--no-tls2", "--metadata", str(tmp / "meta"), *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith("FASTSYNC_PASSWORD")}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env=dict(env, PYTHONPATH=str(REPO_ROOT)))


def test_migrate_with_an_access_token_file_copies_everything(oauth_dovecot, provider, tmp_path):
    src, dst = new_user(oauth_dovecot, "msrc"), new_user(oauth_dovecot, "mdst")
    generate(src.maildir, CorpusSpec(folders=["INBOX", "Sent"], messages=25, seed=16))
    token = provider.issue(src.name)
    (tmp_path / "token").write_text(token + "\n")
    (tmp_path / "p2").write_text(dst.password + "\n")
    proc = _migrate(tmp_path, src, dst, "--oauthaccesstoken1", str(tmp_path / "token"),
                    "--password2-file", str(tmp_path / "p2"), "--workers", "2")
    assert proc.returncode == 0, proc.stderr
    assert len(folder_messages(dst, "INBOX")) + len(folder_messages(dst, "Sent")) == 25
    assert set(logins(oauth_dovecot, src)) == {"XOAUTH2"}  # the source never saw a password
    assert token not in proc.stdout + proc.stderr + _files_text(tmp_path / "meta")


def test_migrate_refreshes_tokens_itself_and_a_bad_refresh_token_exits_10(oauth_dovecot, provider, tmp_path):
    src, dst = new_user(oauth_dovecot, "msrc"), new_user(oauth_dovecot, "mdst")
    generate(src.maildir, CorpusSpec(folders=["INBOX"], messages=6, seed=17))
    (tmp_path / "secret").write_text(provider.client_secret + "\n")
    (tmp_path / "p2").write_text(dst.password + "\n")
    refresh = provider.add_refresh_token(src.name)
    common = ["--oauth2-request-url1", provider.token_url, "--oauth2-client-id1", provider.client_id,
              "--oauth2-client-secret1-file", str(tmp_path / "secret"), "--authmech1", "OAUTHBEARER",
              "--oauth2-refresh-token1-file", str(tmp_path / "refresh"),
              "--password2-file", str(tmp_path / "p2")]
    (tmp_path / "refresh").write_text(refresh + "\n")
    refreshes = provider.refreshes
    proc = _migrate(tmp_path, src, dst, *common)
    assert proc.returncode == 0, proc.stderr
    assert len(folder_messages(dst, "INBOX")) == 6
    assert provider.refreshes > refreshes and set(logins(oauth_dovecot, src)) == {"OAUTHBEARER"}
    (tmp_path / "refresh").write_text("rt-revoked-or-mistyped\n")
    bad = _migrate(tmp_path, src, dst, *common)
    assert bad.returncode == 10, bad.stderr
    lines = [ln for ln in bad.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("fastsync migrate: SRC:") and "invalid_grant" in lines[0]
    for secret in ("rt-revoked-or-mistyped", provider.client_secret, refresh):
        assert secret not in bad.stdout + bad.stderr


def test_migrate_refuses_an_unsupported_mechanism_with_one_line(oauth_dovecot, tmp_path):
    src, dst = new_user(oauth_dovecot, "msrc"), new_user(oauth_dovecot, "mdst")
    (tmp_path / "p").write_text("x\n")
    proc = _migrate(tmp_path, src, dst, "--authmech1", "CRAM-MD5", "--password1-file", str(tmp_path / "p"),
                    "--password2-file", str(tmp_path / "p"))
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--authmech1" in lines[0] and "CRAM-MD5 is not supported" in lines[0]
