"""Where state lives: ``<metadata>/Account-<name>/<hash>-<short name>.state``.

Names come from the configuration and from servers, so none of them is trusted: every file
name is built from a hash plus a sanitised, bounded label, and never leaves its directory.
Directories made here are 0700 whatever the umask.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

_UNSAFE = re.compile(r"[^A-Za-z0-9._+@=-]")
_LABEL_MAX = 40
_ACCOUNT_MAX = 80


def _hash(*parts: str) -> str:
    h = hashlib.sha1()
    for part in parts:
        raw = part.encode("utf-8", "surrogatepass")
        h.update(len(raw).to_bytes(8, "big") + raw)  # length-prefixed: ("ab","c") != ("a","bc")
    return h.hexdigest()


def _label(name: str, limit: int) -> str:
    """ASCII-only, no separators, no leading dot, at most ``limit`` characters."""
    return _UNSAFE.sub("_", name).lstrip(".")[:limit]


def make_private_dirs(path: Path) -> None:
    """Create ``path`` and its missing parents, each 0700 (existing ones are left alone)."""
    missing: list[Path] = []
    probe = path
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
        except FileExistsError:
            if not d.is_dir():
                raise
            continue
        os.chmod(d, 0o700)  # the umask may have removed bits we want, never added


def account_dir(metadata_dir: Path, account: str, create: bool = True) -> Path:
    """``Account-<name>`` (OfflineIMAP's naming) for plain names; other names get a sanitised
    label plus a hash, so two accounts never share a directory."""
    label = _label(account, _ACCOUNT_MAX)
    if label != account or not label:
        label = f"{label}-{_hash(account)[:8]}"
    path = metadata_dir / f"Account-{label}"
    if create:
        make_private_dirs(path)
    return path


def state_path(metadata_dir: Path, account: str, far_folder: str, near_folder: str) -> Path:
    """The state file of one folder pair (its directory is created, 0700)."""
    digest = _hash(far_folder, near_folder)[:16]
    label = _label(far_folder, _LABEL_MAX)
    name = f"{digest}-{label}.state" if label else f"{digest}.state"
    return account_dir(metadata_dir, account) / name
