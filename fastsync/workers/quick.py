"""Quick mode (``quick = K`` / ``-q``): keep only the folder pairs whose cheap status moved.

A pair is skipped when ``unchanged`` says so: its state exists, nothing waits for a retry,
and both sides' cheap status (UIDVALIDITY, UIDNEXT, messages, change mark: IMAP
HIGHESTMODSEQ, Maildir newest mtime of new/ and cur/) equals what the state recorded. A full
sync also requires both change marks; a quick one does not. Anything unknown (no state, a
folder not yet created, a status error) keeps the pair.

After writing to a folder, the engine records the marks read after its writes only when a
second listing shows that nobody else changed the folder meanwhile (engine._settled_marks);
otherwise it keeps the marks read when the folder was opened, and the next run visits it.
"""

from __future__ import annotations

from pathlib import Path

from fastsync.errors import FolderError
from fastsync.folders import FolderPair
from fastsync.state import StateFile, state_path
from fastsync.state.records import FolderState
from fastsync.stores.base import FolderStatus, Store


def unchanged(
    state: FolderState, far: FolderStatus, near: FolderStatus, *, require_marks: bool = True
) -> bool:
    """True when both sides' cheap status equals what the state recorded.

    ``require_marks``: trust it only when both sides have a change mark (without one a flag
    change would not show); quick mode passes False and accepts that, as OfflineIMAP does.
    """
    if state.retry_far or state.retry_near:
        return False
    if require_marks and not (far.highestmodseq and near.highestmodseq):
        return False
    return (state.far_validity, state.far_uidnext, state.far_messages, state.far_modseq) == (
        far.validity,
        far.uidnext,
        far.messages,
        far.highestmodseq,
    ) and (state.near_validity, state.near_uidnext, state.near_messages, state.near_modseq) == (
        near.validity,
        near.uidnext,
        near.messages,
        near.highestmodseq,
    )


def changed_pairs(
    far: Store,
    near: Store,
    pairs: list[FolderPair],
    sizes: list[int],
    metadata: str,
    account: str,
    *,
    require_marks: bool = True,
    far_status: dict[str, FolderStatus] | None = None,
) -> tuple[list[FolderPair], list[int]]:
    """The pairs (and their sizes) a sync must visit; ``far_status`` may hold LIST-STATUS results."""
    keep: list[FolderPair] = []
    keep_sizes: list[int] = []
    for pair, size in zip(pairs, sizes, strict=True):
        if pair.far_exists and pair.near_exists:
            try:
                state = StateFile(state_path(Path(metadata), account, pair.far, pair.near)).load()
                if state is not None:
                    fst = (far_status or {}).get(pair.far) or far.status(pair.far)
                    nst = near.status_since(pair.near, _near_recorded(state))
            except FolderError:
                state = None
            if state is not None and unchanged(state, fst, nst, require_marks=require_marks):
                continue
        keep.append(pair)
        keep_sizes.append(size)
    return keep, keep_sizes


def _near_recorded(state: FolderState) -> FolderStatus:
    return FolderStatus(state.near_validity, state.near_uidnext, state.near_messages, state.near_modseq)
