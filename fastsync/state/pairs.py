"""The table of paired messages of one folder pair: far UID <-> near UID, with synced flags.

Storage is columnar, 9 bytes a pair: far UIDs (``array('I')``, ascending), near UIDs
(``array('I')``) and flags (``array('B')``) side by side, as the snapshot holds them (see
codec.py: three little-endian blobs), so loading a table is three C-level copies and no
Python object per pair. A dict of a million pairs would take about 100 MB; this takes 9.

Changes stay cheap without moving the arrays: a pair whose far UID is above every other is
appended; one below goes to a small overlay (``_extra``); a removed pair is remembered in
``_gone`` and stays in the arrays until the next ordered walk (items, to_blobs) compacts
them. Lookups by far UID bisect. Lookups by near UID use an index built on first need: the
near UIDs in ascending order with their positions (a copy of the near column when near
UIDs ascend with far ones, the usual case); pairs added after it was built are indexed in
a dict of their own (``_late``). Every index answer is checked against the columns, so a
pair removed since simply stops being found.
"""

from __future__ import annotations

import operator
import sys
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from itertools import islice

from fastsync.model import Side
from fastsync.uidmap import FLAGS_CODE, UID_CODE, UidMap

MAX_UID = 0xFFFFFFFF
MAX_FLAGS = 0xFF
_SWAP = sys.byteorder == "big"  # the blobs are little-endian everywhere


def _from_le(code: str, blob: bytes) -> array[int]:
    out = array(code)
    out.frombytes(blob)
    if _SWAP:  # pragma: no cover
        out.byteswap()
    return out


def _to_le(values: array[int]) -> bytes:
    if _SWAP:  # pragma: no cover
        values = array(values.typecode, values)
        values.byteswap()
    return values.tobytes()


def _check_uid(what: str, uid: int) -> None:
    if not 0 < uid <= MAX_UID:
        raise ValueError(f"{what} UID {uid} is outside 1..{MAX_UID}")


def _ascending(values: array[int]) -> bool:
    """Strictly ascending; map + operator.lt keep the loop in C (a million UIDs: a few ms)."""
    return all(map(operator.lt, values, islice(values, 1, None)))


class _NearIndex:
    """Near UIDs of the columns' first ``len(near)`` positions, ascending, with their positions."""

    __slots__ = ("late", "near", "pos")

    def __init__(self, near: array[int], pos: array[int] | None) -> None:
        self.near = near
        self.pos = pos  # None: position i holds near[i] (near UIDs ascended with far ones)
        self.late: dict[int, int] = {}  # near -> far, for pairs added after the build

    def position(self, near_uid: int) -> int:
        i = bisect_left(self.near, near_uid)
        if i == len(self.near) or self.near[i] != near_uid:
            return -1
        return i if self.pos is None else self.pos[i]


class PairTable:
    """Paired messages.

    ``add``/``remove_far``/``set_flags`` refuse what would break the pairing (a UID paired
    twice, an unknown UID, a value out of range) with ValueError/KeyError, so a caller's bug
    shows at once instead of corrupting the state.
    """

    __slots__ = ("_extra", "_far", "_flags", "_gone", "_index", "_max_near", "_near")

    def __init__(self) -> None:
        self._far = array(UID_CODE)
        self._near = array(UID_CODE)
        self._flags = array(FLAGS_CODE)
        self._gone: set[int] = set()  # far UIDs removed, still in the columns
        self._extra: dict[int, int] = {}  # far -> near << 8 | flags, below the columns' last far UID
        self._index: _NearIndex | None = None
        self._max_near = 0  # no near UID above this was ever in the table

    # -- conversion ------------------------------------------------------------------

    @classmethod
    def from_blobs(cls, far: bytes, near: bytes, flags: bytes) -> PairTable:
        """A table of the snapshot blobs; ValueError if their lengths do not match, or if they
        repeat a far UID or hold UID 0 (a repeated near UID shows when the near index is built)."""
        if len(far) % 4 or len(far) != len(near) or len(far) // 4 != len(flags):
            raise ValueError(
                f"pair blobs do not match ({len(far)} bytes of far UIDs, "
                f"{len(near)} of near UIDs, {len(flags)} of flags)"
            )
        table = cls()
        table._far, table._near = _from_le(UID_CODE, far), _from_le(UID_CODE, near)
        table._flags = array(FLAGS_CODE, flags)
        if not table._far:
            return table
        if not _ascending(table._far):
            table._sort_columns()
            if not _ascending(table._far):
                raise ValueError("the pair table repeats a far UID")
        if table._far[0] == 0:
            raise ValueError("the pair table holds far UID 0")
        if min(table._near) == 0:
            raise ValueError("the pair table holds near UID 0")
        table._max_near = max(table._near)
        return table

    def to_blobs(self) -> tuple[bytes, bytes, bytes]:
        """(far UIDs, near UIDs, flags) as little-endian blobs, ascending far UID."""
        self._compact()
        return _to_le(self._far), _to_le(self._near), self._flags.tobytes()

    # -- queries ---------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._far) - len(self._gone) + len(self._extra)

    def __contains__(self, far_uid: object) -> bool:
        return isinstance(far_uid, int) and (far_uid in self._extra or self._pos(far_uid) >= 0)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PairTable):
            return NotImplemented
        self._compact()
        other._compact()
        return (self._far, self._near, self._flags) == (other._far, other._near, other._flags)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"<PairTable {len(self)} pairs>"

    def near_of(self, far_uid: int) -> int | None:
        v = self._extra.get(far_uid)
        if v is not None:
            return v >> 8
        i = self._pos(far_uid)
        return None if i < 0 else self._near[i]

    def flags_of(self, far_uid: int) -> int | None:
        v = self._extra.get(far_uid)
        if v is not None:
            return v & MAX_FLAGS
        i = self._pos(far_uid)
        return None if i < 0 else self._flags[i]

    def far_of_near(self, near_uid: int) -> int | None:
        if near_uid > self._max_near or near_uid <= 0:
            return None
        index = self._near_index()
        far = index.late.get(near_uid)
        if far is not None and self.near_of(far) == near_uid:
            return far
        i = index.position(near_uid)
        if i >= 0 and self._near[i] == near_uid and self._far[i] not in self._gone:
            return self._far[i]
        return None

    def unpaired_near(self, near_uids: Iterable[int]) -> list[int]:
        """Those of ``near_uids`` that no pair holds, asked all at once: checked against a
        bitmap of the paired near UIDs (an eighth of a byte each: no index of the table)."""
        top = self._max_near
        if not self or top > 64 * len(self) + 65536:
            return [u for u in near_uids if self.far_of_near(u) is None]
        bitmap = bytearray(top // 8 + 1)
        for f, n in zip(self._far, self._near, strict=True):
            if f not in self._gone:
                bitmap[n >> 3] |= 1 << (n & 7)
        for v in self._extra.values():
            n = v >> 8
            bitmap[n >> 3] |= 1 << (n & 7)
        return [u for u in near_uids if u > top or not bitmap[u >> 3] & (1 << (u & 7))]

    def items(self) -> Iterator[tuple[int, int, int]]:
        """(far, near, flags) in ascending far UID; do not change the table while iterating."""
        self._compact()
        return zip(self._far, self._near, self._flags, strict=True)

    def columns(self) -> tuple[array[int], array[int], array[int]]:
        """(far UIDs, near UIDs, flags), ascending far UID: the table's own arrays, to read
        only and only until the next change."""
        self._compact()
        return self._far, self._near, self._flags

    def flags_by(self, side: Side) -> UidMap:
        """The synced flags keyed by one side's UIDs, as a compact sorted map (a copy)."""
        self._compact()
        if side is Side.FAR:
            return UidMap(array(UID_CODE, self._far), array(FLAGS_CODE, self._flags))
        stale = self._index is not None and (self._index.late or len(self._index.near) != len(self._near))
        if stale:  # pairs added since it was built: only a fresh index is exact
            self._index = None
        index = self._near_index()
        if index.pos is None:
            return UidMap(array(UID_CODE, self._near), array(FLAGS_CODE, self._flags))
        return UidMap(array(UID_CODE, index.near), array(FLAGS_CODE, map(self._flags.__getitem__, index.pos)))

    # -- changes ---------------------------------------------------------------------

    def add(self, far_uid: int, near_uid: int, flags: int) -> None:
        """Pair two messages. ValueError if either UID is already paired or out of range."""
        _check_uid("far", far_uid)
        _check_uid("near", near_uid)
        if not 0 <= flags <= MAX_FLAGS:
            raise ValueError(f"flags {flags} of far UID {far_uid} do not fit in a byte")
        paired = self.near_of(far_uid)
        if paired is not None:
            raise ValueError(f"far UID {far_uid} is already paired (with near UID {paired})")
        other = self.far_of_near(near_uid)  # free when near_uid is above all (the usual case)
        if other is not None:
            raise ValueError(f"near UID {near_uid} is already paired (with far UID {other})")
        far = self._far
        if not far or far_uid > far[-1]:
            far.append(far_uid)
            self._near.append(near_uid)
            self._flags.append(flags)
        elif far_uid in self._gone:  # paired before, removed in this run: its slot is free
            i = bisect_left(far, far_uid)
            self._gone.discard(far_uid)
            self._near[i], self._flags[i] = near_uid, flags
        else:
            self._extra[far_uid] = near_uid << 8 | flags
        if self._index is not None:
            self._index.late[near_uid] = far_uid
        self._max_near = max(self._max_near, near_uid)

    def remove_far(self, far_uid: int) -> None:
        """Drop a pair; KeyError if ``far_uid`` is not paired."""
        if self._extra.pop(far_uid, None) is not None:
            return
        if self._pos(far_uid) < 0:
            raise KeyError(far_uid)
        self._gone.add(far_uid)

    def set_flags(self, far_uid: int, flags: int) -> None:
        """Record new synced flags; KeyError if ``far_uid`` is not paired."""
        if not 0 <= flags <= MAX_FLAGS:
            if far_uid not in self:
                raise KeyError(far_uid)
            raise ValueError(f"flags {flags} of far UID {far_uid} do not fit in a byte")
        v = self._extra.get(far_uid)
        if v is not None:
            self._extra[far_uid] = v & ~MAX_FLAGS | flags
            return
        i = self._pos(far_uid)
        if i < 0:
            raise KeyError(far_uid)
        self._flags[i] = flags

    def merge(self, parts: list[PairTable]) -> int:
        """Add the pairs of ``parts`` whose far and near UIDs are both unpaired here (part by
        part in far order, so of two that share a UID the first wins); return how many.

        Parts above everything here, with distinct UIDs (range copies of a first pull), are
        appended by whole columns, checked with a bitmap of near UIDs: no per-pair index."""
        parts = sorted((p for p in parts if p), key=lambda p: p._first_far())
        for p in parts:
            p._compact()
        if not parts:
            return 0
        cols = [(p._far, p._near) for p in parts]
        if self._appendable(cols):
            for p in parts:
                self._far.extend(p._far)
                self._near.extend(p._near)
                self._flags.extend(p._flags)
                self._max_near = max(self._max_near, max(p._near))
            self._index = None
            return sum(len(p._far) for p in parts)
        added = 0
        for p in parts:
            for far_uid, near_uid, flags in p.items():
                if far_uid not in self and self.far_of_near(near_uid) is None:
                    self.add(far_uid, near_uid, flags)
                    added += 1
        return added

    # -- internals -------------------------------------------------------------------

    def _first_far(self) -> int:
        return min(self._far[0] if self._far else MAX_UID + 1, min(self._extra, default=MAX_UID + 1))

    def _appendable(self, cols: list[tuple[array[int], array[int]]]) -> bool:
        """Whether these columns (in order) can follow the table's own as they are: far UIDs
        ascending past the table's, near UIDs above the table's and all distinct."""
        last = max(self._far[-1] if self._far else 0, max(self._extra, default=0))
        for far, _near in cols:
            if far[0] <= last or not _ascending(far):
                return False
            last = far[-1]
        floor = self._max_near
        count = sum(len(near) for _far, near in cols)
        top = max(max(near) for _far, near in cols)
        if min(min(near) for _far, near in cols) <= floor:
            return False
        if top - floor > 64 * count + 65536:  # sparse: a set is smaller than a bitmap
            seen_set: set[int] = set()
            for _far, near in cols:
                seen_set.update(near)
            return len(seen_set) == count
        seen = bytearray((top - floor) // 8 + 1)
        for _far, near in cols:
            for n in near:
                k = n - floor
                bit = 1 << (k & 7)
                if seen[k >> 3] & bit:
                    return False
                seen[k >> 3] |= bit
        return True

    def _pos(self, far_uid: int) -> int:
        """Position of a paired ``far_uid`` in the columns, or -1."""
        far = self._far
        i = bisect_left(far, far_uid)
        if i == len(far) or far[i] != far_uid or far_uid in self._gone:
            return -1
        return i

    def _near_index(self) -> _NearIndex:
        if self._index is None:
            near = self._near
            if _ascending(near):
                self._index = _NearIndex(array(UID_CODE, near), None)
            else:
                order = sorted(range(len(near)), key=near.__getitem__)
                by_near = array(UID_CODE, map(near.__getitem__, order))
                if not self._gone and not _ascending(by_near):
                    raise ValueError("the pair table repeats a near UID")
                self._index = _NearIndex(by_near, array(UID_CODE, order))
            for far_uid, v in self._extra.items():
                self._index.late[v >> 8] = far_uid
        return self._index

    def _compact(self) -> None:
        """Fold the overlay and the removals into the columns (ascending far UID again)."""
        if not (self._gone or self._extra):
            return
        gone, extra = self._gone, sorted(self._extra.items())
        far, near, flags = array(UID_CODE), array(UID_CODE), array(FLAGS_CODE)
        k = 0
        for f, n, fl in zip(self._far, self._near, self._flags, strict=True):
            while k < len(extra) and extra[k][0] < f:
                far.append(extra[k][0])
                near.append(extra[k][1] >> 8)
                flags.append(extra[k][1] & MAX_FLAGS)
                k += 1
            if f not in gone:
                far.append(f)
                near.append(n)
                flags.append(fl)
        for f, v in extra[k:]:
            far.append(f)
            near.append(v >> 8)
            flags.append(v & MAX_FLAGS)
        self._far, self._near, self._flags = far, near, flags
        self._gone, self._extra, self._index = set(), {}, None

    def _sort_columns(self) -> None:
        order = sorted(range(len(self._far)), key=self._far.__getitem__)
        self._far = array(UID_CODE, map(self._far.__getitem__, order))
        self._near = array(UID_CODE, map(self._near.__getitem__, order))
        self._flags = array(FLAGS_CODE, map(self._flags.__getitem__, order))
