"""UID -> small integer maps kept as two compact arrays, in ascending UID order.

A folder listing of a million messages as a dict costs about 100 bytes per message (the
hash table, an int object per UID and per value); as ``array('I')`` of UIDs beside an
array of values it costs 5 bytes (flags) or 12 bytes (sizes) per message. Lookups bisect,
and the planner walks two such maps side by side (``Cursor``) instead of hashing.

Pure: no I/O. ``UidMap`` is a read-only ``Mapping[int, int]`` once built, so code written
for dicts keeps working; build one with ``UidMapBuilder`` (any order; duplicates: the last
value wins) or ``UidMap.of`` (from a mapping).
"""

from __future__ import annotations

from array import array
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator, Mapping
from itertools import pairwise

UID_CODE = "I"  # 4 bytes on every platform fastsync runs on (checked below)
FLAGS_CODE = "B"
SIZES_CODE = "Q"
if array(UID_CODE).itemsize != 4:  # pragma: no cover
    raise ImportError("array('I') is not 4 bytes on this platform")


class UidMap(Mapping[int, int]):
    """UIDs (ascending, unique) and one value each. Treat as immutable."""

    __slots__ = ("uids", "vals")

    def __init__(self, uids: array[int] | None = None, values: array[int] | None = None) -> None:
        self.uids: array[int] = uids if uids is not None else array(UID_CODE)
        self.vals: array[int] = values if values is not None else array(FLAGS_CODE)
        if len(self.uids) != len(self.vals):
            raise ValueError(f"{len(self.uids)} UIDs but {len(self.vals)} values")

    @classmethod
    def of(cls, items: Mapping[int, int], code: str = FLAGS_CODE) -> UidMap:
        """A UidMap of ``items`` (returned as it is when it is one already)."""
        if isinstance(items, UidMap):
            return items
        builder = UidMapBuilder(code)
        for uid, value in items.items():
            builder.add(uid, value)
        return builder.finish()

    def index(self, uid: int) -> int:
        """Position of ``uid`` in ``uids``, or -1."""
        i = bisect_left(self.uids, uid)
        return i if i < len(self.uids) and self.uids[i] == uid else -1

    def __getitem__(self, uid: int) -> int:
        i = self.index(uid)
        if i < 0:
            raise KeyError(uid)
        return self.vals[i]

    def get(self, uid: int, default: int | None = None) -> int | None:  # type: ignore[override]
        i = self.index(uid)
        return default if i < 0 else self.vals[i]

    def __contains__(self, uid: object) -> bool:
        return isinstance(uid, int) and self.index(uid) >= 0

    def __len__(self) -> int:
        return len(self.uids)

    def __iter__(self) -> Iterator[int]:
        return iter(self.uids)

    def items_sorted(self) -> Iterator[tuple[int, int]]:
        return zip(self.uids, self.vals, strict=True)

    def max_uid(self) -> int:
        return self.uids[-1] if self.uids else 0

    def uids_above(self, uid: int) -> array[int]:
        """The UIDs greater than ``uid``, ascending (a copy of that tail of the array)."""
        return self.uids[bisect_right(self.uids, uid) :]

    def __repr__(self) -> str:
        return f"<UidMap {len(self)} UIDs>"


class UidMapBuilder:
    """Collects (uid, value) pairs in any order; ``finish`` sorts only when they were not."""

    __slots__ = ("_ordered", "_uids", "_values")

    def __init__(self, code: str = FLAGS_CODE) -> None:
        self._uids = array(UID_CODE)
        self._values = array(code)
        self._ordered = True

    def add(self, uid: int, value: int) -> None:
        if self._uids and uid <= self._uids[-1]:
            self._ordered = False
        self._uids.append(uid)
        self._values.append(value)

    def finish(self) -> UidMap:
        if self._ordered:
            return UidMap(self._uids, self._values)
        # Rare (servers answer FETCH in UID order): sort positions by UID; the last of equal UIDs wins.
        order = sorted(range(len(self._uids)), key=self._uids.__getitem__)
        uids, values = array(UID_CODE), array(self._values.typecode)
        for i in order:
            if uids and uids[-1] == self._uids[i]:
                values[-1] = self._values[i]
            else:
                uids.append(self._uids[i])
                values.append(self._values[i])
        return UidMap(uids, values)


def uid_array(uids: Iterable[int]) -> array[int]:
    """Sorted, unique UIDs as a compact array."""
    out = array(UID_CODE, uids)
    if any(a >= b for a, b in pairwise(out)):
        out = array(UID_CODE, sorted(set(out)))
    return out


class Cursor:
    """Finds UIDs in a UidMap when asked mostly in ascending order: each step moves forward
    from the last position found (amortised O(1)); a UID below the last one asked bisects."""

    __slots__ = ("_last", "_map", "_pos")

    def __init__(self, m: UidMap) -> None:
        self._map = m
        self._pos = 0
        self._last = -1

    def find(self, uid: int) -> int | None:
        """The value of ``uid``, or None when it is not in the map."""
        uids = self._map.uids
        if uid < self._last:
            self._pos = bisect_left(uids, uid)
        else:
            pos, n = self._pos, len(uids)
            # a short linear step covers the common case (the next UID); a jump bisects
            if pos + 8 < n and uids[pos + 8] < uid:
                pos = bisect_left(uids, uid, pos + 8)
            else:
                while pos < n and uids[pos] < uid:
                    pos += 1
            self._pos = pos
        self._last = uid
        pos = self._pos
        if pos < len(uids) and uids[pos] == uid:
            return self._map.vals[pos]
        return None
