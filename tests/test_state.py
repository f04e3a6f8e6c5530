"""The state package: snapshot + journal files survive round trips and crashes, refuse
damage loudly, stay private on disk, and the account lock excludes a second process."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
import tempfile
import time
import zlib
from array import array
from pathlib import Path
from typing import Literal

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fastsync.errors import AccountError, FolderError
from fastsync.state import (
    AccountLock,
    FlagsSet,
    FolderState,
    Header,
    JournalRecord,
    LockedError,
    Paired,
    PairTable,
    Retry,
    StateCorrupt,
    StateFile,
    StateTooNew,
    Unpaired,
    apply_record,
    header_of,
    state_path,
)

REPO = Path(__file__).resolve().parents[1]
HEADER_FIELDS = Header.__struct_fields__
uids = st.integers(1, 2**32 - 1)
# Small UIDs too, so records often re-pair a UID unpaired a moment ago.
record_uids = st.integers(1, 12) | uids
header_ints = st.integers(0, 2**63 - 1)


@st.composite
def folder_states(draw: st.DrawFn) -> FolderState:
    n = draw(st.integers(0, 40))
    far = draw(st.lists(uids, min_size=n, max_size=n, unique=True))
    near = draw(st.lists(uids, min_size=n, max_size=n, unique=True))
    flags = draw(st.lists(st.integers(0, 255), min_size=n, max_size=n))
    state = FolderState(
        retry_far=draw(st.sets(uids, max_size=4)),
        retry_near=draw(st.sets(uids, max_size=4)),
    )
    apply_record(state, Header(*(draw(header_ints) for _ in HEADER_FIELDS)))
    for f, u, fl in zip(far, near, flags, strict=True):
        state.pairs.add(f, u, fl)
    return state


def draw_record(data: st.DataObject, state: FolderState) -> JournalRecord:
    """A record that applies to ``state``."""
    fars = [f for f, _, _ in state.pairs.items()]
    kinds = ["paired", "header", "retry"] + (["unpaired", "flags"] if fars else [])
    kind = data.draw(st.sampled_from(kinds))
    if kind == "paired":
        new_far = data.draw(
            st.lists(record_uids.filter(lambda u: u not in state.pairs), max_size=4, unique=True)
        )
        new_near = data.draw(
            st.lists(
                record_uids.filter(lambda u: state.pairs.far_of_near(u) is None),
                min_size=len(new_far),
                max_size=len(new_far),
                unique=True,
            )
        )
        flags = data.draw(st.lists(st.integers(0, 63), min_size=len(new_far), max_size=len(new_far)))
        return Paired(list(zip(new_far, new_near, flags, strict=True)))
    if kind == "unpaired":
        return Unpaired(data.draw(st.lists(st.sampled_from(fars), max_size=3, unique=True)))
    if kind == "flags":
        chosen = data.draw(st.lists(st.sampled_from(fars), max_size=3, unique=True))
        return FlagsSet([(f, data.draw(st.integers(0, 63))) for f in chosen])
    if kind == "header":
        return Header(*(data.draw(header_ints) for _ in HEADER_FIELDS))
    side: Literal["far", "near"] = data.draw(st.sampled_from(["far", "near"]))
    return Retry(side, data.draw(st.lists(record_uids, max_size=3)), data.draw(st.booleans()))


def state_with(pairs: list[tuple[int, int, int]], **header: int) -> FolderState:
    state = FolderState()
    for name, value in header.items():
        setattr(state, name, value)
    for f, n, fl in pairs:
        state.pairs.add(f, n, fl)
    return state


# -- round trips -----------------------------------------------------------------------


def test_missing_state_loads_as_none(tmp_path: Path) -> None:
    assert StateFile(tmp_path / "x.state").load() is None


@settings(max_examples=150, deadline=None)
@given(folder_states())
def test_committed_state_loads_equal(state: FolderState) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.state"
        StateFile(path, fsync=False).commit(state)
        loaded = StateFile(path, fsync=False).load()
        assert loaded == state
        assert loaded is not None
        assert list(loaded.pairs.items()) == sorted(state.pairs.items())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.lists(st.sampled_from(["go on", "commit", "restart"]), min_size=1, max_size=12))
def test_replayed_journal_equals_applying_records_directly(data: st.DataObject, steps: list[str]) -> None:
    """Records journalled (with commits and restarts in between) load as the live state."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "x.state"
        sf = StateFile(path, fsync=False)
        assert sf.load() is None
        live = FolderState()
        for step in steps:
            rec = draw_record(data, live)
            apply_record(live, rec)
            sf.journal(rec)
            if step == "commit":
                sf.commit(live)
            elif step == "restart":
                sf.close()
                sf = StateFile(path, fsync=False)
                assert sf.load() == live
        sf.close()
        assert StateFile(path, fsync=False).load() == live


def test_uids_up_to_2_pow_32_minus_1_and_all_flag_bytes_survive(tmp_path: Path) -> None:
    top = 2**32 - 1
    state = state_with([(top, 1, 255), (1, top, 0), (2**31, 2**31 + 1, 63)], far_modseq=2**63 - 1)
    sf = StateFile(tmp_path / "x.state")
    sf.commit(state)
    loaded = StateFile(tmp_path / "x.state").load()
    assert loaded == state
    assert loaded is not None
    assert loaded.pairs.far_of_near(top) == 1
    assert loaded.pairs.near_of(top) == 1 and loaded.pairs.flags_of(top) == 255
    assert list(loaded.pairs.items()) == [(1, top, 0), (2**31, 2**31 + 1, 63), (top, 1, 255)]


def test_snapshot_with_a_field_added_at_the_end_still_loads(tmp_path: Path) -> None:
    """Schema evolution: a newer minor writer appends fields; this reader ignores them."""
    path = tmp_path / "x.state"
    state = state_with([(5, 6, 7)], far_validity=9)
    StateFile(path).commit(state)
    raw = path.read_bytes()
    fields = msgspec.msgpack.decode(raw[9:])
    body = msgspec.msgpack.encode([*fields, "a future field", [1, 2]])
    path.write_bytes(raw[:5] + zlib.crc32(body).to_bytes(4, "little") + body)
    assert StateFile(path).load() == state


# -- journal crashes ---------------------------------------------------------------------


def _three_records(tmp_path: Path) -> tuple[Path, FolderState, int]:
    """A snapshot plus a journal of three records; the state after the first two, and the
    journal offset where the third begins."""
    path = tmp_path / "x.state"
    sf = StateFile(path)
    sf.commit(state_with([(1, 11, 0)], far_validity=7))
    state = sf.load()
    assert state is not None
    for rec in (Paired([(2, 12, 16)]), FlagsSet([(1, 2)])):
        apply_record(state, rec)
        sf.journal(rec)
    start = sf.journal_path.stat().st_size
    sf.journal(Paired([(3, 13, 4), (4, 14, 8)]))
    sf.close()
    return path, state, start


def test_torn_last_record_is_ignored_at_every_byte_offset(tmp_path: Path) -> None:
    path, expected, start = _three_records(tmp_path)
    journal = path.with_name(path.name + ".journal")
    full = journal.read_bytes()
    snapshot = path.read_bytes()
    for cut in range(start, len(full)):
        journal.write_bytes(full[:cut])
        path.write_bytes(snapshot)
        sf = StateFile(path, fsync=False)
        assert sf.load() == expected, f"cut at byte {cut}"
        # The torn tail is cut off, so a later append is not hidden behind garbage.
        assert journal.stat().st_size == start
        sf.journal(Unpaired([2]))
        sf.close()
        after = StateFile(path, fsync=False).load()
        assert after is not None and after.pairs.near_of(2) is None and after.pairs.near_of(1) == 11


def test_bad_checksum_on_the_last_record_counts_as_torn(tmp_path: Path) -> None:
    path, expected, start = _three_records(tmp_path)
    journal = path.with_name(path.name + ".journal")
    raw = bytearray(journal.read_bytes())
    raw[start + 6] ^= 0x40
    journal.write_bytes(bytes(raw))
    assert StateFile(path).load() == expected


def test_corrupt_record_in_the_middle_raises_naming_file_and_record(tmp_path: Path) -> None:
    path, _, _ = _three_records(tmp_path)
    journal = path.with_name(path.name + ".journal")
    raw = bytearray(journal.read_bytes())
    first_len = int.from_bytes(raw[13:17], "little")
    second = 13 + 4 + first_len + 4
    raw[second + 5] ^= 0x01
    journal.write_bytes(bytes(raw))
    with pytest.raises(StateCorrupt) as err:
        StateFile(path).load()
    assert isinstance(err.value, FolderError)
    assert str(journal) in str(err.value) and "record 1" in str(err.value)
    assert journal.read_bytes() == bytes(raw), "a failed load must not change the files"


def test_record_that_does_not_apply_raises_naming_its_index(tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    sf = StateFile(path)
    assert sf.load() is None
    sf.journal(Paired([(1, 1, 0)]))
    sf.journal(Paired([(1, 2, 0)]))  # far UID 1 paired twice: a bug upstream
    sf.close()
    with pytest.raises(StateCorrupt, match=r"record 1 does not apply"):
        StateFile(path).load()


def test_first_sync_journal_without_snapshot_is_replayed(tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    sf = StateFile(path)
    assert sf.load() is None
    sf.journal(Paired([(4, 40, 1)]))
    sf.close()
    assert StateFile(path).load() == state_with([(4, 40, 1)])


def test_incomplete_journal_header_is_ignored(tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    StateFile(path).commit(state_with([(1, 2, 3)]))
    journal = path.with_name(path.name + ".journal")
    journal.write_bytes(b"FSJN\x01\x00")
    assert StateFile(path).load() == state_with([(1, 2, 3)])
    assert not journal.exists()


def test_journal_before_load_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="before load"):
        StateFile(tmp_path / "x.state").journal(Unpaired([]))


# -- commit order and crash points ---------------------------------------------------------


def test_commit_leaves_no_journal_and_no_new_file(tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    sf = StateFile(path)
    assert sf.load() is None
    sf.journal(Paired([(1, 2, 0)]))
    assert sf.journal_path.exists()
    sf.commit(state_with([(1, 2, 0)]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.state"]


def test_journal_surviving_a_crash_after_the_rename_is_not_replayed_twice(tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    sf = StateFile(path)
    sf.commit(state_with([(1, 10, 0)]))
    live = sf.load()
    assert live is not None
    # Replaying these over the committed result would pair far UID 2 twice.
    for rec in (Paired([(2, 20, 0)]), Unpaired([1])):
        apply_record(live, rec)
        sf.journal(rec)
    kept = sf.journal_path.read_bytes()
    sf.commit(live)
    sf.journal_path.write_bytes(kept)  # as if the unlink never reached the disk
    assert StateFile(path).load() == live
    assert not sf.journal_path.exists()


def test_crash_before_the_rename_keeps_the_old_snapshot_and_its_journal(tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    sf = StateFile(path)
    sf.commit(state_with([(1, 10, 0)]))
    live = sf.load()
    assert live is not None
    apply_record(live, Paired([(2, 20, 0)]))
    sf.journal(Paired([(2, 20, 0)]))
    sf.close()
    sf.new_path.write_bytes(b"FSST\x01half-written")
    assert StateFile(path).load() == live


# -- damaged or foreign snapshots ------------------------------------------------------------


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"",
        lambda raw: raw[:7],
        lambda raw: raw[: len(raw) // 2],
        lambda raw: b"XXXX" + raw[4:],
        lambda raw: raw[:-3] + bytes([raw[-3] ^ 0x10]) + raw[-2:],
        lambda raw: os.urandom(len(raw)),
    ],
    ids=["empty", "header-only", "half", "bad-magic", "bit-flip", "garbage"],
)
def test_corrupt_snapshot_raises_folder_error_naming_the_file(tmp_path: Path, damage: object) -> None:
    path = tmp_path / "x.state"
    StateFile(path).commit(state_with([(1, 2, 3), (4, 5, 6)]))
    bad = damage(path.read_bytes())  # type: ignore[operator]
    path.write_bytes(bad)
    with pytest.raises(FolderError) as err:
        StateFile(path).load()
    assert isinstance(err.value, StateCorrupt)
    assert str(path) in str(err.value) and "re-paired by content" in str(err.value)
    assert path.read_bytes() == bad, "a failed load must not change the file"


def test_after_a_corrupt_load_the_bad_files_are_set_aside_and_a_fresh_journal_counts(tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    sf = StateFile(path)
    sf.commit(state_with([(1, 2, 3)]))
    path.write_bytes(b"FSST\x01garbage")
    with pytest.raises(StateCorrupt):
        sf.load()
    sf.journal(Paired([(9, 90, 0)]))  # the engine goes on as if there were no state
    sf.close()
    assert (tmp_path / "x.state.corrupt").read_bytes() == b"FSST\x01garbage"
    assert StateFile(path).load() == state_with([(9, 90, 0)])


def test_newer_format_is_refused_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    StateFile(path).commit(state_with([(1, 2, 3)]))
    raw = bytearray(path.read_bytes())
    raw[4] = 2
    path.write_bytes(bytes(raw))
    sf = StateFile(path)
    with pytest.raises(StateTooNew, match=r"newer fastsync.*version 2.*reads up to 1") as err:
        sf.load()
    assert str(path) in str(err.value)
    with pytest.raises(StateTooNew):
        sf.commit(FolderState())
    with pytest.raises(StateTooNew):
        sf.journal(Unpaired([]))
    assert path.read_bytes() == bytes(raw)


def test_discard_removes_state_and_journal(tmp_path: Path) -> None:
    path = tmp_path / "x.state"
    sf = StateFile(path)
    sf.commit(state_with([(1, 2, 3)]))
    sf.load()
    sf.journal(Unpaired([1]))
    sf.discard()
    assert list(tmp_path.iterdir()) == []
    assert StateFile(path).load() is None


# -- files on disk ----------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0, 0o022, 0o277])
def test_files_are_0600_and_directories_0700_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    old = os.umask(mask)
    try:
        meta = tmp_path / "meta" / "deeper"
        path = state_path(meta, "acct", "INBOX", "INBOX")
        sf = StateFile(path)
        assert sf.load() is None
        sf.journal(Paired([(1, 2, 3)]))
        assert stat.S_IMODE(sf.journal_path.stat().st_mode) == 0o600
        sf.commit(state_with([(1, 2, 3)]))
        with AccountLock(meta, "acct") as lock:
            assert stat.S_IMODE(lock.path.stat().st_mode) == 0o600
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for d in (path.parent, meta, meta.parent):
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def test_size_and_speed_of_200000_pairs(tmp_path: Path) -> None:
    n = 200_000
    rng = random.Random(7)
    far = array("I", sorted(rng.sample(range(1, 2**32), n)))
    near = array("I", rng.sample(range(1, 2**32), n))
    flags = bytes(rng.randrange(64) for _ in range(n))
    table = PairTable.from_blobs(far.tobytes(), near.tobytes(), flags)
    table.add(2**32 - 1 if far[-1] < 2**32 - 1 else 1, 1 if 1 not in near else 2, 0)  # now a dict
    state = FolderState(pairs=table)
    path = tmp_path / "x.state"
    t0 = time.perf_counter()
    StateFile(path).commit(state)
    t1 = time.perf_counter()
    loaded = StateFile(path).load()
    t2 = time.perf_counter()
    assert loaded is not None
    assert loaded.pairs.near_of(far[100]) == near[100]
    t3 = time.perf_counter()
    assert path.stat().st_size <= 10 * len(table)
    assert loaded == state
    # Generous bounds for a busy test machine; typical: commit ~35 ms, load ~2 ms, first use ~50 ms.
    assert t1 - t0 < 1.0 and t2 - t1 < 0.2 and t3 - t2 < 1.0, (t1 - t0, t2 - t1, t3 - t2)


# -- paths ------------------------------------------------------------------------------------

HOSTILE = ["../../x", "a/../../b", "\x00", "x" * 5000, "..", ".", "/etc/passwd", "\udcff", "a\\..\\b", ""]


@pytest.mark.parametrize("name", HOSTILE)
def test_state_path_stays_inside_the_account_directory(tmp_path: Path, name: str) -> None:
    meta = tmp_path / "meta"
    for account in (name, "acct"):
        path = state_path(meta, account, name, name)
        assert path.parent.parent == meta
        assert path.parent.name.startswith("Account-")
        assert path.parent.is_dir()
        assert len(path.name.encode()) <= 255 and len(path.parent.name.encode()) <= 255
        assert path.name.endswith(".state") and "/" not in path.name and "\x00" not in path.name
        assert not path.name.startswith(".")


def test_state_paths_of_different_pairs_differ(tmp_path: Path) -> None:
    names = ["a", "b", "a/b", "a_b", "a.b", "x" * 300, "x" * 301, *HOSTILE]
    paths = {state_path(tmp_path, "acct", f, n) for f in names for n in names}
    assert len(paths) == len(set(names)) ** 2
    accounts = {state_path(tmp_path, a, "INBOX", "INBOX").parent for a in ["a/b", "a_b", "a b", "a?b"]}
    assert len(accounts) == 4
    assert state_path(tmp_path, "Work", "INBOX", "INBOX").parent.name == "Account-Work"


# -- pair table -------------------------------------------------------------------------------


def test_pair_table_refuses_double_pairing_and_unknown_uids() -> None:
    table = PairTable()
    table.add(5, 50, 1)
    with pytest.raises(ValueError, match="far UID 5 is already paired"):
        table.add(5, 51, 0)
    with pytest.raises(ValueError, match="near UID 50 is already paired"):
        table.add(6, 50, 0)
    for bad in ((0, 1, 0), (1, 0, 0), (2**32, 1, 0), (1, 1, 256)):
        with pytest.raises(ValueError):
            table.add(*bad)
    with pytest.raises(KeyError):
        table.remove_far(6)
    with pytest.raises(KeyError):
        table.set_flags(6, 1)
    assert len(table) == 1


def test_pair_table_lookups_both_ways_and_items_ascend_after_unordered_adds() -> None:
    table = PairTable()
    for f, n in ((30, 3), (10, 1), (20, 2)):
        table.add(f, n, f % 7)
    table.set_flags(10, 40)
    assert table.far_of_near(2) == 20 and table.near_of(30) == 3 and table.flags_of(10) == 40
    table.remove_far(20)
    assert table.far_of_near(2) is None and table.near_of(20) is None and table.flags_of(20) is None
    table.add(25, 2, 0)  # the near UID is free again
    assert list(table.items()) == [(10, 1, 40), (25, 2, 0), (30, 3, 2)]


def test_pair_table_from_blobs_refuses_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="do not match"):
        PairTable.from_blobs(b"\x01\x00\x00\x00", b"", b"\x00")


def test_apply_record_header_and_retry() -> None:
    state = FolderState()
    want = Header(*range(1, len(HEADER_FIELDS) + 1))
    apply_record(state, want)
    assert header_of(state) == want
    apply_record(state, Retry("near", [3, 4], True))
    apply_record(state, Retry("near", [3], False))
    apply_record(state, Retry("far", [9], True))
    assert state.retry_near == {4} and state.retry_far == {9}


# -- account lock ----------------------------------------------------------------------------

_HOLDER = """
import sys, time
from pathlib import Path
from fastsync.state import AccountLock
lock = AccountLock(Path(sys.argv[1]), sys.argv[2])
lock.acquire()
print("locked", flush=True)
if sys.argv[3] == "wait":
    time.sleep(120)
"""


def _start_holder(meta: Path, account: str, mode: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(meta), account, mode], stdout=subprocess.PIPE, env=env
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"locked\n"
    return proc


def test_lock_held_by_another_process_fails_until_it_is_killed(tmp_path: Path) -> None:
    holder = _start_holder(tmp_path, "acct", "wait")
    try:
        with pytest.raises(LockedError) as err:
            AccountLock(tmp_path, "acct").acquire()
        assert isinstance(err.value, AccountError)
        assert f"account acct is locked by another fastsync (pid {holder.pid})" in str(err.value)
        with AccountLock(tmp_path, "other"):
            pass  # other accounts are not affected
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with AccountLock(tmp_path, "acct") as lock:
        assert lock.held
        assert lock.path.read_text().strip() == str(os.getpid())
    assert not lock.held


def test_lock_is_free_after_the_holder_exits_without_releasing(tmp_path: Path) -> None:
    holder = _start_holder(tmp_path, "acct", "exit")
    holder.wait()
    with AccountLock(tmp_path, "acct"):
        pass


def test_lock_is_exclusive_within_one_process_too(tmp_path: Path) -> None:
    with AccountLock(tmp_path, "acct"), pytest.raises(LockedError, match=f"pid {os.getpid()}"):
        AccountLock(tmp_path, "acct").acquire()


def test_discarded_lock_leaves_no_file_and_no_directory_it_made(tmp_path: Path) -> None:
    meta = tmp_path / "meta"
    lock = AccountLock(meta, "acct")
    lock.acquire()
    assert lock.path.is_file()
    lock.discard()
    assert not lock.held and not meta.exists()
    (meta / "keep").mkdir(parents=True)  # a metadata dir that was there before stays
    lock = AccountLock(meta, "acct")
    lock.acquire()
    lock.discard()
    assert sorted(p.name for p in meta.iterdir()) == ["keep"]


def test_lock_taken_on_a_file_its_holder_discarded_meanwhile_is_taken_again_on_the_new_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import fcntl

    holder = AccountLock(tmp_path, "acct")
    holder.acquire()
    late = AccountLock(tmp_path, "acct")
    real_open_and_lock = late._open_and_lock
    raced: list[int] = []

    def racing() -> int:
        if raced:
            return real_open_and_lock()
        fd = os.open(holder.path, os.O_RDWR)  # opened the old file, then its holder discarded it
        holder.discard()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        raced.append(fd)
        return fd

    monkeypatch.setattr(late, "_open_and_lock", racing)
    late.acquire()
    assert raced and late.held
    # the lock held is the file at the path: a third process is refused
    with pytest.raises(LockedError):
        AccountLock(tmp_path, "acct").acquire()
    late.release()


# -- part states (range copies of a huge folder) -----------------------------------------


def _part(
    path: Path,
    k: int,
    pairs: list[tuple[int, int, int]],
    journaled: list[tuple[int, int, int]],
    mark: int = 0,
) -> None:
    from fastsync.state import part_path

    sf = StateFile(part_path(path, k), fsync=False)
    sf.commit(state_with(pairs, far_validity=7, near_validity=9, far_modseq=mark))
    if journaled:
        sf.journal(Paired(pairs=journaled))


def test_parts_are_merged_on_load_and_removed_after_the_next_commit(tmp_path: Path) -> None:
    path = tmp_path / "f.state"
    _part(path, 1, [(1, 101, 0)], [(2, 102, 1)])
    _part(path, 2, [(5, 105, 0)], [])
    sf = StateFile(path, fsync=False)
    state = sf.load()
    assert state is not None
    assert (state.far_validity, state.near_validity) == (7, 9)
    assert sorted(state.pairs.items()) == [(1, 101, 0), (2, 102, 1), (5, 105, 0)]
    assert state.far_max_uid == 0  # what the parts did not copy is still new
    sf.journal(Unpaired(far_uids=[5]))  # the main journal extends the merged state
    again = StateFile(path, fsync=False).load()
    assert again is not None and sorted(again.pairs.items()) == [(1, 101, 0), (2, 102, 1)]
    sf.commit(again)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.state"]
    final = StateFile(path, fsync=False).load()
    assert final is not None and sorted(final.pairs.items()) == [(1, 101, 0), (2, 102, 1)]


def test_a_part_merged_twice_after_a_crash_before_its_removal_adds_nothing(tmp_path: Path) -> None:
    from fastsync.state import part_path

    path = tmp_path / "f.state"
    _part(path, 1, [(1, 101, 0), (2, 102, 0)], [])
    sf = StateFile(path, fsync=False)
    state = sf.load()
    assert state is not None
    state.pairs.set_flags(1, 4)
    sf.commit(state)
    _part(path, 1, [(1, 101, 0), (2, 102, 0)], [])  # as if the removal had not happened
    assert part_path(path, 1).exists()
    merged = StateFile(path, fsync=False).load()
    assert merged is not None and sorted(merged.pairs.items()) == [(1, 101, 4), (2, 102, 0)]


def test_a_part_of_other_uidvalidities_or_unreadable_adds_nothing(tmp_path: Path) -> None:
    from fastsync.state import part_path

    path = tmp_path / "f.state"
    StateFile(path, fsync=False).commit(state_with([(1, 101, 0)], far_validity=8, near_validity=9))
    _part(path, 1, [(2, 102, 0)], [])  # far validity 7: another folder generation
    part_path(path, 2).write_bytes(b"garbage")
    state = StateFile(path, fsync=False).load()
    assert state is not None and sorted(state.pairs.items()) == [(1, 101, 0)]


def test_merged_parts_keep_the_earliest_change_mark_and_an_unknown_one_wins(tmp_path: Path) -> None:
    path = tmp_path / "f.state"
    _part(path, 1, [(1, 101, 0)], [], mark=50)
    _part(path, 2, [(2, 102, 0)], [], mark=40)
    state = StateFile(path, fsync=False).load()
    assert state is not None and state.far_modseq == 40  # flags changed after 40 get listed
    _part(path, 3, [(3, 103, 0)], [], mark=0)
    state = StateFile(path, fsync=False).load()
    assert state is not None and state.far_modseq == 0  # one part cannot tell: list everything
