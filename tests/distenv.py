"""Helpers for the distributed-batch tests: a private redis-server, real `fastsync worker`
processes, the batch CLI, and a sampler of a server's open connections."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from tools.redis import RedisServer

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A redis-server on 127.0.0.1 (random port, data in a temp dir), stopped at the end."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"private redis-server unavailable: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def queue_url(redis_server: RedisServer) -> str:
    """The private Redis, emptied for this test."""
    import redis

    redis.Redis.from_url(redis_server.url).flushall()
    return redis_server.url


@dataclass
class Fleet:
    """Workers and CLI calls of one test; ``stop()`` ends every worker it started."""

    url: str
    tmp: Path
    env: dict[str, str] = field(default_factory=dict)
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), **self.env)

    def cli(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([sys.executable, "-m", "fastsync", *args], capture_output=True, text=True,
                              timeout=120, env=self.env, stdin=subprocess.DEVNULL)
        if expect is not None:
            assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def start_worker(self, name: str) -> subprocess.Popen[bytes]:
        argv = [sys.executable, "-m", "fastsync", "worker", "--queue", self.url, "--name", name,
                "--metadata", str(self.tmp / f"meta-{name}"), "--sweep-every", "0.5"]
        with open(self.tmp / f"{name}.log", "ab") as log:
            proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        self.workers[name] = proc
        return proc

    def kill_machine(self, name: str) -> int:
        """SIGKILL a worker with everything it started (its RQ work horse runs in a process group
        of its own): what losing the machine does. Returns how many processes were killed."""
        proc = self.workers[name]
        tree = [psutil.Process(proc.pid)]
        with contextlib.suppress(psutil.NoSuchProcess):
            tree += tree[0].children(recursive=True)
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        proc.wait(10)
        return len(tree)

    def status(self) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.cli("batch", "status", "--queue", self.url, "--json").stdout)
        return out

    def wait_finished(self, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            s = self.status()
            if s["accounts"] and s["done"] + s["partial"] + s["failed"] == s["accounts"]:
                return s
            assert time.monotonic() < deadline, f"batch not finished after {timeout} s: {s}\n{self.logs()}"
            time.sleep(0.5)

    def report(self) -> list[dict[str, Any]]:
        self.cli("batch", "report", "--queue", self.url, "--out", str(self.tmp / "report"))
        rows: list[dict[str, Any]] = json.loads((self.tmp / "report.json").read_text())["accounts"]
        return rows

    def logs(self) -> str:
        return "\n".join(
            f"--- {n}\n" + (self.tmp / f"{n}.log").read_text(errors="replace")[-3000:] for n in self.workers
        )

    def stop(self) -> None:
        for proc in self.workers.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.workers.items():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill_machine(name)


class ConnectionSampler(threading.Thread):
    """Counts, every few milliseconds, the ESTABLISHED TCP connections a server accepted on ``port``."""

    def __init__(self, port: int) -> None:
        super().__init__(daemon=True)
        self.port = port
        self.peak = 0
        self.samples = 0
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            n = sum(
                1
                for c in psutil.net_connections(kind="tcp")
                if c.laddr and c.laddr.port == self.port and c.status == psutil.CONN_ESTABLISHED
            )
            self.peak = max(self.peak, n)
            self.samples += 1
            time.sleep(0.01)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)
