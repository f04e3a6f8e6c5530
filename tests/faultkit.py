"""Helpers of the fault, hostile-input and security tests: the engine in-process on the real
Dovecot (ImapStore far, MaildirStore near), a seed that is printed, side snapshots, and the
process tree of a running fastsync."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from fastsync.config import ImapRepo
from fastsync.engine import EngineOptions, sync_folder
from fastsync.events import FolderStats
from fastsync.folders import FolderPair
from fastsync.model import flags_from_imap, flags_from_maildir
from fastsync.plan import PlanOptions
from fastsync.state import StateFile
from fastsync.stores.imap import ImapStore
from fastsync.stores.maildir import MaildirStore
from tests.syncenv import REPO_ROOT, SyncEnv
from tools.dovecot import Dovecot, User

Snapshot = list[tuple[int, bytes]]


def seed_for(test: str) -> int:
    """FASTSYNC_FAULT_SEED if set, else a fresh one; printed so a failure can be replayed."""
    raw = os.environ.get("FASTSYNC_FAULT_SEED")
    seed = int(raw) if raw else random.SystemRandom().randrange(1 << 32)
    print(f"{test}: seed {seed} (replay with FASTSYNC_FAULT_SEED={seed})")
    return seed


def imap_repo(dovecot: Dovecot, user: User, port: int | None = None, **kw: Any) -> ImapRepo:
    opts: dict[str, Any] = {"ssl": False, "timeout": 5.0, "remotehost": dovecot.host}
    opts.update(kw)
    return ImapRepo(name="Remote", remoteport=port or dovecot.port, remoteuser=user.name, **opts)


def engine_run(
    repo: ImapRepo,
    password: str,
    near_root: Path,
    statefile: StateFile,
    folder: str = "INBOX",
    emit: Callable[..., None] | None = None,
    near_exists: bool | None = None,
    **engine_opts: Any,
) -> FolderStats:
    """One sync of one folder pair with the real stores, in this process."""
    far = ImapStore(repo, password)
    near = MaildirStore(near_root, fsync=False)
    far.connect()
    near.connect()
    if near_exists is None:
        near_exists = (near_root / folder).is_dir()
    pair = FolderPair(folder, folder, True, near_exists)
    opts = EngineOptions(plan=PlanOptions(), **({"batch_count": 4} | engine_opts))
    try:
        return sync_folder(far, near, pair, statefile, opts, emit or (lambda e: None))
    finally:
        far.close()
        near.close()


def server_snapshot(user: User, folder: str = "INBOX") -> Snapshot:
    """Sorted (flags, bytes with LF) of a server folder."""
    c = user.connect()
    try:
        c.select_folder(folder, readonly=True)
        uids = c.search("ALL")
        resp = c.fetch(uids, [b"FLAGS", b"BODY.PEEK[]"]) if uids else {}
        return sorted(
            (flags_from_imap(d[b"FLAGS"]), d[b"BODY[]"].replace(b"\r\n", b"\n")) for d in resp.values()
        )
    finally:
        c.logout()


def maildir_snapshot(root: Path, folder: str = "INBOX") -> Snapshot:
    """Sorted (flags, bytes) of a Maildir folder (new/ and cur/)."""
    out = []
    for sub in ("new", "cur"):
        d = root / folder / sub
        if d.is_dir():
            for f in d.iterdir():
                out.append((flags_from_maildir(f.name.partition(":2,")[2]), f.read_bytes()))
    return sorted(out)


def popen_fastsync(env: SyncEnv, *args: str, ui: str = "Noninteractive.Quiet") -> subprocess.Popen[bytes]:
    if not env.config.exists():
        env.write_config()
    cmd = [sys.executable, "-m", "fastsync", "-c", str(env.config), "-o", "-u", ui, *args]
    return subprocess.Popen(
        cmd,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        start_new_session=True,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def workers_of(pid: int) -> list[psutil.Process]:
    """The worker processes of a running fastsync: the supervisor's children forked from it
    (the start method is ``fork``, so they run the supervisor's command line; a hook's shell
    does not)."""
    try:
        main = psutil.Process(pid)
        cmdline = main.cmdline()
        out = []
        for child in main.children():
            with contextlib.suppress(psutil.NoSuchProcess):
                if child.cmdline() == cmdline and child.status() != psutil.STATUS_ZOMBIE:
                    out.append(child)
        return out
    except psutil.NoSuchProcess:
        return []


class JsonRun:
    """A fastsync run with the JSON UI whose event lines are read as they come (a thread)."""

    def __init__(self, env: SyncEnv, *args: str) -> None:
        self.proc = popen_fastsync(env, *args, ui="JSON")
        self.events: list[dict[str, Any]] = []
        self.stderr = b""
        self._lock = threading.Lock()
        self._readers = [threading.Thread(target=f, daemon=True) for f in (self._read, self._read_err)]
        for t in self._readers:
            t.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._lock:
                self.events.append(json.loads(line))

    def _read_err(self) -> None:
        assert self.proc.stderr is not None
        self.stderr = self.proc.stderr.read()

    def seen(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.events)

    def busy(self) -> dict[int, str]:
        """pid -> folder of the workers that started a folder's sync and have not ended it."""
        pids: dict[int, int] = {}
        busy: dict[int, str] = {}
        for e in self.seen():
            if e["type"] == "worker_up":
                pids[e["worker"]] = e["pid"]
            elif e["type"] == "job_started" and not e["part"]:
                busy[e["worker"]] = e["folder"]
            elif e["type"] in ("job_done", "job_failed"):
                busy.pop(e["worker"], None)
        return {pids[w]: f for w, f in busy.items() if w in pids}

    def finish(self, timeout: float = 120) -> tuple[int, str]:
        """Exit code and stderr once the run has ended (killed after ``timeout``)."""
        try:
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        for t in self._readers:
            t.join(5)
        return self.proc.returncode, self.stderr.decode()


def tree_of(pid: int) -> list[psutil.Process]:
    try:
        main = psutil.Process(pid)
        return [main, *main.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def count_files(root: Path, pattern: str = "*/cur/*") -> int:
    return sum(1 for _ in root.glob(pattern)) if root.is_dir() else 0
