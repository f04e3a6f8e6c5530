"""The in-memory state of one folder pair, the journal records that change it, and the one
function that applies them (used by a live sync and by journal replay alike, so the two
cannot drift apart).

Records are tagged ``array_like`` msgspec Structs; add fields only at the end, with defaults.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from fastsync.state.pairs import PairTable


class FolderState(msgspec.Struct):
    """What the last sync saw of one folder pair. UIDs above ``*_max_uid`` are new."""

    far_validity: int = 0
    near_validity: int = 0
    far_max_uid: int = 0
    near_max_uid: int = 0
    far_modseq: int = 0  # HIGHESTMODSEQ seen on far; 0 = unknown
    far_uidnext: int = 0
    near_uidnext: int = 0
    far_messages: int = 0
    near_messages: int = 0
    near_modseq: int = 0  # near's cheap change mark (Maildir: newest mtime of new/ and cur/); 0 = unknown
    retry_far: set[int] = msgspec.field(default_factory=set)  # UIDs whose copy failed; retried next run
    retry_near: set[int] = msgspec.field(default_factory=set)
    pairs: PairTable = msgspec.field(default_factory=PairTable)


class Paired(msgspec.Struct, array_like=True, tag="paired"):
    """New pairs (far UID, near UID, flags), e.g. after a copy batch."""

    pairs: list[tuple[int, int, int]]


class Unpaired(msgspec.Struct, array_like=True, tag="unpaired"):
    """Pairs dropped (message gone on both sides, or its deletion propagated)."""

    far_uids: list[int]


class FlagsSet(msgspec.Struct, array_like=True, tag="flags"):
    """New synced flags: (far UID, flags)."""

    items: list[tuple[int, int]]


class Header(msgspec.Struct, array_like=True, tag="header"):
    """Every header field of FolderState at once."""

    far_validity: int
    near_validity: int
    far_max_uid: int
    near_max_uid: int
    far_modseq: int
    far_uidnext: int
    near_uidnext: int
    far_messages: int
    near_messages: int
    near_modseq: int = 0


class Retry(msgspec.Struct, array_like=True, tag="retry"):
    """UIDs of one side added to (``add``) or removed from its retry set."""

    side: Literal["far", "near"]
    uids: list[int]
    add: bool


JournalRecord = Paired | Unpaired | FlagsSet | Header | Retry


def header_of(state: FolderState) -> Header:
    """The Header record that sets the header fields to those of ``state``."""
    return Header(
        far_validity=state.far_validity,
        near_validity=state.near_validity,
        far_max_uid=state.far_max_uid,
        near_max_uid=state.near_max_uid,
        far_modseq=state.far_modseq,
        far_uidnext=state.far_uidnext,
        near_uidnext=state.near_uidnext,
        far_messages=state.far_messages,
        near_messages=state.near_messages,
        near_modseq=state.near_modseq,
    )


def apply_record(state: FolderState, rec: JournalRecord) -> None:
    """Apply one record to ``state``.

    Raises ValueError or KeyError when the record contradicts the state (pairing a UID that is
    already paired, unpairing or flagging an unknown one); the records before the offending
    item of the same record stay applied, so the caller must treat ``state`` as broken then.
    Apply a record before journalling it, so a record that does not apply never reaches disk.
    """
    pairs = state.pairs
    if isinstance(rec, Paired):
        for far_uid, near_uid, flags in rec.pairs:
            pairs.add(far_uid, near_uid, flags)
    elif isinstance(rec, Unpaired):
        for far_uid in rec.far_uids:
            pairs.remove_far(far_uid)
    elif isinstance(rec, FlagsSet):
        for far_uid, flags in rec.items:
            pairs.set_flags(far_uid, flags)
    elif isinstance(rec, Header):
        state.far_validity = rec.far_validity
        state.near_validity = rec.near_validity
        state.far_max_uid = rec.far_max_uid
        state.near_max_uid = rec.near_max_uid
        state.far_modseq = rec.far_modseq
        state.far_uidnext = rec.far_uidnext
        state.near_uidnext = rec.near_uidnext
        state.far_messages = rec.far_messages
        state.near_messages = rec.near_messages
        state.near_modseq = rec.near_modseq
    elif isinstance(rec, Retry):
        if rec.side == "far":
            target = state.retry_far
        elif rec.side == "near":
            target = state.retry_near
        else:
            raise ValueError(f"retry record names side {rec.side!r}, not 'far' or 'near'")
        if rec.add:
            target.update(rec.uids)
        else:
            target.difference_update(rec.uids)
    else:  # pragma: no cover - the union is closed
        raise TypeError(f"not a journal record: {rec!r}")
