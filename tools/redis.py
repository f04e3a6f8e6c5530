"""A private redis-server on 127.0.0.1 for the tests and the benchmark of ``fastsync[dist]``.

Contract:
- Everything lives under ``base_dir`` (its append-only file, its log); nothing is read from or
  written to /etc/redis or /var/lib/redis, and the system service is never touched.
- ``start()`` returns once the server answers PING on a port that was free a moment ago; a
  restart (``stop()`` then ``start()``) keeps the port and the data (appendonly, fsync always),
  as a production broker with persistence would.
- ``stop()`` leaves no process behind, and runs at interpreter exit if the caller forgot.
"""

from __future__ import annotations

import atexit
import shutil
import socket
import subprocess
import time
from pathlib import Path

from tools.dovecot import HOST, free_port

REDIS_BIN = "redis-server"
START_TIMEOUT = 15.0


class RedisServer:
    """One redis-server process rooted at ``base_dir``."""

    def __init__(self, base_dir: Path) -> None:
        self.base_dir = Path(base_dir).resolve()
        self.host = HOST
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.base_dir / "redis.log"

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which(REDIS_BIN) or f"/usr/bin/{REDIS_BIN}"
        if not Path(binary).exists():
            raise RuntimeError(f"{REDIS_BIN} is missing (apt-get install redis-server; tools/setup.sh does)")
        self.base_dir.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        argv = [
            binary, "--bind", self.host, "--port", str(self.port), "--dir", str(self.base_dir),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "",
            "--daemonize", "no", "--protected-mode", "yes", "--logfile", str(self.log_path),
        ]
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        atexit.register(self.stop)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.proc.returncode}: {self._log_tail()}")
            if self.ping():
                return
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server on port {self.port} never answered PING: {self._log_tail()}")

    def ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM (redis writes its data and exits), then SIGKILL after a deadline. Idempotent."""
        atexit.unregister(self.stop)
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def restart(self) -> None:
        self.stop()
        self.start()

    def _log_tail(self) -> str:
        try:
            return " | ".join(self.log_path.read_text(errors="replace").splitlines()[-5:])
        except OSError:
            return "(no log)"
