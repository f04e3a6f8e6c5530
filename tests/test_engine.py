"""The engine on two real Maildir stores (no network): convergence, idempotence, and a crash
after every journal step followed by a resume (the isync run-tests technique)."""

from __future__ import annotations

import time
from array import array
from pathlib import Path

import pytest

from fastsync.engine import EngineOptions, sync_folder
from fastsync.events import FolderStats
from fastsync.folders import FolderPair
from fastsync.model import SEEN, Outgoing
from fastsync.plan import PlanOptions
from fastsync.state import StateFile
from fastsync.stores import maildir_io as mio
from fastsync.stores.base import Changes
from fastsync.stores.maildir import MaildirStore
from fastsync.uidmap import UID_CODE


class Crash(Exception):
    pass


class CrashingStateFile(StateFile):
    """Dies at the k-th journal record, just before or just after it reaches the disk.

    Dying just before it leaves data stored but not recorded (the duplicate risk); just after,
    recorded but with the rest of the run undone.
    """

    def __init__(self, path: Path, crash_at: int | None, before: bool = False) -> None:
        super().__init__(path, fsync=False)
        self.crash_at = crash_at
        self.before = before
        self.records = 0

    def journal(self, rec):  # type: ignore[no-untyped-def]
        self.records += 1
        due = self.crash_at is not None and self.records >= self.crash_at
        if due and self.before:
            raise Crash(self.records)
        super().journal(rec)
        if due:
            raise Crash(self.records)


def msg(i: int, side: str) -> bytes:
    return f"From: {side}\r\nMessage-ID: <{side}{i}@t>\r\nSubject: {i}\r\n\r\nbody {i}\r\n".encode()


def make_side(root: Path, name: str, n: int) -> MaildirStore:
    store = MaildirStore(root, fsync=False)
    store.connect()
    store.create_folder("INBOX")
    store.select("INBOX")
    store.append(
        [
            Outgoing(src_uid=0, flags=SEEN if i % 3 == 0 else 0, internaldate=1e9 + i, data=msg(i, name))
            for i in range(n)
        ]
    )
    return store


def run(far_root: Path, near_root: Path, statefile: StateFile, **plan_opts: object) -> FolderStats:
    far, near = MaildirStore(far_root, fsync=False), MaildirStore(near_root, fsync=False)
    far.connect()
    near.connect()
    pair = FolderPair("INBOX", "INBOX", True, (near_root / "INBOX").exists())
    opts = EngineOptions(plan=PlanOptions(**plan_opts), batch_count=7)  # type: ignore[arg-type]
    return sync_folder(far, near, pair, statefile, opts, lambda e: None)


def snapshot(root: Path) -> list[tuple[str, bytes]]:
    """What a mail reader sees: (flags, bytes) of every message, ignoring UIDs in names."""
    out = []
    for sub in ("cur", "new"):
        for f in (root / "INBOX" / sub).iterdir():
            out.append((f.name.partition(":2,")[2], f.read_bytes()))
    return sorted(out)


def change_both(far_root: Path, near_root: Path) -> None:
    """New mail on both sides, a flag change and a deletion on each."""
    for root, name in ((far_root, "far"), (near_root, "near")):
        s = MaildirStore(root, fsync=False)
        s.connect()
        s.select("INBOX")
        listing = s.list_messages(0)
        uids = sorted(listing.flags)
        s.set_flags([uids[0]], SEEN | 2, 0) if name == "far" else s.set_flags([uids[1]], 8, 0)
        s.delete([uids[-1]] if name == "far" else [uids[-2]])
        s.append(
            [
                Outgoing(src_uid=0, flags=0, internaldate=2e9 + i, data=msg(100 + i, name + "new"))
                for i in range(9)
            ]
        )


def scenario(
    tmp: Path, crash_at: int | None, before: bool = False
) -> tuple[list[tuple[str, bytes]], list[tuple[str, bytes]]]:
    far_root, near_root = tmp / "far", tmp / "near"
    make_side(far_root, "far", 20)
    state_path = tmp / "state" / "INBOX.state"
    state_path.parent.mkdir(mode=0o700)
    run(far_root, near_root, StateFile(state_path, fsync=False))
    change_both(far_root, near_root)
    if crash_at is not None:
        with pytest.raises(Crash):
            run(far_root, near_root, CrashingStateFile(state_path, crash_at, before))
    run(far_root, near_root, StateFile(state_path, fsync=False))  # resume (or the plain run)
    again = run(far_root, near_root, StateFile(state_path, fsync=False))
    assert not again.changed(), again
    return snapshot(far_root), snapshot(near_root)


def test_two_way_sync_converges_and_the_next_run_changes_nothing(tmp_path):
    far, near = scenario(tmp_path, None)
    assert far == near
    assert len(far) == 20 - 2 + 18


def count_journal_steps(tmp: Path) -> int:
    far_root, near_root = tmp / "far", tmp / "near"
    make_side(far_root, "far", 20)
    state_path = tmp / "state" / "INBOX.state"
    state_path.parent.mkdir(mode=0o700)
    run(far_root, near_root, StateFile(state_path, fsync=False))
    change_both(far_root, near_root)
    counting = CrashingStateFile(state_path, None)
    run(far_root, near_root, counting)
    return counting.records


@pytest.mark.parametrize("before", [False, True], ids=["after-record", "before-record"])
def test_a_crash_at_every_journal_step_resumes_to_the_same_result(tmp_path, before):
    expected = scenario(tmp_path / "plain", None)
    steps = count_journal_steps(tmp_path / "count")
    assert steps >= 6
    for k in range(1, steps + 1):
        got = scenario(tmp_path / f"crash{k}", k, before)
        assert got == expected, f"crash at journal record {k} of {steps} (before={before}) differs"


def state_is_current(far_root: Path, near_root: Path, state_path: Path) -> bool:
    """Would the quick check skip this pair now (both sides' status equals the recorded marks)?"""
    from fastsync.workers.quick import unchanged

    state = StateFile(state_path, fsync=False).load()
    assert state is not None
    far, near = MaildirStore(far_root, fsync=False), MaildirStore(near_root, fsync=False)
    far.connect()
    near.connect()
    return unchanged(state, far.status("INBOX"), near.status("INBOX"))


def test_marks_recorded_after_its_own_writes_let_the_next_run_skip_the_folder(tmp_path):
    far_root, near_root = tmp_path / "far", tmp_path / "near"
    make_side(far_root, "far", 20)
    state_path = tmp_path / "INBOX.state"
    run(far_root, near_root, StateFile(state_path, fsync=False))
    assert state_is_current(far_root, near_root, state_path)
    change_both(far_root, near_root)
    assert not state_is_current(far_root, near_root, state_path)
    stats = run(far_root, near_root, StateFile(state_path, fsync=False))
    assert stats.to_far and stats.to_near and stats.del_far and stats.del_near
    assert state_is_current(far_root, near_root, state_path)


class DeliveryDuringSettle(MaildirStore):
    """A near store where a mail delivery lands right after the engine's closing status()."""

    def status(self, name: str):  # type: ignore[no-untyped-def]
        st = super().status(name)
        if not getattr(self, "delivered", False):
            self.delivered = True
            (self._root / name / "new" / "1800000000.late.host").write_bytes(msg(999, "late"))
        return st


def test_a_change_by_someone_else_during_the_run_is_not_hidden_by_the_closing_marks(tmp_path):
    far_root, near_root = tmp_path / "far", tmp_path / "near"
    make_side(far_root, "far", 5)
    state_path = tmp_path / "INBOX.state"
    far, near = MaildirStore(far_root, fsync=False), DeliveryDuringSettle(near_root, fsync=False)
    far.connect()
    near.connect()
    pair = FolderPair("INBOX", "INBOX", True, False)
    stats = sync_folder(far, near, pair, StateFile(state_path, fsync=False), EngineOptions(), lambda e: None)
    assert stats.to_near == 5 and near.delivered
    assert not state_is_current(far_root, near_root, state_path)  # the next run looks again
    again = run(far_root, near_root, StateFile(state_path, fsync=False))
    assert again.to_far == 1


class SkippingFetch(MaildirStore):
    """A far store whose fetch silently leaves out one message (a server that drops one)."""

    skip = 0

    def fetch(self, uids):  # type: ignore[no-untyped-def]
        return (m for m in super().fetch(uids) if m.uid != self.skip)


def test_first_pull_fetches_the_uid_range_and_a_message_it_missed_comes_next_run(tmp_path):
    far_root, near_root = tmp_path / "far", tmp_path / "near"
    far = make_side(far_root, "far", 12)
    listing = far.list_messages(0)
    far.delete(sorted(listing.flags)[3:5])  # gaps in the UID range
    state_path = tmp_path / "INBOX.state"
    skipping = SkippingFetch(far_root, fsync=False)
    skipping.connect()
    skipping.skip = 8
    near = MaildirStore(near_root, fsync=False)
    near.connect()
    pair = FolderPair("INBOX", "INBOX", True, False)
    first = sync_folder(
        skipping, near, pair, StateFile(state_path, fsync=False), EngineOptions(), lambda e: None
    )
    assert first.to_near == 9
    state = StateFile(state_path, fsync=False).load()
    assert state is not None and state.far_max_uid == 0  # the closing check saw UID 8 unpaired
    assert not state_is_current(far_root, near_root, state_path)
    second = run(far_root, near_root, StateFile(state_path, fsync=False))
    assert (second.to_near, second.to_far) == (1, 0)
    far_snap, near_snap = snapshot(far_root), snapshot(near_root)
    assert far_snap == near_snap and len(near_snap) == 10
    assert state_is_current(far_root, near_root, state_path)
    assert not run(far_root, near_root, StateFile(state_path, fsync=False)).changed()


def test_first_pull_that_got_everything_records_the_whole_range_as_seen(tmp_path):
    far_root, near_root = tmp_path / "far", tmp_path / "near"
    make_side(far_root, "far", 12)
    state_path = tmp_path / "INBOX.state"
    assert run(far_root, near_root, StateFile(state_path, fsync=False)).to_near == 12
    state = StateFile(state_path, fsync=False).load()
    assert state is not None and state.far_max_uid == 12 and len(state.pairs) == 12
    assert state_is_current(far_root, near_root, state_path)


class ListsByDifference(MaildirStore):
    """A far Maildir that lists by difference as a CONDSTORE server does: every UID present,
    and flags for a superset of those that changed (here: all of them)."""

    def list_changes(self, since_modseq: int, sizes_above: int) -> Changes | None:
        listing = self.list_messages(sizes_above)
        return Changes(
            uids=array(UID_CODE, sorted(listing.flags)), flags=dict(listing.flags), sizes=dict(listing.sizes)
        )


@pytest.mark.parametrize("far_kind", [ListsByDifference, MaildirStore], ids=["by-difference", "full"])
def test_far_flag_changes_find_their_near_files_during_the_near_listing(tmp_path, monkeypatch, far_kind):
    """Far flags toggled both ways: told which near messages will change before the near
    listing, the Maildir finds their files in that scan, and needs no scan of its own after."""
    from fastsync.stores import maildir_scan

    far_root, near_root = tmp_path / "far", tmp_path / "near"
    make_side(far_root, "far", 20)
    state_path = tmp_path / "state" / "INBOX.state"
    state_path.parent.mkdir(mode=0o700)
    time.sleep(mio.TICK_NS / 1e9)  # so that the first run records the far change mark
    run(far_root, near_root, StateFile(state_path, fsync=False))
    far = MaildirStore(far_root, fsync=False)
    far.connect()
    far.select("INBOX")
    far.set_flags([2, 3], 8, 0)  # \Flagged on
    far.set_flags([4], 0, SEEN)  # \Seen off (make_side's every third message is seen: UIDs 1, 4, ...)
    far.flush()
    time.sleep(mio.TICK_NS / 1e9)  # a Maildir's change mark is unknown within a tick of a change
    scans = []
    real = maildir_scan.locate
    monkeypatch.setattr(maildir_scan, "locate", lambda *args: scans.append(1) or real(*args))
    f, n = far_kind(far_root, fsync=False), MaildirStore(near_root, fsync=False)
    f.connect()
    n.connect()
    opts = EngineOptions(plan=PlanOptions(), batch_count=7)
    pair = FolderPair("INBOX", "INBOX", True, True)
    stats = sync_folder(f, n, pair, StateFile(state_path, fsync=False), opts, lambda e: None)
    assert stats.flags_near == 3, stats
    assert snapshot(far_root) == snapshot(near_root)
    assert len(scans) == (0 if far_kind is ListsByDifference else 1), scans
