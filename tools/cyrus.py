"""A private Cyrus IMAP 3.6 on 127.0.0.1 for tests, run from the unpacked Debian packages.

Contract:
- The binaries come from ``.servers/cyrus`` (``cyrus-common`` and ``cyrus-imapd`` unpacked by
  tools/setup.sh with ``dpkg-deb -x``: the packages conflict with ``dovecot-imapd``, which
  the suite needs installed). Their libraries are installed normally.
- Everything an instance has (imapd.conf, cyrus.conf, sasldb, spool, databases, sockets,
  pid file, logs) lives under ``base_dir``; nothing under /etc or /var is read or written.
  The master runs in a private mount namespace whose ``/dev/log`` is this instance's syslog
  sink, so Cyrus's log (it has no other) lands in ``base_dir/log/syslog``.
- Folders are ``INBOX``, ``INBOX.x``, separator ``.`` (``unixhierarchysep: no``,
  ``altnamespace: no``). Users log in with SASL PLAIN/LOGIN against a sasldb; an admin user
  creates their mailboxes.
- ``start()`` returns when the IMAP port greets with ``* OK``, or raises ``RuntimeError`` with
  the master's output and the log tail. ``stop()`` leaves no process behind.
- Cyrus refuses to run as root: as root the master switches to ``nobody:nogroup``, so
  ``base_dir`` and each of its parents must be enterable by that user (tools.mailserver's
  ``make_base_dir`` makes such a directory).
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
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import imapclient
import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from tools.dovecot import HOST, free_port
from tools.mailserver import (
    SERVERS_DIR,
    Started,
    SyslogSink,
    cmdline_has,
    launch_in_namespace,
    log_tail,
    stop_family,
    wait_greeting,
)

log = logging.getLogger(__name__)

CYRUS_ROOT = SERVERS_DIR / "cyrus"
CYRUS_BIN = CYRUS_ROOT / "usr/lib/cyrus/bin"
CYRUS_LIB = CYRUS_ROOT / "usr/lib/x86_64-linux-gnu"
MAIL_USER = "nobody"
REALM = "fastsync-cyrus"
START_TIMEOUT = 20.0
_CONF_SUBDIRS = ("db", "socket", "proc", "lock", "log", "msg", "user", "quota", "sieve", "ptclient")


def ensure_cyrus() -> None:
    """Raise RuntimeError (one line) when the unpacked Cyrus binaries are missing."""
    for binary in ("master", "imapd"):
        if not (CYRUS_BIN / binary).exists():
            raise RuntimeError(f"{CYRUS_BIN / binary} is missing: run tools/setup.sh (unpacks cyrus-imapd)")
    if shutil.which("saslpasswd2") is None or shutil.which("unshare") is None:
        raise RuntimeError("saslpasswd2 or unshare is missing: run tools/setup.sh (installs sasl2-bin)")


@dataclass(frozen=True)
class CyrusUser:
    """One Cyrus user; its INBOX exists as soon as ``Cyrus.add_user`` returns."""

    name: str
    password: str
    server: Cyrus = field(repr=False, compare=False)

    def connect(self, tls: bool = False) -> imapclient.IMAPClient:
        return self.server.connect(self.name, self.password, tls=tls)

    def create_special(self, folder: str, use: str) -> None:
        """Create ``folder`` with the SPECIAL-USE attribute ``use`` (e.g. ``\\Sent``)."""
        client = self.connect()
        try:
            typ, data = client._imap._simple_command(  # CREATE-SPECIAL-USE, RFC 6154
                "CREATE", client._normalise_folder(folder).decode(), f"(USE ({use}))"
            )
            if typ != "OK":
                raise RuntimeError(f"Cyrus refused CREATE {folder!r} (USE ({use})): {data!r}")
        finally:
            client.logout()


class Cyrus(Started):
    """One private Cyrus instance rooted at ``base_dir`` (see the module docstring)."""

    def __init__(self, base_dir: Path, *, extra_config: str = "") -> None:
        self.base_dir = Path(base_dir).resolve()
        self.extra_config = extra_config  # appended verbatim to imapd.conf
        self.host = HOST
        self.port = 0
        self.conf_path = self.base_dir / "imapd.conf"
        self.master_conf = self.base_dir / "cyrus.conf"
        self.sasldb = self.base_dir / "sasldb2"
        self.log_dir = self.base_dir / "log"
        self.syslog_path = self.log_dir / "syslog"
        self.master_out = self.log_dir / "master.out"
        self.pid_path = self.base_dir / "run" / "master.pid"
        self.admin = ("cyrusadmin", secrets.token_urlsafe(12))
        self.users: dict[str, CyrusUser] = {}
        self.master_pid: int | None = None
        self._sink: SyslogSink | None = None
        self._owner: tuple[int, int] = (os.geteuid(), os.getegid())
        if os.geteuid() == 0:
            entry = pwd.getpwnam(MAIL_USER)
            self._owner = (entry.pw_uid, entry.pw_gid)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Write the configs, create the admin, launch the master, wait for the greeting."""
        ensure_cyrus()
        began = time.monotonic()
        conf = self.base_dir / "conf"
        for sub in (self.log_dir, self.pid_path.parent, self.base_dir / "spool", self.base_dir / "dev",
                    *(conf / s for s in _CONF_SUBDIRS)):
            sub.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.conf_path.write_text(self._imapd_conf(), encoding="utf-8")
        self.master_conf.write_text(self._cyrus_conf(), encoding="utf-8")
        self._set_password(*self.admin)
        self._chown_tree()
        self._sink = SyslogSink(self.base_dir / "dev" / "log", self.syslog_path)
        atexit.register(self.stop)
        argv = [str(CYRUS_BIN / "master"), "-C", str(self.conf_path), "-M", str(self.master_conf),
                "-p", str(self.pid_path), "-d", "-L", str(self.master_out)]
        env = {**os.environ, "LD_LIBRARY_PATH": str(CYRUS_LIB)}
        done = launch_in_namespace(argv, dev_dir=self.base_dir / "dev", env=env, output=self.master_out)
        try:
            if done.returncode != 0:
                raise RuntimeError(self._failure(f"master exited {done.returncode}"))
            self.master_pid = self._wait_pid(began + START_TIMEOUT)
            wait_greeting(self.port, began + START_TIMEOUT, self._alive, self._failure)
        except RuntimeError:
            self.stop()
            raise
        log.info("Cyrus at %s up in %.2fs (imap %d)", self.base_dir, time.monotonic() - began, self.port)

    def stop(self) -> None:
        """Stop the master and its children, close the syslog sink. Idempotent."""
        atexit.unregister(self.stop)
        pid = self.master_pid if self.master_pid is not None else self._read_pid()
        self.master_pid = None
        try:
            if pid is not None:
                stop_family(pid, lambda p: cmdline_has(p, str(self.conf_path)), f"Cyrus at {self.base_dir}")
        finally:
            if self._sink is not None:
                self._sink.close()
                self._sink = None


    # -- users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> CyrusUser:
        """Add a sasldb user and create its INBOX through the admin login."""
        if not name or any(c in name for c in "./ \t\n@%*") or name in self.users:
            raise ValueError(f"Cyrus user name {name!r} is taken or has characters Cyrus treats as syntax")
        self._set_password(name, password)
        admin = self.connect(*self.admin)
        try:
            admin.create_folder(f"user.{name}")
        finally:
            admin.logout()
        user = CyrusUser(name=name, password=password, server=self)
        self.users[name] = user
        return user

    def connect(self, name: str, password: str, *, tls: bool = False) -> imapclient.IMAPClient:
        if tls:
            raise RuntimeError("the private Cyrus listens in plaintext on 127.0.0.1 only")
        client = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(name, password)
        return client

    def _set_password(self, name: str, password: str) -> None:
        done = subprocess.run(
            ["saslpasswd2", "-p", "-c", "-f", str(self.sasldb), "-u", REALM, name],
            input=password, capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            why = done.stderr.strip()
            raise RuntimeError(f"saslpasswd2 for {name!r} failed (exit {done.returncode}): {why}")
        with contextlib.suppress(FileNotFoundError):
            os.chown(self.sasldb, *self._owner)

    # -- internals ---------------------------------------------------------------------------

    def log_tail(self) -> str:
        return log_tail(self.syslog_path)

    def _failure(self, what: str) -> str:
        return (f"Cyrus at {self.base_dir} failed to start: {what}\n"
                f"master output ({self.master_out}):\n{log_tail(self.master_out)}\n"
                f"log tail ({self.syslog_path}):\n{self.log_tail()}")

    def _alive(self) -> bool:
        return self.master_pid is not None and psutil.pid_exists(self.master_pid)

    def _read_pid(self) -> int | None:
        try:
            return int(self.pid_path.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _wait_pid(self, deadline: float) -> int:
        while time.monotonic() < deadline:
            pid = self._read_pid()
            with contextlib.suppress(psutil.NoSuchProcess):
                if pid is not None and cmdline_has(psutil.Process(pid), str(self.conf_path)):
                    return pid
            time.sleep(0.02)
        raise RuntimeError(self._failure(f"no live master pid in {self.pid_path}"))

    def _chown_tree(self) -> None:
        if os.geteuid() != 0:
            return
        for root, dirs, files in os.walk(self.base_dir):
            for entry in (root, *(os.path.join(root, n) for n in dirs + files)):
                os.chown(entry, *self._owner, follow_symlinks=False)

    def _imapd_conf(self) -> str:
        conf = self.base_dir / "conf"
        user = pwd.getpwuid(self._owner[0]).pw_name
        group = grp.getgrgid(self._owner[1]).gr_name
        lines = {
            "configdirectory": conf,
            "partition-default": self.base_dir / "spool",
            "servername": REALM,
            "admins": self.admin[0],
            "cyrus_user": user,
            "cyrus_group": group,
            "sasl_pwcheck_method": "auxprop",
            "sasl_auxprop_plugin": "sasldb",
            "sasl_sasldb_path": self.sasldb,
            "sasl_mech_list": "PLAIN LOGIN",
            "allowplaintext": "yes",
            "unixhierarchysep": "no",
            "altnamespace": "no",
            "virtdomains": "off",
            "idlesocket": conf / "socket/idle",
            "notifysocket": conf / "socket/notify",
            "lmtpsocket": conf / "socket/lmtp",
            "mboxname_lockpath": conf / "lock",
            "proc_path": conf / "proc",
            "sievedir": conf / "sieve",
            "serverpath": CYRUS_BIN,
            "syslog_prefix": "cyrus",
            "tls_required": "no",
        }
        text = "".join(f"{k}: {v}\n" for k, v in lines.items() if v is not None)
        head = "# Generated by tools/cyrus.py for a private test instance; do not edit.\n"
        return head + text + self.extra_config

    def _cyrus_conf(self) -> str:
        bin_dir, conf = CYRUS_BIN, self.conf_path
        return (
            "# Generated by tools/cyrus.py for a private test instance; do not edit.\n"
            f'START {{\n  recover cmd="{bin_dir}/ctl_cyrusdb -C {conf} -r"\n}}\n'
            f'SERVICES {{\n  imap cmd="{bin_dir}/imapd -C {conf}" listen="{HOST}:{self.port}" prefork=0\n}}\n'
            "EVENTS {\n}\nDAEMON {\n}\n"
        )
