"""The sync planner: state + both listings in, actions out. Pure: no sockets, no files.

Both sides address messages by integer UIDs. The state remembers, per folder pair, which far
UID and near UID hold the same message and which flags both had when last synced, plus the
highest UID of each side already considered (anything above is new).

Safety rules enforced here:
- No state (first sync, lost or corrupt state, UIDVALIDITY change): the union of both sides;
  never a deletion. Messages on both sides are paired by content key, not copied twice.
- New messages on both sides at once (e.g. after a crash between storing a copy and
  recording it) are paired by content key before anything is copied.
- Deletions are planned only for messages that were paired and have vanished from one side,
  only towards a side that accepts deletions, and a run that would delete more than the
  allowed share of a folder plans none and reports why.
- A read-only side is never written, and a change it could not receive is not recorded as
  synced, so it is not undone on the next run.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from itertools import compress
from operator import ne
from typing import Protocol

import msgspec

from fastsync.model import Side
from fastsync.uidmap import Cursor, UidMap


class PairSource(Protocol):
    """What the planner reads of the state (fastsync.state.FolderState satisfies it)."""

    far_max_uid: int
    near_max_uid: int
    retry_far: set[int]
    retry_near: set[int]

    @property
    def pairs(self) -> PairItems: ...


class PairItems(Protocol):
    def items(self) -> Iterable[tuple[int, int, int]]: ...

    def __contains__(self, far_uid: object) -> bool: ...

    def far_of_near(self, near_uid: int) -> int | None: ...


class PlanOptions(msgspec.Struct, frozen=True):
    write_far: bool = True
    write_near: bool = True
    delete_to_far: bool = True  # deletions seen on near are applied to far
    delete_to_near: bool = True  # deletions seen on far are applied to near
    max_delete_percent: int = 50
    guard_floor: int = 5  # deleting this many or fewer never trips the guard
    force_deletes: bool = False


class FlagChange(msgspec.Struct, array_like=True):
    add: int
    remove: int
    uids: list[int]


class Plan(msgspec.Struct):
    copy_to_near: list[int] = msgspec.field(default_factory=list)  # far UIDs
    copy_to_far: list[int] = msgspec.field(default_factory=list)  # near UIDs
    flags_far: list[FlagChange] = msgspec.field(default_factory=list)
    flags_near: list[FlagChange] = msgspec.field(default_factory=list)
    delete_far: list[int] = msgspec.field(default_factory=list)  # far UIDs
    delete_near: list[int] = msgspec.field(default_factory=list)  # near UIDs
    paired: list[tuple[int, int, int]] = msgspec.field(default_factory=list)  # by content: (far, near, flags)
    unpaired: list[int] = msgspec.field(default_factory=list)  # far UIDs of pairs to forget
    synced_flags: list[tuple[int, int]] = msgspec.field(default_factory=list)  # (far UID, flags) to record
    far_max_uid: int = 0
    near_max_uid: int = 0
    guard: str | None = None  # why deletions were refused, when they were

    def is_empty(self) -> bool:
        return not (
            self.copy_to_near
            or self.copy_to_far
            or self.flags_far
            or self.flags_near
            or self.delete_far
            or self.delete_near
            or self.paired
            or self.unpaired
            or self.synced_flags
        )

    def counts(self) -> dict[str, int]:
        return {
            "to_near": len(self.copy_to_near),
            "to_far": len(self.copy_to_far),
            "flags_far": sum(len(c.uids) for c in self.flags_far),
            "flags_near": sum(len(c.uids) for c in self.flags_near),
            "del_far": len(self.delete_far),
            "del_near": len(self.delete_near),
        }


def merge_flags(old: int, far: int, near: int) -> int:
    """Three-way merge per flag bit: a bit changed on one side since ``old`` takes that side's value."""
    far_changed = far ^ old
    near_changed = near ^ old
    return (old & ~(far_changed | near_changed)) | (far & far_changed) | (near & near_changed)


def new_messages(
    state: PairSource | None, far: Mapping[int, int], near: Mapping[int, int]
) -> tuple[list[int], list[int]]:
    """UIDs of each side that are not paired and not yet considered (or due for a retry).

    Only the UIDs above each side's max (a tail of the sorted listing) and the retries are
    looked at: the cost follows what is new, not the size of the folder."""
    fm, nm = UidMap.of(far), UidMap.of(near)
    if state is None:
        return fm.uids.tolist(), nm.uids.tolist()
    pairs = state.pairs  # asked directly: no copy of a table that may hold millions
    new_far = [u for u in _candidates(fm, state.far_max_uid, state.retry_far) if u not in pairs]
    near_cands = _candidates(nm, state.near_max_uid, state.retry_near)
    unpaired_near = getattr(pairs, "unpaired_near", None)  # PairTable asks all at once
    if unpaired_near is not None:
        new_near: list[int] = unpaired_near(near_cands)
    else:
        new_near = [u for u in near_cands if pairs.far_of_near(u) is None]
    return new_far, new_near


def _candidates(listing: UidMap, max_uid: int, retry: set[int]) -> Iterable[int]:
    """Listed UIDs above ``max_uid`` or in ``retry``, ascending (a compact array: after a
    range copy every UID is above the max still, and most are paired)."""
    above = listing.uids_above(max_uid)
    due = [u for u in retry if u <= max_uid and u in listing]
    if due:
        return sorted(set(above).union(due))
    return above


class _Flagger:
    """Collects flag changes per side, grouped by identical (add, remove) sets."""

    def __init__(self, opts: PlanOptions) -> None:
        self.opts = opts
        self.far: dict[tuple[int, int], list[int]] = defaultdict(list)
        self.near: dict[tuple[int, int], list[int]] = defaultdict(list)

    def settle(self, fu: int, nu: int, old: int, f: int, n: int) -> int:
        """Plan the writes that bring both sides to the merged flags; return what to record."""
        new = merge_flags(old, f, n)
        blocked = 0
        if new != f:
            if self.opts.write_far:
                self.far[(new & ~f, f & ~new)].append(fu)
            else:
                blocked |= new ^ f
        if new != n:
            if self.opts.write_near:
                self.near[(new & ~n, n & ~new)].append(nu)
            else:
                blocked |= new ^ n
        # A change the read-only side could not take is not recorded as synced, so the next
        # run sees it as still pending instead of as a change to undo on the other side.
        return (new & ~blocked) | (old & blocked)

    @staticmethod
    def grouped(changes: dict[tuple[int, int], list[int]]) -> list[FlagChange]:
        return [FlagChange(add, rem, sorted(uids)) for (add, rem), uids in sorted(changes.items())]


def plan(
    state: PairSource | None,
    far: Mapping[int, int],
    near: Mapping[int, int],
    opts: PlanOptions,
    far_keys: Mapping[int, bytes] | None = None,
    near_keys: Mapping[int, bytes] | None = None,
    far_loose: Mapping[int, bytes] | None = None,
    near_loose: Mapping[int, bytes] | None = None,
) -> Plan:
    """Plan one folder pair.

    ``far``/``near`` map every UID now in the folder to its flags. ``far_keys``/``near_keys``
    give content keys for new messages; when both sides have new messages, the caller should
    pass keys for them so that the same message is paired instead of copied both ways.
    ``far_loose``/``near_loose`` are second keys (model.loose_key), tried on what the content
    keys left unpaired: a message a server rewrote in place is paired, not copied again.
    ``state`` None means no usable state: nothing is deleted.
    """
    out = Plan()
    flagger = _Flagger(opts)
    fm, nm = UidMap.of(far), UidMap.of(near)  # dicts (tests, small callers) become sorted maps
    if state is not None:
        _plan_pairs(state, fm, nm, opts, flagger, out)
    new_far, new_near = new_messages(state, fm, nm)
    if new_far and new_near and far_keys and near_keys:
        new_far, new_near = _pair_by_content(new_far, new_near, fm, nm, far_keys, near_keys, flagger, out)
    if new_far and new_near and far_loose and near_loose:
        new_far, new_near = _pair_by_content(new_far, new_near, fm, nm, far_loose, near_loose, flagger, out)
    if opts.write_near:
        out.copy_to_near = new_far
    if opts.write_far:
        out.copy_to_far = new_near
    out.flags_far = _Flagger.grouped(flagger.far)
    out.flags_near = _Flagger.grouped(flagger.near)
    base_far = state.far_max_uid if state else 0
    base_near = state.near_max_uid if state else 0
    out.far_max_uid = max(base_far, fm.max_uid())
    out.near_max_uid = max(base_near, nm.max_uid())
    _apply_guard(out, fm, nm, opts)
    return out


def _plan_pairs(
    state: PairSource,
    far: UidMap,
    near: UidMap,
    opts: PlanOptions,
    flagger: _Flagger,
    out: Plan,
) -> None:
    """One merge walk: pairs in ascending far UID beside both sorted listings. The far
    cursor only moves forward; the near one does too while near UIDs ascend with far ones
    (the usual case: both sides numbered in arrival order), else it bisects."""
    if _plan_aligned(state.pairs, far, near, flagger, out):
        return
    far_at, near_at = Cursor(far).find, Cursor(near).find
    for fu, nu, old in state.pairs.items():
        f = far_at(fu)
        n = near_at(nu)
        if f is None and n is None:
            out.unpaired.append(fu)
        elif f is None:
            if opts.delete_to_near and opts.write_near:
                out.delete_near.append(nu)
            out.unpaired.append(fu)
        elif n is None:
            if opts.delete_to_far and opts.write_far:
                out.delete_far.append(fu)
            out.unpaired.append(fu)
        elif f != old or n != old:
            recorded = flagger.settle(fu, nu, old, f, n)
            if recorded != old:
                out.synced_flags.append((fu, recorded))


def _plan_aligned(pairs: PairItems, far: UidMap, near: UidMap, flagger: _Flagger, out: Plan) -> bool:
    """The common case at C speed: every pair still on both sides, at the same positions of
    both listings (nothing expunged; new messages only after them). Then only the positions
    whose flags differ from the recorded ones are visited. False when the case does not apply."""
    columns = getattr(pairs, "columns", None)
    if columns is None:
        return False
    pf, pn, pfl = columns()
    k = len(pf)
    if far.uids[:k] != pf or near.uids[:k] != pn:
        return False
    fv, nv = far.vals[:k], near.vals[:k]
    if fv == pfl and nv == pfl:
        return True
    moved = set(compress(range(k), map(ne, fv, pfl)))
    moved.update(compress(range(k), map(ne, nv, pfl)))
    for i in sorted(moved):
        old = pfl[i]
        recorded = flagger.settle(pf[i], pn[i], old, fv[i], nv[i])
        if recorded != old:
            out.synced_flags.append((pf[i], recorded))
    return True


def _pair_by_content(
    new_far: list[int],
    new_near: list[int],
    far: UidMap,
    near: UidMap,
    far_keys: Mapping[int, bytes],
    near_keys: Mapping[int, bytes],
    flagger: _Flagger,
    out: Plan,
) -> tuple[list[int], list[int]]:
    """Pair new messages with equal content keys one to one; return what stays unpaired."""
    waiting: dict[bytes, list[int]] = defaultdict(list)
    for nu in reversed(new_near):  # reversed + pop() pairs in ascending UID order
        key = near_keys.get(nu)
        if key is not None:
            waiting[key].append(nu)
    matched_near: set[int] = set()
    rest_far: list[int] = []
    for fu in new_far:
        key = far_keys.get(fu)
        bucket = waiting.get(key) if key is not None else None
        if not bucket:
            rest_far.append(fu)
            continue
        nu = bucket.pop()
        matched_near.add(nu)
        f, n = far[fu], near[nu]
        out.paired.append((fu, nu, flagger.settle(fu, nu, f & n, f, n)))
    return rest_far, [nu for nu in new_near if nu not in matched_near]


def _apply_guard(out: Plan, far: UidMap, near: UidMap, opts: PlanOptions) -> None:
    if opts.force_deletes:
        return
    for side, doomed, listing in ((Side.FAR, out.delete_far, far), (Side.NEAR, out.delete_near, near)):
        # doomed messages are still in this side's listing: the share is of what is there now
        if len(doomed) <= opts.guard_floor:
            continue
        if len(doomed) * 100 > opts.max_delete_percent * max(len(listing), 1):
            out.guard = (
                f"would delete {len(doomed)} of {len(listing)} messages on the {side.value} side "
                f"(more than {opts.max_delete_percent}%); nothing done for this folder "
                f"(use --force-deletes if this is intended)"
            )
            return
