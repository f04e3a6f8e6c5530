"""Properties of the pure planner, checked on an in-memory model of two mailboxes."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from fastsync.model import ALL_FLAGS, SEEN
from fastsync.plan import Plan, PlanOptions, merge_flags, plan


@dataclass
class Box:
    """One side: UID -> (content, flags)."""

    msgs: dict[int, tuple[str, int]] = field(default_factory=dict)
    uidnext: int = 1

    def add(self, content: str, flags: int) -> int:
        uid = self.uidnext
        self.uidnext += 1
        self.msgs[uid] = (content, flags)
        return uid

    def flags(self) -> dict[int, int]:
        return {u: f for u, (_, f) in self.msgs.items()}

    def keys(self) -> dict[int, bytes]:
        return {u: c.encode() for u, (c, _) in self.msgs.items()}

    def contents(self) -> list[tuple[str, int]]:
        return sorted(self.msgs.values())


class Pairs:
    def __init__(self) -> None:
        self.d: dict[int, tuple[int, int]] = {}

    def items(self) -> list[tuple[int, int, int]]:
        return [(f, n, fl) for f, (n, fl) in sorted(self.d.items())]

    def __contains__(self, far_uid: object) -> bool:
        return far_uid in self.d

    def far_of_near(self, near_uid: int) -> int | None:
        return next((f for f, (n, _fl) in self.d.items() if n == near_uid), None)


@dataclass
class State:
    far_max_uid: int = 0
    near_max_uid: int = 0
    retry_far: set[int] = field(default_factory=set)
    retry_near: set[int] = field(default_factory=set)
    pairs: Pairs = field(default_factory=Pairs)


def apply(p: Plan, far: Box, near: Box, state: State) -> None:
    """What the engine does with a plan, on the model (and what it records in the state)."""
    assert p.guard is None
    for fu in p.copy_to_near:
        content, flags = far.msgs[fu]
        nu = near.add(content, flags)
        state.pairs.d[fu] = (nu, flags)
    for nu in p.copy_to_far:
        content, flags = near.msgs[nu]
        fu = far.add(content, flags)
        state.pairs.d[fu] = (nu, flags)
        state.far_max_uid = max(state.far_max_uid, fu)
    for box, changes in ((far, p.flags_far), (near, p.flags_near)):
        for ch in changes:
            for u in ch.uids:
                c, f = box.msgs[u]
                box.msgs[u] = (c, (f | ch.add) & ~ch.remove)
    for u in p.delete_far:
        del far.msgs[u]
    for u in p.delete_near:
        del near.msgs[u]
    for fu, nu, fl in p.paired:
        state.pairs.d[fu] = (nu, fl)
    for fu in p.unpaired:
        del state.pairs.d[fu]
    for fu, fl in p.synced_flags:
        nu, _ = state.pairs.d[fu]
        state.pairs.d[fu] = (nu, fl)
    state.far_max_uid = max(state.far_max_uid, p.far_max_uid, far.uidnext - 1)
    state.near_max_uid = max(state.near_max_uid, p.near_max_uid, near.uidnext - 1)


DEFAULT = PlanOptions()


def sync(far: Box, near: Box, state: State | None, opts: PlanOptions = DEFAULT) -> tuple[Plan, State]:
    p = plan(state, far.flags(), near.flags(), opts, far.keys(), near.keys())
    st_ = state if state is not None else State()
    apply(p, far, near, st_)
    return p, st_


contents = st.lists(st.text(alphabet="abcdefgh", min_size=1, max_size=4), max_size=12, unique=True)
flag_values = st.integers(min_value=0, max_value=ALL_FLAGS)


def boxes_from(far_items: list[tuple[str, int]], near_items: list[tuple[str, int]]) -> tuple[Box, Box]:
    far, near = Box(), Box()
    for c, f in far_items:
        far.add(c, f)
    for c, f in near_items:
        near.add(c, f)
    return far, near


sides = st.lists(st.tuples(st.text(alphabet="abcdefgh", min_size=1, max_size=4), flag_values), max_size=12)


@given(sides, sides)
def test_without_state_nothing_is_deleted_and_both_sides_get_the_union(far_items, near_items):
    far, near = boxes_from(far_items, near_items)
    before = {c for c, _ in far_items} | {c for c, _ in near_items}
    p, _ = sync(far, near, None)
    assert not p.delete_far and not p.delete_near
    assert {c for c, _ in far.contents()} == before == {c for c, _ in near.contents()}


@given(sides, sides)
def test_second_run_with_no_changes_plans_nothing(far_items, near_items):
    far, near = boxes_from(far_items, near_items)
    _, state = sync(far, near, None)
    p2, _ = sync(far, near, state)
    assert p2.is_empty(), p2


@given(contents, st.data())
def test_lost_state_re_pairs_by_content_without_copies(items, data):
    flags = [data.draw(flag_values) for _ in items]
    far, near = boxes_from(list(zip(items, flags, strict=True)), [])
    sync(far, near, None)
    # the state is lost: the same messages on both sides must be paired, not copied again
    p = plan(None, far.flags(), near.flags(), PlanOptions(), far.keys(), near.keys())
    assert p.copy_to_far == [] and p.copy_to_near == []
    assert len(p.paired) == len(items)
    assert not p.delete_far and not p.delete_near


@st.composite
def edits(draw, box: Box):
    """Random user actions on one side: new messages, flag changes, deletions."""
    ops = []
    for uid in sorted(box.msgs):
        what = draw(st.sampled_from(["keep", "keep", "flag", "delete"]))
        if what == "flag":
            ops.append(("flag", uid, draw(flag_values)))
        elif what == "delete":
            ops.append(("delete", uid, 0))
    for c in draw(st.lists(st.text(alphabet="xyz", min_size=1, max_size=3), max_size=4)):
        ops.append(("add", c, draw(flag_values)))
    return ops


def do_edits(box: Box, ops) -> None:
    for op, arg, fl in ops:
        if op == "flag":
            box.msgs[arg] = (box.msgs[arg][0], fl)
        elif op == "delete":
            del box.msgs[arg]
        else:
            box.add(arg, fl)


@settings(max_examples=200)
@given(sides, st.data())
def test_edits_on_both_sides_converge_and_a_third_run_changes_nothing(far_items, data):
    far, near = boxes_from(far_items, [])
    _, state = sync(far, near, None)
    paired = state.pairs.items()  # (far UID, near UID, flags) after the first sync
    far_ops = data.draw(edits(far))
    near_ops = data.draw(edits(near))
    do_edits(far, far_ops)
    do_edits(near, near_ops)
    _, state = sync(far, near, state, PlanOptions(force_deletes=True))
    assert far.contents() == near.contents()
    # every message added on either side survives
    added = [c for op, c, _ in far_ops + near_ops if op == "add"]
    for c in added:
        assert c in {x for x, _ in far.contents()}
    # a message that one side deleted is gone from both; one neither side deleted is on both
    gone_far = {uid for op, uid, _ in far_ops if op == "delete"}
    gone_near = {uid for op, uid, _ in near_ops if op == "delete"}
    for fu, nu, _fl in paired:
        deleted = fu in gone_far or nu in gone_near
        assert (fu in far.msgs, nu in near.msgs) == ((False, False) if deleted else (True, True)), (fu, nu)
    p3, _ = sync(far, near, state)
    assert p3.is_empty(), p3


def test_flag_change_on_one_side_wins_and_concurrent_changes_merge_per_bit():
    assert merge_flags(0, SEEN, 0) == SEEN
    assert merge_flags(SEEN, SEEN, 0) == 0
    assert merge_flags(0, SEEN, 2) == SEEN | 2


def test_deletion_guard_stops_emptying_a_full_folder():
    far, near = boxes_from([(str(i), 0) for i in range(40)], [])
    _, state = sync(far, near, None)
    near.msgs.clear()  # e.g. a wrong localfolders path: the near folder looks empty
    p = plan(state, far.flags(), near.flags(), PlanOptions())
    assert p.guard is not None and "40" in p.guard
    forced = plan(state, far.flags(), near.flags(), PlanOptions(force_deletes=True))
    assert forced.guard is None and len(forced.delete_far) == 40


def test_small_deletions_pass_the_guard():
    far, near = boxes_from([(str(i), 0) for i in range(4)], [])
    _, state = sync(far, near, None)
    near.msgs.clear()
    p = plan(state, far.flags(), near.flags(), PlanOptions())
    assert p.guard is None and len(p.delete_far) == 4


def test_read_only_far_is_never_written_and_local_flag_change_is_not_undone():
    far, near = boxes_from([("a", 0), ("b", 0)], [])
    opts = PlanOptions(write_far=False)
    _, state = sync(far, near, None, opts)
    nu = next(iter(near.msgs))
    near.msgs[nu] = (near.msgs[nu][0], SEEN)
    near.add("local", 0)
    p, state = sync(far, near, state, opts)
    assert not p.flags_far and not p.copy_to_far and not p.delete_far
    p2, _ = sync(far, near, state, opts)
    assert near.msgs[nu][1] == SEEN and not p2.flags_near


def test_sync_deletes_off_keeps_the_other_copy():
    far, near = boxes_from([("a", 0), ("b", 0)], [])
    _, state = sync(far, near, None)
    del far.msgs[1]
    opts = PlanOptions(delete_to_near=False)
    p, state = sync(far, near, state, opts)
    assert not p.delete_near and len(near.msgs) == 2
    p2, _ = sync(far, near, state, opts)
    assert p2.is_empty() and not p2.copy_to_far  # the kept copy is not pushed back


def test_new_on_both_sides_after_crash_is_paired_not_duplicated():
    far, near = boxes_from([("a", 0)], [])
    _, state = sync(far, near, None)
    # a crash after storing the copy of far's new message "n" but before recording it
    far.add("n", SEEN)
    near.add("n", SEEN)
    p, _ = sync(far, near, state)
    assert p.copy_to_far == [] and p.copy_to_near == [] and len(p.paired) == 1


def test_retry_uids_below_the_max_are_copied_again():
    far, near = boxes_from([("a", 0), ("b", 0)], [])
    state = State(far_max_uid=2, retry_far={2})
    state.pairs.d[1] = (near.add("a", 0), 0)
    p = plan(state, far.flags(), near.flags(), PlanOptions())
    assert p.copy_to_near == [2]
