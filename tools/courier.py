"""A private Courier-IMAP 5.0 on 127.0.0.1 for tests, run from the unpacked Debian packages.

Contract:
- ``courier-imap`` and ``courier-base`` are unpacked into ``.servers/courier`` by
  tools/setup.sh (``courier-imap`` conflicts with ``dovecot-imapd``); the authentication
  daemon and its userdb module (``courier-authdaemon``, ``courier-authlib-userdb``) do not
  conflict and are installed normally, but never started as the system's service.
- Courier's authentication library reads ``/etc/courier/authdaemonrc`` and the userdb and
  talks to ``/run/courier/authdaemon/socket``: all compiled-in paths. The instance's
  ``authdaemond``, ``makeuserdb`` and ``couriertcpd`` therefore run in private mount
  namespaces where ``base_dir/etc`` is ``/etc/courier``, ``base_dir/authdaemon`` is
  ``/run/courier/authdaemon`` and ``base_dir/dev/log`` is ``/dev/log`` (their only log). No
  system file is read or written, and the system's own Courier, if any, is not disturbed.
- Mail is a Maildir per user: INBOX is the Maildir, folders are ``.Name`` directories, seen
  over IMAP as ``INBOX.Name`` with separator ``.``. Users are userdb entries (SHA-512 crypt
  passwords) owned by ``nobody``; ``add_user`` works while the server runs.
- ``start()`` returns when the port greets with ``* OK``, else raises ``RuntimeError`` with the
  daemons' output and the log tail; ``stop()`` leaves no process behind.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pwd
import shlex
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

COURIER_ROOT = SERVERS_DIR / "courier"
COURIERTCPD = COURIER_ROOT / "usr/sbin/couriertcpd"
IMAPLOGIN = COURIER_ROOT / "usr/lib/courier/courier/imaplogin"
IMAPD = COURIER_ROOT / "usr/bin/imapd"
AUTHDAEMOND = Path("/usr/lib/courier/courier-authlib/authdaemond")
COURIERLOGGER = Path("/usr/sbin/courierlogger")
MAKEUSERDB = Path("/usr/sbin/makeuserdb")
SYSTEM_ETC = Path("/etc/courier")
SYSTEM_AUTHDAEMON = Path("/run/courier/authdaemon")
MAIL_USER = "nobody"
START_TIMEOUT = 20.0
CAPABILITY = "IMAP4rev1 UIDPLUS CHILDREN NAMESPACE THREAD=ORDEREDSUBJECT THREAD=REFERENCES SORT QUOTA IDLE"


def ensure_courier() -> None:
    """Raise RuntimeError (one line) when a Courier part is missing."""
    for path in (COURIERTCPD, IMAPLOGIN, IMAPD, AUTHDAEMOND, COURIERLOGGER, MAKEUSERDB):
        if not path.exists():
            raise RuntimeError(f"{path} is missing: run tools/setup.sh (unpacks courier-imap, "
                               "installs courier-authdaemon and courier-authlib-userdb)")


@dataclass(frozen=True)
class CourierUser:
    """One Courier user; ``maildir`` is its Maildir (INBOX) on disk."""

    name: str
    password: str
    maildir: Path
    server: Courier = field(repr=False, compare=False)

    def connect(self, tls: bool = False) -> imapclient.IMAPClient:
        return self.server.connect(self.name, self.password, tls=tls)


class Courier(Started):
    """One private Courier-IMAP instance rooted at ``base_dir`` (see the module docstring).

    As root, ``base_dir`` and its parents must be enterable by ``nobody`` (tools.mailserver's
    ``make_base_dir`` makes such a directory).
    """

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.host = HOST
        self.port = 0
        self.etc_dir = self.base_dir / "etc"
        self.auth_dir = self.base_dir / "authdaemon"
        self.dev_dir = self.base_dir / "dev"
        self.home_dir = self.base_dir / "home"
        self.log_dir = self.base_dir / "log"
        self.syslog_path = self.log_dir / "syslog"
        self.daemon_out = self.log_dir / "daemons.out"
        self.imapd_pid_path = self.base_dir / "run" / "imapd.pid"
        self.env_path = self.etc_dir / "imapd.env"
        self.users: dict[str, CourierUser] = {}
        self._pids: dict[str, int] = {}
        self._sink: SyslogSink | None = None
        self._owner = (os.geteuid(), os.getegid())
        if os.geteuid() == 0:
            entry = pwd.getpwnam(MAIL_USER)
            self._owner = (entry.pw_uid, entry.pw_gid)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Write the configs, start authdaemond and couriertcpd, wait for the greeting."""
        ensure_courier()
        began = time.monotonic()
        for sub in (self.etc_dir, self.auth_dir, self.dev_dir, self.home_dir, self.log_dir,
                    self.imapd_pid_path.parent):
            sub.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (self.etc_dir / "authdaemonrc").write_text(
            'authmodulelist="authuserdb"\ndaemons=2\nauthdaemonvar=/run/courier/authdaemon\n'
            'DEBUG_LOGIN=0\nDEFAULTOPTIONS=""\nLOGGEROPTS=""\n', encoding="ascii")
        userdb = self.etc_dir / "userdb"
        userdb.touch(mode=0o600)
        self._make_userdb()
        self.env_path.write_text(self._imapd_env(), encoding="ascii")
        self._sink = SyslogSink(self.dev_dir / "log", self.syslog_path)
        atexit.register(self.stop)
        try:
            self._launch("authdaemond", [str(COURIERLOGGER), f"-pid={self.auth_dir / 'pid'}",
                                         "-start", "-name=authdaemond", str(AUTHDAEMOND)],
                         self.auth_dir / "pid")
            self._launch("imapd", self._tcpd_argv(), self.imapd_pid_path)
            wait_greeting(self.port, began + START_TIMEOUT, self._alive, self._failure)
        except RuntimeError:
            self.stop()
            raise
        log.info("Courier at %s up in %.2fs (imap %d)", self.base_dir, time.monotonic() - began, self.port)

    def stop(self) -> None:
        """Stop couriertcpd and authdaemond (each with its children). Idempotent."""
        atexit.unregister(self.stop)
        try:
            for what in ("imapd", "authdaemond"):
                pid = self._pids.pop(what, None)
                if pid is not None:
                    stop_family(pid, self._is_ours, f"Courier {what} at {self.base_dir}")
        finally:
            if self._sink is not None:
                self._sink.close()
                self._sink = None


    # -- users -------------------------------------------------------------------------------

    def add_user(self, name: str, password: str) -> CourierUser:
        """Add a userdb user with an empty Maildir; it can log in when this returns."""
        if not name or any(c in name for c in "|:/\t\n .") or name in self.users:
            raise ValueError(f"Courier user name {name!r} is taken or has characters userdb cannot hold")
        home = self.home_dir / name
        maildir = home / "Maildir"
        for sub in ("cur", "new", "tmp"):
            (maildir / sub).mkdir(parents=True, exist_ok=True)
        for path in (home, maildir, *(maildir / s for s in ("cur", "new", "tmp"))):
            os.chown(path, *self._owner)
        crypted = _crypt(password)
        uid, gid = self._owner
        line = f"{name}\tuid={uid}|gid={gid}|home={home}|mail={maildir}|systempw={crypted}\n"
        with open(self.etc_dir / "userdb", "a", encoding="ascii") as f:
            f.write(line)
        self._make_userdb()
        user = CourierUser(name=name, password=password, maildir=maildir, server=self)
        self.users[name] = user
        return user

    def connect(self, name: str, password: str, *, tls: bool = False) -> imapclient.IMAPClient:
        if tls:
            raise RuntimeError("the private Courier listens in plaintext on 127.0.0.1 only")
        client = imapclient.IMAPClient(self.host, port=self.port, ssl=False, timeout=30)
        client.login(name, password)
        return client

    # -- internals ---------------------------------------------------------------------------

    def log_tail(self) -> str:
        return log_tail(self.syslog_path)

    def _binds(self) -> list[tuple[Path, Path]]:
        return [(self.etc_dir, SYSTEM_ETC), (self.auth_dir, SYSTEM_AUTHDAEMON)]

    def _make_userdb(self) -> None:
        """makeuserdb (compiled to /etc/courier/userdb) inside the namespace."""
        (self.etc_dir / "userdb").chmod(0o600)
        done = launch_in_namespace([str(MAKEUSERDB)], dev_dir=self.dev_dir, binds=self._binds(),
                                   output=self.daemon_out)
        if done.returncode != 0:
            raise RuntimeError(f"makeuserdb failed (exit {done.returncode}):\n{log_tail(self.daemon_out)}")

    def _launch(self, what: str, argv: list[str], pid_path: Path) -> None:
        script = f"set -a; . {shlex.quote(str(self.env_path))}; set +a; exec " + shlex.join(argv)
        done = launch_in_namespace(["sh", "-c", script], dev_dir=self.dev_dir, binds=self._binds(),
                                   output=self.daemon_out)
        if done.returncode != 0:
            raise RuntimeError(self._failure(f"{what} launcher exited {done.returncode}"))
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(FileNotFoundError, ValueError, psutil.NoSuchProcess):
                pid = int(pid_path.read_text().strip())
                if self._is_ours(psutil.Process(pid)):
                    self._pids[what] = pid
                    return
            time.sleep(0.02)
        raise RuntimeError(self._failure(f"{what}: no live pid in {pid_path}"))

    def _is_ours(self, proc: psutil.Process) -> bool:
        return any(cmdline_has(proc, f"-pid={p}") for p in (self.auth_dir / "pid", self.imapd_pid_path))

    def _alive(self) -> bool:
        return all(psutil.pid_exists(pid) for pid in self._pids.values())

    def _failure(self, what: str) -> str:
        return (f"Courier at {self.base_dir} failed to start: {what}\n"
                f"daemon output ({self.daemon_out}):\n{log_tail(self.daemon_out)}\n"
                f"log tail ({self.syslog_path}):\n{self.log_tail()}")

    def _tcpd_argv(self) -> list[str]:
        return [str(COURIERLOGGER), f"-pid={self.imapd_pid_path}", "-start", "-name=imapd",
                str(COURIERTCPD), f"-address={HOST}", "-maxprocs=40", "-maxperip=40",
                "-nodnslookup", "-noidentlookup", str(self.port), str(IMAPLOGIN), str(IMAPD), "Maildir"]

    def _imapd_env(self) -> str:
        """The environment imaplogin and imapd read their settings from (no TLS, no STARTTLS)."""
        settings = {
            "IMAP_CAPABILITY": CAPABILITY,
            "IMAP_CAPABILITY_ORIG": CAPABILITY,
            "IMAP_KEYWORDS": "1",
            "IMAP_ACL": "1",
            "IMAP_PROXY": "0",
            "IMAP_IDLE_TIMEOUT": "60",
            "IMAP_MAILBOX_SANITY_CHECK": "1",
            "IMAP_DISABLETHREADSORT": "0",
            "IMAP_CHECK_ALL_FOLDERS": "0",
            "IMAP_UMASK": "077",
            "IMAP_ULIMITD": "131072",
            "IMAP_USELOCKS": "1",
            "IMAP_TRASHFOLDERNAME": "Trash",
            "IMAP_EMPTYTRASH": "",
            "IMAP_MOVE_EXPUNGE_TO_TRASH": "0",
            "IMAP_TLS_REQUIRED": "0",
            "MAILDIRPATH": "Maildir",
        }
        return "".join(f"{k}={shlex.quote(v)}\n" for k, v in settings.items())


def _crypt(password: str) -> str:
    """A SHA-512 crypt(3) hash of ``password`` (what userdb's systempw field holds)."""
    done = subprocess.run(["openssl", "passwd", "-6", "-stdin"], input=password, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"openssl passwd failed (exit {done.returncode}): {done.stderr.strip()}")
    return done.stdout.strip()
