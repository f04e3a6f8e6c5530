"""The columnar pair table behaves as the dictionary it replaces, under any sequence of
changes: appends, pairs below the top (overlay), removals, re-pairing freed UIDs, snapshot
round trips, and merges of part tables."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsync.model import Side
from fastsync.state import PairTable

uids = st.integers(1, 60)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("add"), uids, uids, st.integers(0, 255)),
        st.tuples(st.just("remove"), uids, st.just(0), st.just(0)),
        st.tuples(st.just("flags"), uids, st.just(0), st.integers(0, 255)),
        st.tuples(st.just("reload"), st.just(0), st.just(0), st.just(0)),
        st.tuples(st.just("walk"), st.just(0), st.just(0), st.just(0)),
        st.tuples(st.just("lookup"), uids, uids, st.just(0)),
    ),
    max_size=80,
)


def _check(table: PairTable, model: dict[int, tuple[int, int]]) -> None:
    assert len(table) == len(model)
    assert list(table.items()) == [(f, n, fl) for f, (n, fl) in sorted(model.items())]
    by_near = {n: f for f, (n, _fl) in model.items()}
    for u in range(0, 62):
        assert table.near_of(u) == (model[u][0] if u in model else None)
        assert table.flags_of(u) == (model[u][1] if u in model else None)
        assert table.far_of_near(u) == by_near.get(u)
        assert (u in table) == (u in model)
    assert table.flags_by(Side.FAR) == {f: fl for f, (_n, fl) in model.items()}
    assert table.flags_by(Side.NEAR) == {n: fl for _f, (n, fl) in model.items()}


@settings(max_examples=400, deadline=None)
@given(ops)
def test_columns_answer_as_a_dict_under_any_changes(steps: list[tuple[str, int, int, int]]) -> None:
    table = PairTable()
    model: dict[int, tuple[int, int]] = {}
    for op, a, b, c in steps:
        if op == "add":
            clash = a in model or any(n == b for n, _ in model.values())
            if clash:
                with pytest.raises(ValueError, match="already paired"):
                    table.add(a, b, c)
            else:
                table.add(a, b, c)
                model[a] = (b, c)
        elif op == "remove":
            if a in model:
                table.remove_far(a)
                del model[a]
            else:
                with pytest.raises(KeyError):
                    table.remove_far(a)
        elif op == "flags":
            if a in model:
                table.set_flags(a, c)
                model[a] = (model[a][0], c)
            else:
                with pytest.raises(KeyError):
                    table.set_flags(a, c)
        elif op == "reload":
            table = PairTable.from_blobs(*table.to_blobs())
        elif op == "walk":
            _check(table, model)
        else:  # lookups in between build the near index early, so later adds go to its overlay
            assert table.far_of_near(b) == next((f for f, (n, _) in model.items() if n == b), None)
            assert table.near_of(a) == (model[a][0] if a in model else None)
    _check(table, model)


def _table(pairs: list[tuple[int, int, int]]) -> PairTable:
    t = PairTable()
    for f, n, fl in pairs:
        t.add(f, n, fl)
    return t


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.tuples(uids, uids, st.integers(0, 255)), max_size=20),
    st.lists(st.lists(st.tuples(st.integers(1, 200), st.integers(1, 200), st.integers(0, 255)), max_size=15),
             max_size=4),
)
def test_merge_adds_what_pairing_one_by_one_would(base, parts) -> None:
    def unique(pairs):
        out, fs, ns = [], set(), set()
        for f, n, fl in pairs:
            if f not in fs and n not in ns:
                out.append((f, n, fl))
                fs.add(f)
                ns.add(n)
        return out

    tables = [_table(unique(p)) for p in parts]
    table = _table(unique(base))
    want = _table(unique(base))
    expected = 0
    for part in sorted((t for t in tables if len(t)), key=lambda t: next(iter(t.items()))[0]):
        for f, n, fl in part.items():
            if f not in want and want.far_of_near(n) is None:
                want.add(f, n, fl)
                expected += 1
    assert table.merge(tables) == expected
    assert list(table.items()) == list(want.items())
    for f, n, _fl in want.items():
        assert table.far_of_near(n) == f


def test_merge_of_range_copies_appends_whole_columns_with_interleaved_near_uids() -> None:
    # two workers copied far 1-1000 and 1001-2000, taking near UIDs in turns of 100
    parts = [PairTable(), PairTable()]
    for f in range(1, 2001):
        k = (f - 1) // 1000
        turn = ((f - 1) % 1000) // 100
        parts[k].add(f, turn * 200 + k * 100 + (f - 1) % 100 + 1, f % 64)
    table = PairTable()
    assert table.merge(list(reversed(parts))) == 2000
    assert len(table) == 2000 and table.far_of_near(150) == 1050 and table.near_of(1050) == 150
    assert sorted(n for _f, n, _fl in table.items()) == list(range(1, 2001))


def test_snapshot_blobs_that_repeat_a_uid_are_refused() -> None:
    one = (1).to_bytes(4, "little")
    with pytest.raises(ValueError, match="repeats a far UID"):
        PairTable.from_blobs(one + one, one + (2).to_bytes(4, "little"), b"\0\0")
    table = PairTable.from_blobs(one + (2).to_bytes(4, "little"), (5).to_bytes(4, "little") * 2, b"\0\0")
    with pytest.raises(ValueError, match="repeats a near UID"):
        table.far_of_near(5)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(uids, uids), max_size=30), st.sets(uids, max_size=10), st.lists(uids, max_size=30))
def test_unpaired_near_is_what_far_of_near_does_not_find(pairs, removed, asked) -> None:
    table = PairTable()
    seen_far, seen_near = set(), set()
    for f, n in pairs:
        if f not in seen_far and n not in seen_near:
            table.add(f, n, 0)
            seen_far.add(f)
            seen_near.add(n)
    for f in removed & seen_far:
        table.remove_far(f)
    assert table.unpaired_near(asked) == [u for u in asked if table.far_of_near(u) is None]
