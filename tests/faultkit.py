"""Helpers of the fault, hostile-input and security tests: the engine in-process on the real
Dovecot (ImapStore far, MaildirStore near), a seed that is printed, side snapshots, and the
process tree of a running fastsync."""

from __future__ import annotations

import os
import random
import subprocess
import sys
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
    """The worker processes of a running fastsync: the children of its forkserver."""
    try:
        main = psutil.Process(pid)
        out = []
        for child in main.children():
            if any("forkserver" in part for part in child.cmdline()):
                out.extend(child.children())
        return out
    except psutil.NoSuchProcess:
        return []


def tree_of(pid: int) -> list[psutil.Process]:
    try:
        main = psutil.Process(pid)
        return [main, *main.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def count_files(root: Path, pattern: str = "*/cur/*") -> int:
    return sum(1 for _ in root.glob(pattern)) if root.is_dir() else 0
