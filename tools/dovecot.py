"""A private Dovecot on 127.0.0.1 for tests, the demo and benchmarks.

Contract:
- Everything an instance needs (config, certificates, run dir, state, logs, users' mail and
  indexes) lives under its ``base_dir``; nothing reads or writes /etc/dovecot or touches the
  system service.
- ``Dovecot.start()`` returns only when both the plain port and the implicit-TLS port greet
  with ``* OK``; on failure it raises ``RuntimeError`` with Dovecot's own error output and the
  tail of its log file.
- ``Dovecot.stop()`` leaves no process behind (the master and every child it had), and runs
  at interpreter exit as well if the caller forgot.
- With ``oauth2_introspection_url`` (tools.oauthserver's), XOAUTH2 and OAUTHBEARER are offered
  too, and Dovecot's oauth2 passdb POSTs every token to that URL (``auth_failure_delay = 0``);
  the passwd-file passdb still serves PLAIN and LOGIN.
- Run as root (the machine and CI do): internal services use the package's ``dovecot`` and
  ``dovenull`` users. Dovecot refuses mail access as uid 0, so mail belongs to
  ``nobody:nogroup`` (``mail_owner``), and mail processes chroot into ``base_dir/mail``: that
  way no parent of ``base_dir`` (often a 0700 temporary directory) needs opening up. Files
  written straight into a user's Maildir must be given to ``mail_owner`` (tools.corpus does).
  As a normal user every service and the mail run as that user, without chroot.
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import imapclient
import psutil  # type: ignore[import-untyped]  # no stubs in the venv

log = logging.getLogger(__name__)

DOVECOT_BIN = Path("/usr/sbin/dovecot")
DOVEADM_BIN = "doveadm"
DH_PARAMS = Path("/usr/share/dovecot/dh.pem")
HOST = "127.0.0.1"
ROOT_MAIL_USER = "nobody"
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
LOG_TAIL_LINES = 30

# Special-use mailboxes declared in the namespace; auto = no, so they exist only once created.
SPECIAL_USE = {
    "Drafts": "\\Drafts",
    "Sent": "\\Sent",
    "Trash": "\\Trash",
    "Junk": "\\Junk",
    "Archive": "\\Archive",
}

# Services whose user must be overridden when the master does not run as root (it cannot
# switch users then). Only services of the enabled protocol (imap) and the core ones matter.
_NONROOT_SERVICES = (
    "anvil", "auth", "auth-worker", "config", "dict", "dict-async", "dns-client", "doveadm",
    "imap", "imap-hibernate", "imap-login", "imap-urlauth", "imap-urlauth-login",
    "imap-urlauth-worker", "indexer", "indexer-worker", "ipc", "log", "old-stats", "stats",
    "health-check", "aggregator", "replicator",
)


def ensure_dovecot(allow_apt: bool = True) -> None:
    """Make sure /usr/sbin/dovecot exists, installing ``dovecot-imapd`` with apt as root if allowed.

    Raises RuntimeError (one line) when it is missing and cannot be installed.
    """
    if DOVECOT_BIN.exists():
        return
    if not allow_apt:
        raise RuntimeError(f"{DOVECOT_BIN} is missing and installing it was not allowed")
    if os.geteuid() != 0:
        raise RuntimeError(f"{DOVECOT_BIN} is missing; install dovecot-imapd (needs root)")
    if shutil.which("apt-get") is None:
        raise RuntimeError(f"{DOVECOT_BIN} is missing and apt-get is not available to install it")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "dovecot-imapd"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        # A fresh container often has no package lists yet: refresh once and retry.
        subprocess.run(["apt-get", "update"], env=env, capture_output=True, text=True, check=False)
        done = subprocess.run(install, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not DOVECOT_BIN.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"apt-get install dovecot-imapd failed (exit {done.returncode}): {last}")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound to port 0, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class User:
    """One mail user of a private Dovecot; ``maildir`` is the server's Maildir of that user."""

    name: str
    password: str
    maildir: Path
    server: Dovecot = field(repr=False, compare=False)

    def connect(self, tls: bool = False) -> imapclient.IMAPClient:
        """A logged-in IMAPClient: plain port, or the implicit-TLS port verified against the CA."""
        return self.server.connect(self.name, self.password, tls=tls)


class Dovecot:
    """One private Dovecot instance rooted at ``base_dir`` (see the module docstring)."""

    def __init__(
        self,
        base_dir: Path,
        *,
        separator: str = ".",
        max_userip_connections: int = 100,
        ssl: bool = True,
        extra_config: str = "",
        oauth2_introspection_url: str | None = None,
    ) -> None:
        if separator not in (".", "/"):
            raise ValueError(f"Dovecot separator must be '.' or '/', not {separator!r}")
        self.base_dir = Path(base_dir).resolve()
        self.separator = separator
        self.max_userip_connections = max_userip_connections
        self.ssl = ssl
        self.extra_config = extra_config  # appended verbatim to dovecot.conf (e.g. quota settings)
        # With an introspection URL (tools.oauthserver), XOAUTH2 and OAUTHBEARER logins are
        # checked by Dovecot's oauth2 passdb against it; passwords still work as before.
        self.oauth2_introspection_url = oauth2_introspection_url
        self.oauth2_conf_path = self.base_dir / "dovecot-oauth2.conf.ext"
        self.host = HOST
        self.port = 0
        self.tls_port: int | None = None
        self.conf_path = self.base_dir / "dovecot.conf"
        self.run_dir = self.base_dir / "run"
        self.log_dir = self.base_dir / "log"
        self.log_path = self.log_dir / "dovecot.log"
        self.mail_dir = self.base_dir / "mail"
        self.users_dir = self.base_dir / "users"
        cert_dir = self.base_dir / "certs"
        self.ca_cert = cert_dir / "ca.pem"
        self.other_ca_cert = cert_dir / "other-ca.pem"
        self.server_cert = cert_dir / "server.pem"
        self.server_key = cert_dir / "server.key"
        self.users: dict[str, User] = {}
        self.master_pid: int | None = None
        self._uid = os.geteuid()
        self._gid = os.getegid()
        self.mail_owner: tuple[int, int] = (self._uid, self._gid)
        if self._uid == 0:
            entry = pwd.getpwnam(ROOT_MAIL_USER)
            self.mail_owner = (entry.pw_uid, entry.pw_gid)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Write config and certificates, launch the master, wait until both ports greet."""
        if self.master_pid is not None:
            raise RuntimeError(f"Dovecot at {self.base_dir} is already started (pid {self.master_pid})")
        began = time.monotonic()
        for sub in (self.run_dir, self.log_dir, self.mail_dir, self.users_dir, self.base_dir / "state"):
            sub.mkdir(parents=True, exist_ok=True)
        if self.ssl and not self.ca_cert.exists():
            self._make_certificates()
        self.port = free_port()
        self.tls_port = free_port() if self.ssl else None
        if self.oauth2_introspection_url is not None:
            self.oauth2_conf_path.write_text(self._oauth2_conf(), encoding="utf-8")
        self.conf_path.write_text(self._render_config(), encoding="utf-8")
        # The daemonised master inherits the launcher's stdout/stderr: a pipe would never
        # reach EOF while it runs, so its early output goes to a file instead.
        startup_out = self.log_dir / "startup.out"
        with open(startup_out, "wb") as out:
            launched = subprocess.run(
                [str(DOVECOT_BIN), "-c", str(self.conf_path)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, check=False,
            )
        if launched.returncode != 0:
            early = startup_out.read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(self._failure(f"dovecot exited {launched.returncode}", early))
        atexit.register(self.stop)
        try:
            self.master_pid = self._wait_master_pid(began + START_TIMEOUT)
            self._wait_greeting(self.port, tls=False, deadline=began + START_TIMEOUT)
            if self.tls_port is not None:
                self._wait_greeting(self.tls_port, tls=True, deadline=began + START_TIMEOUT)
        except RuntimeError:
            self.stop()
            raise
        log.info("Dovecot at %s up in %.2fs (imap %d, imaps %s)", self.base_dir,
                 time.monotonic() - began, self.port, self.tls_port)

    def stop(self) -> None:
        """Stop the master and make sure no process of this instance is left. Idempotent."""
        atexit.unregister(self.stop)
        pid = self.master_pid if self.master_pid is not None else self._read_master_pid()
        self.master_pid = None
        if pid is None:
            return
        try:
            master = psutil.Process(pid)
            if not self._is_our_master(master):
                return  # a stale pid file whose pid now belongs to someone else
            family = [master, *master.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        with contextlib.suppress(psutil.NoSuchProcess):
            master.send_signal(signal.SIGTERM)
        alive = wait_gone(family, STOP_TIMEOUT)
        for proc in alive:
            # Only the processes recorded as this master's family are killed, by pid.
            log.warning("Dovecot process %d did not exit on SIGTERM; killing it", proc.pid)
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()
        still = wait_gone(alive, STOP_TIMEOUT)
        if still:
            pids = ", ".join(str(p.pid) for p in still)
            raise RuntimeError(f"Dovecot at {self.base_dir} left processes {pids} alive after SIGKILL")

    def __enter__(self) -> Dovecot:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # -- users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str, userdb_fields: str = "") -> User:
        """Add a passwd-file user with an empty Maildir; it can log in at once, even after start.
        ``userdb_fields``: the passwd-file's extra fields, e.g. ``userdb_quota_rule=*:messages=3``."""
        if not name or any(c in name for c in ":/\n\t %") or name.startswith("."):
            raise ValueError(f"Dovecot user name {name!r} has characters the passwd-file cannot hold")
        if ":" in password or "\n" in password:
            raise ValueError(f"password of Dovecot user {name!r} must not contain ':' or newline")
        if name in self.users:
            raise ValueError(f"Dovecot user {name!r} already exists at {self.base_dir}")
        home = self.mail_dir / name
        maildir = home / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        if self._uid == 0:
            for path in (home, maildir, *(maildir / sub for sub in ("cur", "new", "tmp"))):
                os.chown(path, *self.mail_owner)
        user = User(name=name, password=password, maildir=maildir, server=self)
        self._write_passwd_file(user, userdb_fields)
        self.users[name] = user
        return user

    def _home(self, name: str) -> str:
        """A user's home as the mail processes see it (inside the chroot when root)."""
        return f"/{name}" if self._uid == 0 else str(self.mail_dir / name)

    def _write_passwd_file(self, user: User, userdb_fields: str = "") -> None:
        # One passwd-file per user (the path has %u): Dovecot's auth process stats a known
        # passwd-file at most once a second, so a user added to a shared file right after a
        # lookup would stay unknown for up to a second; a new file is read on first lookup.
        # Renamed into place so the auth process never reads a half-written file. The uid
        # and gid fields stay empty: mail_uid/mail_gid in the config give the owner.
        line = f"{user.name}:{{PLAIN}}{user.password}::::{self._home(user.name)}::{userdb_fields}\n"
        path = self.users_dir / user.name
        tmp = self.users_dir / f".{user.name}.tmp"
        tmp.write_text(line, encoding="utf-8")
        os.replace(tmp, path)

    # -- clients -----------------------------------------------------------------------------

    def ssl_context(self, cafile: Path | None = None) -> ssl.SSLContext:
        """A verifying client context trusting ``cafile`` (this instance's CA by default)."""
        return ssl.create_default_context(cafile=str(cafile or self.ca_cert))

    def connect(self, name: str, password: str, *, tls: bool = False) -> imapclient.IMAPClient:
        """A logged-in IMAPClient for ``name`` (implicit TLS on ``tls_port`` when ``tls``)."""
        if tls:
            if self.tls_port is None:
                raise RuntimeError(f"Dovecot at {self.base_dir} was started without TLS")
            client = imapclient.IMAPClient(
                "localhost", port=self.tls_port, ssl=True, ssl_context=self.ssl_context(), timeout=30
            )
        else:
            client = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(name, password)
        return client

    def doveadm(self, *args: str) -> str:
        """Run ``doveadm`` against this instance's config; return stdout, raise on failure."""
        cmd = [DOVEADM_BIN, "-c", str(self.conf_path), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            detail = " | ".join(done.stderr.strip().splitlines()[-3:]) or "no output"
            raise RuntimeError(f"doveadm {' '.join(args)} failed (exit {done.returncode}): {detail}")
        return done.stdout

    # -- internals ---------------------------------------------------------------------------

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        """The last ``lines`` lines of Dovecot's log file, or a note that there is none."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return f"(no log file at {self.log_path})"
        return "\n".join(text.splitlines()[-lines:])

    def _failure(self, what: str, stderr: str = "") -> str:
        parts = [f"Dovecot at {self.base_dir} failed to start: {what}"]
        if stderr.strip():
            parts.append("dovecot said:\n" + stderr.strip())
        parts.append(f"log tail ({self.log_path}):\n" + self.log_tail())
        return "\n".join(parts)

    def _read_master_pid(self) -> int | None:
        try:
            return int((self.run_dir / "master.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _is_our_master(self, proc: psutil.Process) -> bool:
        """Whether ``proc`` is the master started with this instance's config file."""
        try:
            return str(self.conf_path) in proc.cmdline()
        except psutil.AccessDenied:
            return False

    def _wait_master_pid(self, deadline: float) -> int:
        while time.monotonic() < deadline:
            pid = self._read_master_pid()
            with contextlib.suppress(psutil.NoSuchProcess):
                if pid is not None and self._is_our_master(psutil.Process(pid)):
                    return int(pid)
            time.sleep(0.01)
        raise RuntimeError(self._failure(f"no live master pid in {self.run_dir / 'master.pid'}"))

    def _wait_greeting(self, port: int, *, tls: bool, deadline: float) -> None:
        last_error = "no attempt"
        while time.monotonic() < deadline:
            if self.master_pid is not None and not psutil.pid_exists(self.master_pid):
                raise RuntimeError(self._failure(f"master {self.master_pid} exited during start"))
            try:
                greeting = self._greeting(port, tls)
            except (OSError, ssl.SSLError) as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.02)
                continue
            if greeting.startswith(b"* OK"):
                return
            raise RuntimeError(self._failure(f"port {port} greeted with {greeting[:80]!r}"))
        raise RuntimeError(self._failure(f"port {port} never greeted with '* OK' ({last_error})"))

    def _greeting(self, port: int, tls: bool) -> bytes:
        with socket.create_connection((self.host, port), timeout=2.0) as raw:
            if tls:
                with self.ssl_context().wrap_socket(raw, server_hostname="localhost") as wrapped:
                    return wrapped.recv(200)
            return raw.recv(200)

    def _make_certificates(self) -> None:
        """A CA and a server cert (CN localhost, SAN IP:127.0.0.1 + DNS:localhost) signed by it,
        plus an unrelated second CA. EC keys: generated in milliseconds."""
        cert_dir = self.ca_cert.parent
        cert_dir.mkdir(parents=True, exist_ok=True)
        tag = secrets.token_hex(4)
        ca_key = cert_dir / "ca.key"
        _make_ca(ca_key, self.ca_cert, f"fastsync test CA {tag}")
        _make_ca(cert_dir / "other-ca.key", self.other_ca_cert, f"fastsync unrelated CA {tag}")
        csr = cert_dir / "server.csr"
        ext = cert_dir / "server.ext"
        ext.write_text(
            "basicConstraints = critical, CA:FALSE\n"
            "keyUsage = critical, digitalSignature, keyEncipherment\n"
            "extendedKeyUsage = serverAuth\n"
            "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
            "subjectKeyIdentifier = hash\n"
            "authorityKeyIdentifier = keyid, issuer\n",
            encoding="ascii",
        )
        _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                 "-keyout", str(self.server_key), "-out", str(csr), "-subj", "/CN=localhost")
        _openssl("x509", "-req", "-in", str(csr), "-CA", str(self.ca_cert), "-CAkey", str(ca_key),
                 "-set_serial", str(int.from_bytes(secrets.token_bytes(8), "big")),
                 "-days", "3650", "-sha256", "-extfile", str(ext), "-out", str(self.server_cert))

    def _render_config(self) -> str:
        """The whole dovecot.conf of this instance: nothing is inherited from /etc/dovecot."""
        root = self._uid == 0
        lines = [
            "# Generated by tools/dovecot.py for a private test instance; do not edit.",
            f"base_dir = {self.run_dir}",
            f"state_dir = {self.base_dir / 'state'}",
            f"instance_name = fastsync-{self.base_dir.name}-{os.getpid()}",
            "protocols = imap",
            f"listen = {HOST}",
            f"log_path = {self.log_path}",
            f"info_log_path = {self.log_path}",
            f"debug_log_path = {self.log_path}",
            "auth_verbose = yes",
            *self._users_config(),
            "first_valid_uid = 1",
            "first_valid_gid = 1",
            f"mail_uid = {self.mail_owner[0]}",
            f"mail_gid = {self.mail_owner[1]}",
            f"mail_chroot = {self.mail_dir}" if root else "",
            f"mail_location = maildir:~/Maildir{':LAYOUT=fs' if self.separator == '/' else ''}",
            "disable_plaintext_auth = no",
            # indexing a folder of a million messages needs more than the 256 MB default
            "default_vsz_limit = 2G",
            *self._ssl_config(),
            *self._passdb_config(),
            "userdb {",
            "  driver = passwd-file",
            f"  args = username_format=%u {self.users_dir}/%u",
            "}",
            "namespace inbox {",
            "  inbox = yes",
            f"  separator = {self.separator}",
            "  prefix =",
            *(f"  mailbox {name} {{\n    special_use = {flag}\n    auto = no\n  }}"
              for name, flag in SPECIAL_USE.items()),
            "}",
            "protocol imap {",
            f"  mail_max_userip_connections = {self.max_userip_connections}",
            "}",
            "service imap-login {",
            f"  inet_listener imap {{\n    address = {HOST}\n    port = {self.port}\n  }}",
            (f"  inet_listener imaps {{\n    address = {HOST}\n    port = {self.tls_port}\n"
             "    ssl = yes\n  }" if self.tls_port is not None else ""),
            "}",
            *self._services_config(),
            self.extra_config,
        ]
        return "\n".join(line for line in lines if line) + "\n"

    def _passdb_config(self) -> list[str]:
        oauth = self.oauth2_introspection_url is not None
        lines = [
            "auth_mechanisms = plain login" + (" xoauth2 oauthbearer" if oauth else ""),
            "passdb {",
            "  driver = passwd-file",
            "  mechanisms = plain login" if oauth else "",
            f"  args = scheme=PLAIN username_format=%u {self.users_dir}/%u",
            "}",
        ]
        if oauth:
            # A refused token is answered at once: the tests of refused logins stay fast.
            lines += ["auth_failure_delay = 0", "passdb {", "  driver = oauth2",
                      "  mechanisms = xoauth2 oauthbearer", f"  args = {self.oauth2_conf_path}", "}"]
        return lines

    def _oauth2_conf(self) -> str:
        """Dovecot's oauth2 passdb settings: every token is checked by a POST to the URL."""
        return "\n".join([
            "introspection_mode = post",
            f"introspection_url = {self.oauth2_introspection_url}",
            "force_introspection = yes",
            "username_attribute = username",
            "active_attribute = active",
            "active_value = true",
            "",
        ])

    def _ssl_config(self) -> list[str]:
        if not self.ssl:
            return ["ssl = no"]
        lines = ["ssl = yes", f"ssl_cert = <{self.server_cert}", f"ssl_key = <{self.server_key}"]
        if DH_PARAMS.exists():
            lines.append(f"ssl_dh = <{DH_PARAMS}")
        return lines

    def _users_config(self) -> list[str]:
        if self._uid == 0:
            return ["default_internal_user = dovecot", "default_login_user = dovenull"]
        user = pwd.getpwuid(self._uid).pw_name
        group = grp.getgrgid(self._gid).gr_name
        return [f"default_internal_user = {user}", f"default_internal_group = {group}",
                f"default_login_user = {user}"]

    def _services_config(self) -> list[str]:
        if self._uid == 0:
            # The auth process (user dovecot by default) opens the passwd-file, which may sit
            # under a root-only temporary directory; auth as root spares opening up parents.
            return ["service auth {", "  user = root", "}"]
        user = pwd.getpwuid(self._uid).pw_name
        # A non-root master can neither switch users nor chroot.
        return [f"service {name} {{\n  user = {user}\n  chroot =\n}}" for name in _NONROOT_SERVICES]


def _make_ca(key: Path, cert: Path, common_name: str) -> None:
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", str(key), "-out", str(cert), "-days", "3650", "-sha256",
             "-subj", f"/CN={common_name}",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign",
             "-addext", "subjectKeyIdentifier=hash")


def _openssl(*args: str) -> None:
    done = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"openssl {args[0]} failed (exit {done.returncode}): {last}")



def wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """Wait until every process has exited; return those still running after ``timeout``.

    A zombie counts as gone: it runs nothing, and only its parent (not us) can reap it.
    """
    deadline = time.monotonic() + timeout
    alive = list(procs)
    while alive:
        alive = [p for p in alive if _is_running(p)]
        if not alive or time.monotonic() >= deadline:
            break
        time.sleep(0.02)
    return alive


def _is_running(proc: psutil.Process) -> bool:
    try:
        return bool(proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False
