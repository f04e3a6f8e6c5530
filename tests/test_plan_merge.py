"""The streaming merge: compact sorted listings (uidmap) walked beside the pair table give the
same plans as the dictionary algorithm they replace, and the compact maps behave as dicts."""

from __future__ import annotations

from collections import defaultdict

from hypothesis import given, settings
from hypothesis import strategies as st

from fastsync.engine import _flags_by_difference
from fastsync.model import Side
from fastsync.plan import FlagChange, Plan, PlanOptions, merge_flags, plan
from fastsync.state import FolderState, PairTable
from fastsync.state.codec import decode_snapshot, encode_snapshot
from fastsync.stores.base import Changes, uid_set
from fastsync.uidmap import SIZES_CODE, Cursor, UidMap, UidMapBuilder, uid_array

# -- the dictionary planner, as it was before the merge: the oracle ------------------------


def _oracle(state: FolderState | None, far: dict[int, int], near: dict[int, int], opts: PlanOptions) -> Plan:
    out = Plan()
    fl_far: dict[tuple[int, int], list[int]] = defaultdict(list)
    fl_near: dict[tuple[int, int], list[int]] = defaultdict(list)

    def settle(fu: int, nu: int, old: int, f: int, n: int) -> int:
        new = merge_flags(old, f, n)
        blocked = 0
        if new != f:
            if opts.write_far:
                fl_far[(new & ~f, f & ~new)].append(fu)
            else:
                blocked |= new ^ f
        if new != n:
            if opts.write_near:
                fl_near[(new & ~n, n & ~new)].append(nu)
            else:
                blocked |= new ^ n
        return (new & ~blocked) | (old & blocked)

    if state is not None:
        for fu, nu, old in sorted(state.pairs.items()):
            f, n = far.get(fu), near.get(nu)
            if f is None or n is None:
                if f is None and n is not None and opts.delete_to_near and opts.write_near:
                    out.delete_near.append(nu)
                if n is None and f is not None and opts.delete_to_far and opts.write_far:
                    out.delete_far.append(fu)
                out.unpaired.append(fu)
            else:
                rec = settle(fu, nu, old, f, n)
                if rec != old:
                    out.synced_flags.append((fu, rec))
        paired_near = {n for _f, n, _fl in state.pairs.items()}
        new_far = sorted(
            u for u in far if (u > state.far_max_uid or u in state.retry_far) and u not in state.pairs
        )
        new_near = sorted(
            u for u in near if (u > state.near_max_uid or u in state.retry_near) and u not in paired_near
        )
    else:
        new_far, new_near = sorted(far), sorted(near)
    out.copy_to_near = new_far if opts.write_near else []
    out.copy_to_far = new_near if opts.write_far else []
    out.flags_far = [FlagChange(a, r, sorted(u)) for (a, r), u in sorted(fl_far.items())]
    out.flags_near = [FlagChange(a, r, sorted(u)) for (a, r), u in sorted(fl_near.items())]
    out.far_max_uid = max(state.far_max_uid if state else 0, max(far, default=0))
    out.near_max_uid = max(state.near_max_uid if state else 0, max(near, default=0))
    for doomed, listing in ((out.delete_far, far), (out.delete_near, near)):
        share = len(doomed) * 100 > opts.max_delete_percent * max(len(listing), 1)
        if len(doomed) > opts.guard_floor and share:
            out.guard = "refused"
            break
    return out


# -- strategies ------------------------------------------------------------------------------

flags = st.integers(0, 63)


@st.composite
def folder(draw: st.DrawFn) -> tuple[FolderState | None, dict[int, int], dict[int, int]]:
    """A state (or none) and two listings: some pairs still on both sides (flags changed or
    not), some gone from one side or both, and new or retried messages on each side. Near
    UIDs of pairs are shuffled against far ones, so the near cursor must bisect as well."""
    n = draw(st.integers(0, 40))
    far_uids = sorted(draw(st.sets(st.integers(1, 300), min_size=n, max_size=n)))
    near_uids = draw(st.permutations(sorted(draw(st.sets(st.integers(1, 300), min_size=n, max_size=n)))))
    if draw(st.booleans()):
        near_uids = sorted(near_uids)  # the usual case: both sides numbered in arrival order
    table = PairTable()
    far: dict[int, int] = {}
    near: dict[int, int] = {}
    # often every pair is still on both sides (the planner's aligned fast path)
    fates = ["same", "changed"]
    if draw(st.booleans()):
        fates += ["far gone", "near gone", "both gone"]
    for fu, nu in zip(far_uids, near_uids, strict=True):
        old = draw(flags)
        table.add(fu, nu, old)
        fate = draw(st.sampled_from(fates))
        side = draw(st.sampled_from(["far", "near", "both"]))  # which side a change is on
        if fate in ("same", "changed", "near gone"):
            far[fu] = draw(flags) if fate == "changed" and side != "near" else old
        if fate in ("same", "changed", "far gone"):
            near[nu] = draw(flags) if fate == "changed" and side != "far" else old
    far_max = max(far_uids, default=0)
    near_max = max(near_uids, default=0)
    for side, base in ((far, far_max), (near, near_max)):
        for u in draw(st.sets(st.integers(base + 1, base + 30), max_size=8)):
            side[u] = draw(flags)
    retry_far = {u for u in draw(st.sets(st.integers(1, far_max + 1), max_size=3)) if u not in table}
    retry_near = draw(st.sets(st.integers(1, near_max + 1), max_size=3))
    for u in retry_far:
        far.setdefault(u, draw(flags))
    state = FolderState(
        far_max_uid=far_max, near_max_uid=near_max, retry_far=retry_far, retry_near=retry_near, pairs=table
    )
    return (None if draw(st.integers(0, 9)) == 0 else state), far, near


options = st.builds(
    PlanOptions,
    write_far=st.booleans(),
    write_near=st.booleans(),
    delete_to_far=st.booleans(),
    delete_to_near=st.booleans(),
    max_delete_percent=st.sampled_from([0, 10, 50, 100]),
)


def _compact(m: dict[int, int]) -> UidMap:
    b = UidMapBuilder()
    for u in sorted(m, reverse=True):  # built out of order on purpose: finish() must sort
        b.add(u, m[u])
    return b.finish()


@settings(max_examples=300, deadline=None)
@given(folder(), options)
def test_merge_plans_what_the_dictionary_planner_planned(case, opts: PlanOptions) -> None:
    state, far, near = case
    want = _oracle(state, far, near, opts)
    got = plan(state, _compact(far), _compact(near), opts)
    got_guard, got.guard = got.guard, None
    want_guard, want.guard = want.guard, None
    assert got == want
    assert (got_guard is None) == (want_guard is None)


@settings(max_examples=200, deadline=None)
@given(folder(), options)
def test_without_state_nothing_is_deleted_and_every_message_is_copied(case, opts: PlanOptions) -> None:
    _state, far, near = case
    p = plan(None, _compact(far), _compact(near), opts)
    assert not p.delete_far and not p.delete_near and not p.unpaired
    assert p.copy_to_near == (sorted(far) if opts.write_near else [])
    assert p.copy_to_far == (sorted(near) if opts.write_far else [])


@settings(max_examples=200, deadline=None)
@given(folder())
def test_snapshot_table_walked_in_its_blobs_plans_like_a_live_one(case) -> None:
    state, far, near = case
    if state is None:
        return
    loaded, _token = decode_snapshot(encode_snapshot(state, 1))  # pairs still in their blobs
    assert plan(loaded, far, near, PlanOptions()) == plan(state, far, near, PlanOptions())


# -- the compact maps ------------------------------------------------------------------------

pairs_lists = st.lists(st.tuples(st.integers(1, 2**32 - 1), st.integers(0, 255)), max_size=60)


@given(pairs_lists)
def test_builder_in_any_order_equals_a_dict_last_value_winning(items: list[tuple[int, int]]) -> None:
    b = UidMapBuilder()
    for u, v in items:
        b.add(u, v)
    m = b.finish()
    want = dict(items)
    assert m == want and list(m) == sorted(want) and len(m) == len(want)
    assert m.max_uid() == max(want, default=0)
    for u in [*want, 0, 2**32 - 1]:
        assert m.get(u) == want.get(u) and (u in m) == (u in want)


@given(pairs_lists, st.lists(st.integers(0, 2**32), max_size=80))
def test_cursor_finds_what_a_dict_lookup_finds_in_any_order(
    items: list[tuple[int, int]], asked: list[int]
) -> None:
    want = dict(items)
    m = UidMap.of(want)
    find = Cursor(m).find
    asked = sorted(asked)[: len(asked) // 2] + asked  # an ascending run, then any order
    for u in asked + sorted(want):
        assert find(u) == want.get(u)


def test_sizes_keep_values_beyond_a_byte() -> None:
    b = UidMapBuilder(SIZES_CODE)
    b.add(7, 5 << 30)
    assert b.finish()[7] == 5 << 30


@given(st.sets(st.integers(1, 10_000), max_size=50))
def test_uid_array_sorts_and_dedups(uids: set[int]) -> None:
    assert uid_array(sorted(uids, reverse=True) + list(uids)).tolist() == sorted(uids)


@given(st.integers(1, 500), st.integers(0, 40))
def test_uid_set_of_a_range_is_that_of_its_list(lo: int, n: int) -> None:
    r = range(lo, lo + n)
    assert uid_set(r) == uid_set(list(r))


# -- the pair table's flags by side, and the listing by difference --------------------------


@settings(max_examples=150, deadline=None)
@given(folder(), st.sampled_from([Side.FAR, Side.NEAR]), st.booleans())
def test_flags_by_side_is_the_table_keyed_by_that_side(case, side: Side, snapshot: bool) -> None:
    state, _far, _near = case
    if state is None:
        return
    if snapshot:
        state, _ = decode_snapshot(encode_snapshot(state, 1))
    col = 0 if side is Side.FAR else 1
    want = {t[col]: t[2] for t in state.pairs.items()}
    got = state.pairs.flags_by(side)
    assert got == want and list(got) == sorted(want)


@settings(max_examples=150, deadline=None)
@given(folder(), st.sampled_from([Side.FAR, Side.NEAR]), st.data())
def test_listing_by_difference_gives_recorded_flags_unless_changed(case, side: Side, data) -> None:
    state, _far, _near = case
    if state is None:
        return
    col = 0 if side is Side.FAR else 1
    recorded = {t[col]: t[2] for t in state.pairs.items()}
    if data.draw(st.booleans()):
        present = set(recorded)  # nothing came or went: the whole-copy path
    else:
        present = data.draw(st.sets(st.integers(1, 400), max_size=60))
    changed = data.draw(st.dictionaries(st.integers(1, 400), flags, max_size=10))
    got = _flags_by_difference(state, side, Changes(uids=uid_array(present), flags=changed, sizes={}))
    want = {u: changed.get(u, recorded.get(u, 0)) for u in present}
    assert got == want
