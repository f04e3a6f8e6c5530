"""Which folder pairs an account has: list both sides, filter, translate names, check."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastsync.config import AccountConfig, ImapRepo, MaildirRepo
from fastsync.errors import FolderError
from fastsync.folders import FolderPair, compile_expr, map_folders
from fastsync.state import StateFile, state_path
from fastsync.stores.base import FolderStatus, Store
from fastsync.workers.quick import changed_pairs
from fastsync.workers.split import split_ranges


def _where(config_path: str, repo: ImapRepo | MaildirRepo) -> str:
    return f"{config_path}: [Repository {repo.name}]"


def discover(
    far: Store,
    near: Store,
    account: AccountConfig,
    config_path: str,
    pyglobals: dict[str, Any],
    only: tuple[str, ...] = (),
    *,
    metadata: str | None = None,
    quick: bool = False,
    split: tuple[int, int] = (0, 1),
) -> tuple[list[FolderPair], list[int], list[str], dict[str, list[tuple[int, int]]]]:
    """Folder pairs to sync (with far sizes for scheduling), warnings, and UID ranges.

    ``only`` (from ``-f``) keeps the pairs whose far name is listed. With ``metadata``, pairs
    whose cheap status shows no change since the last sync are left out without being
    selected (quick.changed_pairs; ``quick`` also trusts sides that have no change mark).
    ``split`` (threshold, connections): folders to copy in UID ranges by several workers
    (workers/split.py), by far name; their near folders are created here.
    """
    remote, local = account.remote, account.local
    where_far, where_near = _where(config_path, remote), _where(config_path, local)

    def expr(src: str | None, where: str, option: str) -> Any:
        return compile_expr(src, f"{where} {option}", pyglobals) if src else None

    pairs, warnings = map_folders(
        far.list_folders(),
        far.separator,
        near.list_folders(),
        near.separator,
        far_filter=expr(remote.folderfilter, where_far, "folderfilter"),
        far_nametrans=expr(remote.nametrans, where_far, "nametrans"),
        near_filter=expr(local.folderfilter, where_near, "folderfilter"),
        near_nametrans=expr(local.nametrans, where_near, "nametrans"),
        create_on_far=remote.createfolders and not remote.readonly,
        create_on_near=local.createfolders and not local.readonly,
        where_far=where_far,
        where_near=where_near,
    )
    if only:
        wanted = set(only)
        pairs = [p for p in pairs if p.far in wanted or p.near in wanted]
    far_status = far.list_status() or {}
    sizes = []
    for p in pairs:
        try:
            st = far_status.get(p.far) or (far.status(p.far) if p.far_exists else None)
        except FolderError as e:
            warnings.append(str(e))
            st = None
        sizes.append(st.messages if st else 0)
    if metadata is not None:
        pairs, sizes = changed_pairs(
            far, near, pairs, sizes, metadata, account.name, require_marks=not quick, far_status=far_status
        )
    ranges: dict[str, list[tuple[int, int]]] = {}
    if metadata is not None and split[0] > 0:
        for i, (pair, size) in enumerate(zip(pairs, sizes, strict=True)):
            if size >= split[0] and pair.far_exists:
                try:
                    found = _ranges(far, near, pair, far_status, metadata, account.name, split)
                except FolderError as e:
                    warnings.append(str(e))
                    continue
                if found:
                    ranges[pair.far] = found
                    pairs[i] = FolderPair(pair.far, pair.near, True, True)
    return pairs, sizes, warnings, ranges


def _ranges(
    far: Store,
    near: Store,
    pair: FolderPair,
    far_status: dict[str, FolderStatus],
    metadata: str,
    account: str,
    split: tuple[int, int],
) -> list[tuple[int, int]]:
    fst = far_status.get(pair.far) or far.status(pair.far)
    nst = near.status(pair.near) if pair.near_exists else None
    state = StateFile(state_path(Path(metadata), account, pair.far, pair.near)).load() if nst else None
    found = split_ranges(fst, nst, state, *split)
    if found and not pair.near_exists:
        # Created (with its UIDVALIDITY) here, once: the range jobs then only add to it.
        near.create_folder(pair.near)
        near.status(pair.near)
    return found
