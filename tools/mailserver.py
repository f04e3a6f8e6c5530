"""What the private Cyrus and Courier launchers share: a syslog sink, a private mount
namespace to run a daemon in, greeting and process-family waits, and the user shape tests use.

Contract:
- ``SyslogSink`` binds a datagram socket inside a server's base directory and appends every
  record it receives to a log file, from a daemon thread, until ``close()``.
- ``launch_in_namespace`` runs a command in a private mount namespace (``unshare --mount``)
  where ``/dev`` is a copy holding the sink's socket as ``/dev/log`` and the usual character
  devices, and where ``binds`` (host path -> path seen by the daemon) are bind-mounted. Daemons
  whose log goes only to syslog, or whose config paths are compiled in, can so run beside the
  system's and beside each other without touching any system file. Nothing outside the
  namespace changes.
- ``wait_greeting`` returns when a plain port greets with ``* OK`` and raises with the
  caller's failure text otherwise; ``stop_family`` ends a daemon and its children by pid.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, Self

import imapclient
import psutil  # type: ignore[import-untyped]  # no stubs in the venv

from tools.dovecot import HOST, wait_gone

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parent.parent
SERVERS_DIR = REPO_ROOT / ".servers"  # unpacked Debian packages (tools/setup.sh), gitignored
DEVICES = ("null", "zero", "random", "urandom", "full", "tty")
LOG_TAIL_LINES = 30


class Started:
    """A private server as a context manager: ``start()`` on entering, ``stop()`` on leaving."""

    def start(self) -> None:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MailServer(Protocol):
    """What tests need of any private server: where it listens and how to log in."""

    host: str
    port: int

    def connect(self, name: str, password: str, *, tls: bool = False) -> imapclient.IMAPClient: ...


class MailUser(Protocol):
    """One mail user of a private server (Dovecot, Cyrus or Courier)."""

    @property
    def name(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def server(self) -> MailServer: ...

    def connect(self, tls: bool = False) -> imapclient.IMAPClient: ...


class SyslogSink:
    """A ``/dev/log`` stand-in: records sent to ``socket_path`` are appended to ``log_path``."""

    def __init__(self, socket_path: Path, log_path: Path) -> None:
        self.socket_path = socket_path
        self.log_path = log_path
        with contextlib.suppress(FileNotFoundError):
            socket_path.unlink()
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(socket_path))
        os.chmod(socket_path, 0o666)  # the daemons log after dropping root
        self._sock.settimeout(0.2)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._pump, name=f"syslog-{socket_path}", daemon=True)
        self._thread.start()

    def _pump(self) -> None:
        with open(self.log_path, "ab") as out:
            while not self._closed.is_set():
                try:
                    record = self._sock.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                out.write(record.rstrip(b"\n") + b"\n")
                out.flush()

    def close(self) -> None:
        self._closed.set()
        self._thread.join(2.0)
        self._sock.close()
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()


def make_base_dir(prefix: str) -> Path:
    """A fresh directory under the system temp dir that daemons running as ``nobody`` can enter
    (pytest's own temporary directories are 0700 root)."""
    base = Path(tempfile.mkdtemp(prefix=prefix))
    base.chmod(0o711)
    return base


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of ``path``, or a note that it does not exist."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return f"(no log file at {path})"
    return "\n".join(text.splitlines()[-lines:]) or f"(empty log file {path})"


def launch_in_namespace(
    argv: Sequence[str],
    *,
    dev_dir: Path,
    binds: Sequence[tuple[Path, Path]] = (),
    env: dict[str, str] | None = None,
    output: Path,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` (a daemon that forks into the background) in a private mount namespace.

    ``dev_dir`` must hold the sink's ``log`` socket; it becomes ``/dev`` there. The command's
    own stdout/stderr go to ``output``. Returns when the foreground process exits.
    """
    script = ["set -e"]
    for name in DEVICES:
        node = dev_dir / name
        script.append(f": > {shlex.quote(str(node))}")
        script.append(f"mount --bind /dev/{name} {shlex.quote(str(node))}")
    script.append(f"ln -sfn /proc/self/fd {shlex.quote(str(dev_dir / 'fd'))}")
    for host_path, seen_as in binds:
        script.append(f"mount --bind {shlex.quote(str(host_path))} {shlex.quote(str(seen_as))}")
    script.append(f"mount --rbind {shlex.quote(str(dev_dir))} /dev")
    script.append("exec " + " ".join(shlex.quote(a) for a in argv))
    cmd = ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(script)]
    with open(output, "ab") as out:
        return subprocess.run(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env, check=False
        )


def wait_greeting(
    port: int, deadline: float, alive: Callable[[], bool], failure: Callable[[str], str]
) -> None:
    """Wait until ``port`` on 127.0.0.1 greets with ``* OK``; raise ``RuntimeError(failure(why))``."""
    last_error = "no attempt"
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(failure("the daemon exited during start"))
        try:
            with socket.create_connection((HOST, port), timeout=2.0) as raw:
                greeting = raw.recv(200)
        except OSError as exc:
            last_error = f"{type(exc).__name__}: {exc}"
            time.sleep(0.05)
            continue
        if greeting.startswith(b"* OK"):
            return
        raise RuntimeError(failure(f"port {port} greeted with {greeting[:80]!r}"))
    raise RuntimeError(failure(f"port {port} never greeted with '* OK' ({last_error})"))


def stop_family(
    pid: int, is_ours: Callable[[psutil.Process], bool], what: str, timeout: float = 10.0
) -> None:
    """SIGTERM the daemon ``pid`` (if it is ours) and its children, then SIGKILL what is left."""
    try:
        master = psutil.Process(pid)
        if not is_ours(master):
            return
        family = [master, *master.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        master.send_signal(signal.SIGTERM)
    alive = wait_gone(family, timeout)
    for proc in alive:
        log.warning("%s process %d did not exit on SIGTERM; killing it", what, proc.pid)
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    still = wait_gone(alive, timeout)
    if still:
        raise RuntimeError(f"{what} left processes {', '.join(str(p.pid) for p in still)} alive")


def cmdline_has(proc: psutil.Process, needle: str) -> bool:
    """Whether ``needle`` is one of ``proc``'s arguments (False if we may not look)."""
    try:
        return needle in proc.cmdline()
    except (psutil.AccessDenied, psutil.NoSuchProcess):
        return False
