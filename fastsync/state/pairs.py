"""The table of paired messages of one folder pair: far UID <-> near UID, with synced flags.

Storage is one dict, far UID -> ``near << 8 | flags``, plus a near -> far index built only
when first needed. A table read from a snapshot keeps the snapshot's packed arrays and turns
them into the dict only when first used, with C-level array operations (no Python loop per
pair), so loading a folder that turns out to be unchanged costs no per-pair work at all.

On disk (see codec.py) the table is three little-endian blobs in ascending far UID: far
UIDs (u32), near UIDs (u32), flags (one byte each).
"""

from __future__ import annotations

import sys
from array import array
from collections.abc import Iterator

MAX_UID = 0xFFFFFFFF
MAX_FLAGS = 0xFF


def _typecode(size: int) -> str:
    for code in ("B", "H", "I", "L", "Q"):
        if array(code).itemsize == size:
            return code
    raise ImportError(f"no {size}-byte unsigned array type on this platform")  # pragma: no cover


_U32 = _typecode(4)
_U64 = _typecode(8)
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


def _near_of_packed(packed: bytes) -> bytes:
    """The near UIDs (u32 LE) of little-endian ``near << 8 | flags`` u64 values."""
    near = bytearray(len(packed) // 2)
    for i in range(4):
        near[i::4] = packed[1 + i :: 8]
    return bytes(near)


def _check_uid(what: str, uid: int) -> None:
    if not 0 < uid <= MAX_UID:
        raise ValueError(f"{what} UID {uid} is outside 1..{MAX_UID}")


class PairTable:
    """Paired messages.

    ``add``/``remove_far``/``set_flags`` refuse what would break the pairing (a UID paired
    twice, an unknown UID, a value out of range) with ValueError/KeyError, so a caller's bug
    shows at once instead of corrupting the state.
    """

    __slots__ = ("_index", "_last_far", "_map", "_ordered", "_pending")

    def __init__(self) -> None:
        self._map: dict[int, int] = {}  # far -> near << 8 | flags
        self._pending: tuple[bytes, bytes, bytes] | None = None  # blobs not yet in _map
        self._index: dict[int, int] | None = None  # near -> far, built on first use
        self._ordered = True  # _map's keys ascend
        self._last_far = 0

    # -- conversion ------------------------------------------------------------------

    @classmethod
    def from_blobs(cls, far: bytes, near: bytes, flags: bytes) -> PairTable:
        """A table of the snapshot blobs; ValueError if their lengths do not match.

        Duplicate or zero UIDs (which a snapshot written by PairTable cannot hold, and which
        its checksum would otherwise catch) raise ValueError when the table is first used.
        """
        if len(far) % 4 or len(far) != len(near) or len(far) // 4 != len(flags):
            raise ValueError(
                f"pair blobs do not match ({len(far)} bytes of far UIDs, "
                f"{len(near)} of near UIDs, {len(flags)} of flags)"
            )
        table = cls()
        if flags:
            table._pending = (bytes(far), bytes(near), bytes(flags))
        return table

    def to_blobs(self) -> tuple[bytes, bytes, bytes]:
        """(far UIDs, near UIDs, flags) as little-endian blobs, ascending far UID."""
        if self._pending is not None:
            return self._pending
        self._sort()
        packed = _to_le(array(_U64, self._map.values()))
        return _to_le(array(_U32, self._map.keys())), _near_of_packed(packed), packed[0::8]

    # -- queries ---------------------------------------------------------------------

    def __len__(self) -> int:
        if self._pending is not None:
            return len(self._pending[2])
        return len(self._map)

    def __contains__(self, far_uid: object) -> bool:
        return far_uid in self._pairs()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PairTable):
            return NotImplemented
        return self._pairs() == other._pairs()

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"<PairTable {len(self)} pairs>"

    def near_of(self, far_uid: int) -> int | None:
        v = self._pairs().get(far_uid)
        return None if v is None else v >> 8

    def flags_of(self, far_uid: int) -> int | None:
        v = self._pairs().get(far_uid)
        return None if v is None else v & MAX_FLAGS

    def far_of_near(self, near_uid: int) -> int | None:
        return self._near_index().get(near_uid)

    def items(self) -> Iterator[tuple[int, int, int]]:
        """(far, near, flags) in ascending far UID; do not change the table while iterating."""
        self._sort()
        return ((f, v >> 8, v & MAX_FLAGS) for f, v in self._map.items())

    # -- changes ---------------------------------------------------------------------

    def add(self, far_uid: int, near_uid: int, flags: int) -> None:
        """Pair two messages. ValueError if either UID is already paired or out of range."""
        _check_uid("far", far_uid)
        _check_uid("near", near_uid)
        if not 0 <= flags <= MAX_FLAGS:
            raise ValueError(f"flags {flags} of far UID {far_uid} do not fit in a byte")
        pairs = self._pairs()
        if far_uid in pairs:
            raise ValueError(f"far UID {far_uid} is already paired (with near UID {pairs[far_uid] >> 8})")
        index = self._near_index()
        if near_uid in index:
            raise ValueError(f"near UID {near_uid} is already paired (with far UID {index[near_uid]})")
        pairs[far_uid] = near_uid << 8 | flags
        index[near_uid] = far_uid
        if far_uid > self._last_far:
            self._last_far = far_uid
        else:
            self._ordered = False

    def remove_far(self, far_uid: int) -> None:
        """Drop a pair; KeyError if ``far_uid`` is not paired."""
        v = self._pairs().pop(far_uid)
        if self._index is not None:
            del self._index[v >> 8]

    def set_flags(self, far_uid: int, flags: int) -> None:
        """Record new synced flags; KeyError if ``far_uid`` is not paired."""
        pairs = self._pairs()
        v = pairs[far_uid]
        if not 0 <= flags <= MAX_FLAGS:
            raise ValueError(f"flags {flags} of far UID {far_uid} do not fit in a byte")
        pairs[far_uid] = v & ~MAX_FLAGS | flags  # an existing key keeps its place (and order)

    # -- internals -------------------------------------------------------------------

    def _pairs(self) -> dict[int, int]:
        if self._pending is not None:
            self._materialise(*self._pending)
        return self._map

    def _materialise(self, far_le: bytes, near_le: bytes, flags: bytes) -> None:
        n = len(flags)
        packed = bytearray(8 * n)  # little-endian u64: flags, near (4 bytes), zeros
        packed[0::8] = flags
        for i in range(4):
            packed[1 + i :: 8] = near_le[i::4]
        far = _from_le(_U32, far_le)
        pairs = dict(zip(far, _from_le(_U64, bytes(packed)), strict=True))
        if len(pairs) != n or 0 in pairs:
            raise ValueError("the pair table repeats a far UID or holds UID 0")
        far_list = far.tolist()
        self._ordered = far_list == sorted(far_list)
        self._last_far = max(far_list)
        self._map, self._pending = pairs, None

    def _near_index(self) -> dict[int, int]:
        if self._index is None:
            pairs = self._pairs()
            near = _from_le(_U32, _near_of_packed(_to_le(array(_U64, pairs.values()))))
            index = dict(zip(near, pairs.keys(), strict=True))
            if len(index) != len(pairs) or 0 in index:
                raise ValueError("the pair table repeats a near UID or holds UID 0")
            self._index = index
        return self._index

    def _sort(self) -> None:
        pairs = self._pairs()
        if not self._ordered:
            self._map = {k: pairs[k] for k in sorted(pairs)}
            self._ordered = True
