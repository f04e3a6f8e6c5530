"""Security: TLS verified (CA, hostname, pinned fingerprints), STARTTLS never downgraded and
nothing said before it kept, passwords nowhere but where they must be, private file modes."""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import socket
import ssl
import stat
import subprocess
import threading
import time
from pathlib import Path

import psutil
import pytest

from fastsync.errors import AccountError
from fastsync.state import StateFile
from fastsync.stores.imap import ImapStore
from tests.faultkit import engine_run, imap_repo, popen_fastsync, tree_of
from tests.syncenv import SyncEnv
from tests.test_engine import Crash, CrashingStateFile
from tools.corpus import CorpusSpec, generate
from tools.faultproxy import FaultProxy

pytestmark = pytest.mark.dovecot


@pytest.fixture
def env(dovecot, imap_user, tmp_path) -> SyncEnv:
    return SyncEnv(dovecot, imap_user, tmp_path)


def _tls(env: SyncEnv, **extra: str) -> None:
    env.remote_opts.update(ssl="yes", remoteport=str(env.dovecot.tls_port), remotehost="localhost")
    env.remote_opts.update(extra)
    env.write_config()


def _der(dovecot) -> bytes:
    return ssl.PEM_cert_to_DER_cert(Path(dovecot.server_cert).read_text())


# -- TLS ----------------------------------------------------------------------------------


@pytest.mark.parametrize("algo", ["sha256", "sha512"])
def test_pinned_fingerprint_is_accepted_and_a_wrong_one_refused(env, algo):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=3, seed=1))
    right = hashlib.new(algo, _der(env.dovecot)).hexdigest()
    colons = ":".join(right[i : i + 2] for i in range(0, len(right), 2)).upper()
    _tls(env, cert_fingerprint=colons)
    env.run()
    assert len(env.local_folder("INBOX")) == 3
    wrong = hashlib.new(algo, b"another certificate").hexdigest()
    _tls(env, cert_fingerprint=wrong)
    proc = env.run(expect=3)
    assert "fingerprint" in proc.stderr and "Traceback" not in proc.stderr


def test_tls_is_verified_by_default_against_the_system_store(env):
    _tls(env)  # no sslcacertfile: the private test CA is not trusted
    proc = env.run(expect=3)
    assert "certificate" in proc.stderr.lower()
    assert not env.maildir.exists() or not any(env.maildir.rglob("*:2,*"))


def _serve_tls_greeting(cert: Path, key: Path) -> tuple[socket.socket, threading.Thread]:
    """A TLS listener on 127.0.0.1 that greets like an IMAP server (to present a certificate)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)

    def serve() -> None:
        while True:
            try:
                raw, _ = lsock.accept()
            except OSError:
                return
            try:
                with ctx.wrap_socket(raw, server_side=True) as s:
                    s.sendall(b"* OK IMAP4rev1 ready\r\n")
                    s.recv(100)
            except (OSError, ssl.SSLError):
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return lsock, t


def test_certificate_for_another_host_is_refused_even_from_the_trusted_ca(env, tmp_path):
    certs = Path(env.dovecot.ca_cert).parent
    key, csr, cert = tmp_path / "w.key", tmp_path / "w.csr", tmp_path / "w.pem"
    ext = tmp_path / "w.ext"
    ext.write_text("subjectAltName = DNS:wrong.example\n")
    run = lambda *a: subprocess.run(["openssl", *a], check=True, capture_output=True)  # noqa: E731
    run("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(csr), "-subj", "/CN=wrong.example")
    run("x509", "-req", "-in", str(csr), "-CA", str(env.dovecot.ca_cert), "-CAkey", str(certs / "ca.key"),
        "-set_serial", "7", "-days", "2", "-extfile", str(ext), "-out", str(cert))
    lsock, _ = _serve_tls_greeting(cert, key)
    try:
        env.remote_opts.update(ssl="yes", remoteport=str(lsock.getsockname()[1]), remotehost="127.0.0.1",
                               sslcacertfile=str(env.dovecot.ca_cert))
        env.write_config()
        proc = env.run(expect=3)
    finally:
        lsock.close()
    assert "certificate" in proc.stderr.lower() and "Traceback" not in proc.stderr


# -- STARTTLS -----------------------------------------------------------------------------


def test_starttls_stripped_by_a_proxy_is_refused_and_nothing_is_sent_in_plaintext(env):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=3, seed=1))
    with FaultProxy(env.dovecot.host, env.dovecot.port) as proxy:
        proxy.strip_starttls = True
        env.remote_opts.update(starttls="yes", remoteport=str(proxy.port), remotehost="localhost",
                               sslcacertfile=str(env.dovecot.ca_cert))
        env.write_config()
        proc = env.run(expect=3)
        sent = bytes(proxy.up_log)
    assert "STARTTLS" in proc.stderr and "plaintext" in proc.stderr
    assert b"LOGIN" not in sent.upper() and env.user.password.encode() not in sent
    assert not env.maildir.exists() or not any(env.maildir.rglob("*:2,*"))


def test_responses_injected_before_the_tls_handshake_do_not_survive_it(dovecot, imap_user):
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        proxy.inject_after_starttls = (
            b"* CAPABILITY IMAP4rev1 INJECTED AUTH=PLAIN\r\n* OK [ALERT] injected before TLS\r\n"
        )
        repo = imap_repo(dovecot, imap_user, port=proxy.port, starttls=True, remotehost="localhost",
                         sslcacertfile=str(dovecot.ca_cert))
        store = ImapStore(repo, imap_user.password)
        try:
            store.connect()
        except AccountError as e:  # refusing is also safe: the injected bytes broke the handshake
            assert "STARTTLS" in str(e) or "TLS" in str(e)
            print(f"injection before TLS: refused ({e})")
            return
        try:
            assert any("injected" in e for e in proxy.events), proxy.events
            assert not store.has(b"INJECTED")
            caps = {c.upper() for c in store.client.capabilities()}
            assert b"INJECTED" not in caps
            untagged = store.client._imap.untagged_responses
            assert not any(b"injected" in repr(v).encode().lower() for v in untagged.values())
            store.select("INBOX")  # the session works
            print("injection before TLS: connected, injected responses discarded")
        finally:
            store.close()


# -- passwords ------------------------------------------------------------------------------


def _all_files(*roots: Path) -> list[Path]:
    return [p for r in roots if r.exists() for p in r.rglob("*") if p.is_file()]


def test_password_never_appears_in_logs_traces_argv_output_or_state(dovecot, tmp_path):
    # characters that force quoting or a literal in LOGIN, to catch a trace split over lines
    password = 'Pa ss"wo\\rd{x}' + secrets.token_hex(4)
    user = dovecot.add_user(f"secret{secrets.token_hex(3)}", password)
    env = SyncEnv(dovecot, user, tmp_path)
    generate(user.maildir, CorpusSpec(folders=["INBOX", "Sent"], messages=20, seed=2))
    env.remote_opts["remotepass"] = password
    env.write_config()
    logfile = tmp_path / "debug.log"
    proc = popen_fastsync(env, "-d", "all,imap", "-l", str(logfile), ui="Noninteractive.Basic")
    argvs: list[str] = []
    while proc.poll() is None:  # argv and titles of every process of the run, while it runs
        for p in tree_of(proc.pid):
            with contextlib.suppress(psutil.Error):
                argvs.append(" ".join(p.cmdline()) + " " + p.name())
        time.sleep(0.01)
    out, err = proc.communicate()
    assert proc.returncode == 0, err.decode()
    log = logfile.read_text(errors="replace")
    assert "LOGIN" in log.upper(), "the debug run must trace the protocol, or this test proves nothing"
    secret_forms = {password, password.replace('"', '\\"'), password.replace("\\", "\\\\")}
    haystacks = {"stdout": out.decode(), "stderr": err.decode(), "debug log": log,
                 "argv/titles": "\n".join(argvs)}
    for path in _all_files(env.metadata, env.maildir):
        haystacks[str(path)] = path.read_bytes().decode("latin-1")
    for what, text in haystacks.items():
        for form in secret_forms:
            assert form not in text, f"the password appears in {what}"
        # a split trace: a long enough piece of the password on one line
        assert password[-8:] not in text, f"a piece of the password appears in {what}"


def test_wrong_password_error_shows_neither_password_nor_traceback(env):
    env.remote_opts["remotepass"] = "wrong-" + secrets.token_hex(6)
    env.write_config()
    proc = env.run("-d", "all,imap", expect=3)
    assert env.remote_opts["remotepass"] not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


# -- file modes ---------------------------------------------------------------------------


def test_state_lock_journal_and_maildir_files_are_0600_and_directories_0700_under_umask_0(env, tmp_path):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX", "Archive/2024"], messages=20, seed=3))
    env.write_config()
    old = os.umask(0)
    try:
        env.run()
        # a journal left by a crash, written by the engine in this process (umask 0 too)
        state = tmp_path / "crashmeta" / "INBOX.state"
        c = env.imap()
        c.append("INBOX", b"From: a\r\nMessage-ID: <j@x>\r\n\r\nj\r\n")
        c.logout()
        with pytest.raises(Crash):
            engine_run(imap_repo(env.dovecot, env.user), env.user.password, tmp_path / "crashmail",
                       CrashingStateFile(state, 2))
    finally:
        os.umask(old)
    assert state.with_name("INBOX.state.journal").exists()
    StateFile  # noqa: B018 - the class whose files are checked
    checked = {"file": 0, "dir": 0}
    for root in (env.metadata, env.maildir, tmp_path / "crashmeta", tmp_path / "crashmail"):
        assert stat.S_IMODE(root.stat().st_mode) == 0o700, root
        for p in root.rglob("*"):
            mode = stat.S_IMODE(p.lstat().st_mode)
            if p.is_dir():
                assert mode == 0o700, f"{p} is {mode:o}"
                checked["dir"] += 1
            else:
                assert mode == 0o600, f"{p} is {mode:o}"
                checked["file"] += 1
    assert checked["file"] > 20 and checked["dir"] > 6
    assert any(p.name == "lock" for p in env.metadata.rglob("*"))


# -- config ---------------------------------------------------------------------------------


def test_config_readable_by_others_with_a_password_warns(env):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=2, seed=4))
    env.remote_opts["remotepass"] = env.user.password
    env.write_config()
    env.config.chmod(0o644)
    proc = env.run()
    warnings = [ln for ln in proc.stderr.splitlines() if "readable by other users" in ln]
    assert len(warnings) == 1 and str(env.config) in warnings[0]
    assert env.user.password not in proc.stderr


@pytest.mark.parametrize(
    "section,option,value",
    [
        ("Repository Remote", "remoteport", "imap"),
        ("Repository Remote", "ssl", "perhaps"),
        ("Repository Remote", "maxconnections", "-2"),
        ("Repository Remote", "cert_fingerprint", "zz"),
        ("Account Test", "max_delete_percent", "250"),
        ("general", "socktimeout", "soon"),
    ],
)
def test_a_bad_config_value_is_one_line_naming_file_section_and_option(env, section, option, value):
    env.write_config()
    lines = env.config.read_text().splitlines()
    i = lines.index(f"[{section}]")
    lines.insert(i + 1, f"{option} = {value}")
    env.config.write_text("\n".join(lines) + "\n")
    proc = env.run(expect=2)
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(errors) == 1, proc.stderr
    assert str(env.config) in errors[0] and section in errors[0] and option in errors[0], errors[0]
