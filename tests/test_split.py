"""When and how a huge folder's copy is cut into UID ranges (workers/split.py): pure."""

from __future__ import annotations

import itertools

from hypothesis import given
from hypothesis import strategies as st

from fastsync.state import FolderState
from fastsync.stores.base import FolderStatus
from fastsync.workers.split import MAX_PARTS, split_ranges


def far(messages: int, uidnext: int | None = None) -> FolderStatus:
    return FolderStatus(validity=7, uidnext=uidnext or messages + 1, messages=messages, highestmodseq=1)


EMPTY_NEAR = FolderStatus(validity=9, uidnext=1, messages=0, highestmodseq=5)


@given(
    messages=st.integers(1, 10**6),
    extra_uids=st.integers(0, 10**6),
    threshold=st.integers(1, 50_000),
    connections=st.integers(1, 8),
)
def test_ranges_cover_the_new_uids_once_in_order(messages, extra_uids, threshold, connections):
    status = far(messages, messages + extra_uids + 1)
    ranges = split_ranges(status, None, None, threshold, connections)
    if not ranges:
        return
    assert connections >= 2 and messages >= threshold
    assert 2 <= len(ranges) <= MAX_PARTS
    assert ranges[0][0] == 1 and ranges[-1][1] == status.uidnext - 1
    for (lo, hi), (nlo, _nhi) in itertools.pairwise(ranges):
        assert lo <= hi and nlo == hi + 1


def test_first_pull_into_a_missing_or_empty_folder_is_split():
    # parts of about threshold / 2 messages
    assert split_ranges(far(1000), None, None, 100, 4) == [(50 * k + 1, 50 * k + 50) for k in range(20)]
    assert len(split_ranges(far(1000), EMPTY_NEAR, None, 100, 4)) == 20


def test_not_split_below_the_threshold_with_one_connection_or_when_turned_off():
    assert split_ranges(far(99), None, None, 100, 4) == []
    assert split_ranges(far(1000), None, None, 100, 1) == []
    assert split_ranges(far(1000), None, None, 0, 4) == []


def test_never_split_when_the_near_side_may_already_hold_the_messages():
    # no state but mail near: only content pairing may tell which are there already
    full_near = FolderStatus(validity=9, uidnext=501, messages=500, highestmodseq=5)
    assert split_ranges(far(1000), full_near, None, 100, 4) == []
    # a state whose near side moved since (e.g. copies stored by a run that crashed)
    state = FolderState(far_validity=7, near_validity=9, far_max_uid=0, near_uidnext=1, near_messages=0)
    moved = FolderStatus(validity=9, uidnext=40, messages=39, highestmodseq=6)
    assert split_ranges(far(1000), moved, state, 100, 4) == []
    # a far folder renumbered since the state
    other = FolderState(far_validity=8, near_validity=9, near_uidnext=1, near_messages=0)
    assert split_ranges(far(1000), EMPTY_NEAR, other, 100, 4) == []
    # copies waiting for a retry on the near side
    waiting = FolderState(far_validity=7, near_validity=9, near_uidnext=1, near_messages=0, retry_near={3})
    assert split_ranges(far(1000), EMPTY_NEAR, waiting, 100, 4) == []


def test_a_backlog_above_what_the_state_has_seen_is_split_from_there():
    state = FolderState(far_validity=7, near_validity=9, far_max_uid=500, near_uidnext=1, near_messages=0)
    ranges = split_ranges(far(1000, 1401), EMPTY_NEAR, state, 100, 4)
    assert ranges[0][0] == 501 and ranges[-1][1] == 1400
