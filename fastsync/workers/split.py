"""Splitting a huge folder's copy into UID ranges that several workers fetch at once.

A folder with many new far messages (at least ``splitthreshold``, 20,000 by default) is copied
by CopyRange jobs first: each fetches one range of far UIDs into the near folder and records
its pairs in a part state of its own (``<state>.part<k>``), so no two processes ever write
one state file. The folder's normal SyncFolder job runs once every part has ended: loading
the state merges the parts (StateFile), the planner finds those messages paired, and the job
copies only what the parts missed, then commits one snapshot and removes the parts.

A range copy cannot pair by content, so it runs only where nothing on the near side can
already hold one of those messages: a first sync into a missing or empty near folder, or a
state whose near side has not moved since it was recorded (no unrecorded copies from a
crash). Anything else goes the normal way. This module decides; it does no I/O.
"""

from __future__ import annotations

from fastsync.state import FolderState
from fastsync.stores.base import FolderStatus

MAX_PARTS = 64


def split_ranges(
    far: FolderStatus,
    near: FolderStatus | None,
    state: FolderState | None,
    threshold: int,
    connections: int,
) -> list[tuple[int, int]]:
    """The far UID ranges to copy in parallel, or [] to sync the folder the normal way.

    ``near`` None: the near folder does not exist yet. Ranges cut the span of new far UIDs
    into equal parts of about ``threshold / 2`` messages (assuming UIDs spread evenly).
    """
    if threshold <= 0 or connections < 2 or far.messages < threshold or far.uidnext <= 1:
        return []
    if state is None:
        if near is not None and near.messages:
            return []  # lost state: only content pairing may tell what is there already
        lo, expected = 1, far.messages
    else:
        near_moved = near is None or (near.validity, near.uidnext, near.messages) != (
            state.near_validity,
            state.near_uidnext,
            state.near_messages,
        )
        if near_moved or state.retry_near or state.far_validity != far.validity:
            return []
        lo, expected = state.far_max_uid + 1, far.messages - len(state.pairs)
    hi = far.uidnext - 1
    if hi < lo or expected < threshold:
        return []
    parts = min(MAX_PARTS, -(-expected // max(threshold // 2, 1)))
    if parts < 2:
        return []
    span = hi - lo + 1
    bounds = [lo + span * k // parts for k in range(parts + 1)]
    return [(bounds[k], bounds[k + 1] - 1) for k in range(parts) if bounds[k + 1] > bounds[k]]
