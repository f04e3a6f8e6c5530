"""Run one command and measure it: wall time, CPU of its whole process tree, peak RSS
(largest single process and the sum over the tree), with a timeout that kills the tree."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

POLL_SECONDS = 0.02
MB = 1024 * 1024


@dataclass
class Measured:
    wall: float
    cpu: float
    rss_max: int  # bytes: the largest single process at any sample
    rss_sum: int  # bytes: the largest sum over the tree at any sample
    returncode: int | None  # None: killed at the timeout
    output_tail: str = ""

    @property
    def timed_out(self) -> bool:
        return self.returncode is None


def run_measured(cmd: list[str], *, env: dict[str, str] | None = None, timeout: float = 600.0,
                 log_path: Path | None = None, cwd: Path | None = None) -> Measured:
    """Run ``cmd`` to completion (or ``timeout``), sampling its process tree every 20 ms.

    CPU is the larger of what the kernel reports for the reaped tree (wait4 rusage) and the sum
    of the last CPU times seen per process (which counts descendants that a grandchild, such as
    a forkserver, reaps out of our sight).
    """
    out = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed below
    began = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    root = psutil.Process(proc.pid)
    cpu_seen: dict[int, float] = {}
    rss_max = rss_sum = 0
    returncode: int | None = None
    rusage_cpu = 0.0
    try:
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                proc.returncode = returncode = os.waitstatus_to_exitcode(status)
                rusage_cpu = usage.ru_utime + usage.ru_stime
                break
            if time.monotonic() - began > timeout:
                _kill_tree(root)
                proc.wait()
                break
            total = 0
            for p in _tree(root):
                with contextlib.suppress(psutil.Error):
                    with p.oneshot():
                        rss = p.memory_info().rss
                        t = p.cpu_times()
                    cpu_seen[p.pid] = t.user + t.system
                    total += rss
                    rss_max = max(rss_max, rss)
            rss_sum = max(rss_sum, total)
            time.sleep(POLL_SECONDS)
    finally:
        if log_path:
            out.close()  # type: ignore[union-attr]
    wall = time.monotonic() - began
    tail = ""
    if log_path:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-5:])
    return Measured(wall=wall, cpu=max(rusage_cpu, sum(cpu_seen.values())), rss_max=rss_max,
                    rss_sum=rss_sum, returncode=returncode, output_tail=tail)


def _tree(root: psutil.Process) -> list[psutil.Process]:
    try:
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _kill_tree(root: psutil.Process) -> None:
    """Kill the command we started and its descendants (its own session), by pid."""
    for p in reversed(_tree(root)):
        with contextlib.suppress(psutil.Error):
            p.send_signal(signal.SIGKILL)
