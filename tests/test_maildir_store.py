"""The Maildir store against real directories under tmp_path (no network)."""

from __future__ import annotations

import errno
import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fastsync.errors import FolderError, MessageError, StoreError
from fastsync.model import FLAGGED, REPLIED, SEEN, Outgoing, content_key, flags_from_maildir
from fastsync.stores import maildir_io, maildir_scan
from fastsync.stores.base import FolderStatus
from fastsync.stores.maildir import AppendError, MaildirStore
from fastsync.stores.maildir_uids import UIDVALIDITY_FILE

MSG = b"From: a@example.org\r\nSubject: hello\r\nMessage-ID: <1@x>\r\n\r\nbody line 1\r\nline 2\r\n"
DATE = 1_600_000_000.0


def msg(n: int = 0, flags: int = 0, data: bytes | None = None) -> Outgoing:
    body = data if data is not None else MSG.replace(b"<1@x>", f"<{n}@x>".encode())
    return Outgoing(src_uid=n, flags=flags, internaldate=DATE + n, data=body)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "mail"


def open_store(
    root: Path, sep: str = ".", *, readonly: bool = False, dry_run: bool = False, make_root: bool = True
) -> MaildirStore:
    """A connected store on ``root``, made first (empty, 0700) unless read-only, a dry run, or
    ``make_root=False``: the store itself creates a missing root only with its first folder."""
    if make_root and not (readonly or dry_run):
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
    store = MaildirStore(root, sep, readonly=readonly, dry_run=dry_run)
    store.connect()
    return store


@pytest.fixture
def store(root: Path) -> Iterator[MaildirStore]:
    s = open_store(root)
    s.create_folder("INBOX")
    s.select("INBOX")
    yield s
    s.close()


def files(folder: Path, sub: str) -> list[str]:
    return sorted(os.listdir(folder / sub))


def deliver(folder: Path, name: str, data: bytes = b"From: x\n\nbody\n", sub: str = "new") -> Path:
    """Drop a file into a folder the way an MDA or another tool would."""
    path = folder / sub / name
    path.write_bytes(data)
    return path


def test_connect_writes_nothing_and_the_first_folder_creates_the_root_private(root: Path) -> None:
    s = open_store(root / "deep", make_root=False)
    assert not root.exists(), "connect alone must not create the root"
    assert s.list_folders() == []
    s.create_folder("INBOX")
    assert stat.S_IMODE((root / "deep").stat().st_mode) == 0o700
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_connect_refuses_a_root_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(StoreError, match="cannot create root"):
        open_store(tmp_path / "file" / "mail", make_root=False)


def test_readonly_and_dry_run_do_not_create_root_and_list_empty(root: Path) -> None:
    assert open_store(root, readonly=True).list_folders() == []
    assert open_store(root, dry_run=True).list_folders() == []
    assert not root.exists()


def test_nested_folders_create_and_list(root: Path) -> None:
    s = open_store(root, "/")
    for name in ("INBOX", "a/b", "a/b/c", "Sent"):
        s.create_folder(name)
    s.create_folder("a/b")  # exists = success
    names = [f.name for f in s.list_folders()]
    assert names == ["INBOX", "Sent", "a/b", "a/b/c"]  # "a" is a plain directory, not a folder
    for sub in ("cur", "new", "tmp"):
        assert (root / "a" / "b" / "c" / sub).is_dir()


def test_flat_folders_list_offlineimap_dirs_and_skip_other_dirs(root: Path) -> None:
    s = open_store(root, ".")
    for name in ("INBOX", "INBOX.Sent", "Archive.2020"):
        s.create_folder(name)
    for sub in ("cur", "new", "tmp"):  # made by OfflineIMAP, not by us
        (root / "INBOX.Drafts" / sub).mkdir(parents=True)
    (root / "notes").mkdir()
    s.select("INBOX")  # writes INBOX/.fastsync-uidvalidity
    assert [f.name for f in s.list_folders()] == ["Archive.2020", "INBOX", "INBOX.Drafts", "INBOX.Sent"]
    assert (root / "INBOX.Sent" / "cur").is_dir()


@pytest.mark.parametrize("sep", ["/", "."])
@pytest.mark.parametrize(
    "name", ["..", "../evil", "a/../../evil", "/abs", "cur", "x\x00y", "", "INBOX/../../../etc", "../.."]
)
def test_hostile_names_refused_and_nothing_written_outside(tmp_path: Path, sep: str, name: str) -> None:
    root = tmp_path / "mail"
    s = open_store(root, sep)
    with pytest.raises(FolderError):
        s.create_folder(name)
    with pytest.raises(FolderError):
        s.select(name)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mail"]
    assert list(root.iterdir()) == []


def test_symlink_out_of_root_is_not_followed_by_create(tmp_path: Path) -> None:
    root, outside = tmp_path / "mail", tmp_path / "outside"
    outside.mkdir()
    s = open_store(root, "/")
    (root / "link").symlink_to(outside)
    with pytest.raises(FolderError):
        s.create_folder("link/x")
    assert list(outside.iterdir()) == []


def test_append_list_fetch_round_trips_bytes(store: MaildirStore, root: Path) -> None:
    odd = b"Subject: odd\r\n\r\nbare\rCR and NUL \x00\x01\xff bytes\r\nend\r\n"
    uids = store.append([msg(1), msg(2, data=odd)])
    assert len(uids) == 2 and uids[0] is not None and uids[1] == uids[0] + 1
    on_disk = [(root / "INBOX" / "cur" / n).read_bytes() for n in files(root / "INBOX", "cur")]
    assert sorted(on_disk) == sorted([MSG.replace(b"\r\n", b"\n"), odd.replace(b"\r\n", b"\n")])
    listing = store.list_messages(0)
    assert set(listing.flags) == set(uids)
    assert listing.sizes[uids[1]] == len(odd.replace(b"\r\n", b"\n"))
    got = {m.uid: m for m in store.fetch([u for u in uids if u is not None])}
    assert got[uids[0]].data == msg(1).data
    assert got[uids[1]].data == odd


def test_mtime_is_internaldate(store: MaildirStore, root: Path) -> None:
    [uid] = store.append([msg(7)])
    [path] = (root / "INBOX" / "cur").iterdir()
    assert path.stat().st_mtime == DATE + 7
    [fetched] = store.fetch([uid or 0])
    assert fetched.internaldate == DATE + 7


def test_flags_live_in_names_and_new_files_move_to_cur(store: MaildirStore, root: Path) -> None:
    u1, u2 = store.append([msg(1, SEEN | FLAGGED), msg(2)])
    assert u1 is not None and u2 is not None
    names = files(root / "INBOX", "cur")
    assert any(n.endswith(":2,FS") for n in names) and any(n.endswith(":2,") for n in names)
    store.set_flags([u1, u2], REPLIED, FLAGGED)
    store.flush()
    assert store.list_messages(0).flags == {u1: SEEN | REPLIED, u2: REPLIED}
    deliver(root / "INBOX", "100.M1P1Q1.mda")
    [u3] = set(store.list_messages(0).flags) - {u1, u2}
    assert files(root / "INBOX", "new")[0].startswith("100.M1P1Q1.mda,U=")
    store.set_flags([u3], SEEN, 0)
    assert files(root / "INBOX", "new") == []
    assert store.list_messages(0).flags[u3] == SEEN


@pytest.mark.parametrize("told", ["before its listing", "after it", "never"])
def test_will_change_finds_the_files_of_several_changes_at_once(
    store: MaildirStore, root: Path, monkeypatch: pytest.MonkeyPatch, told: str
) -> None:
    assert store.append([msg(i, SEEN) for i in range(4)]) == [1, 2, 3, 4]
    store.flush()
    cur = root / "INBOX" / "cur"
    [four] = [n for n in os.listdir(cur) if ",U=4," in n]
    shutil.copy(cur / four, cur / ("0" + four))  # a twin of 4, first by name: the original is renumbered
    fresh = open_store(root)
    fresh.select("INBOX")
    scans = []
    real = maildir_scan.locate
    monkeypatch.setattr(maildir_scan, "locate", lambda *args: scans.append(set(args[2])) or real(*args))
    if told == "before its listing":
        fresh.will_change([1, 2, 3, 4])
    listed = fresh.list_messages(0).flags
    assert sorted(listed) == [1, 2, 3, 4, 5], "one of the twins got a UID of its own"
    if told == "after it":
        fresh.will_change([1, 2, 3])
    fresh.set_flags([1, 2], FLAGGED, 0)
    fresh.set_flags([3], 0, SEEN)
    fresh.delete([5])
    fresh.flush()
    # the listing's own scan for the twin aside, only the calls not found beforehand scan
    looked_for = [w for w in scans if w != {4}]
    assert len(looked_for) == {"before its listing": 1, "after it": 2, "never": 3}[told], scans
    if told == "before its listing":
        assert looked_for == [{5}], "the UID numbered after the listing is the only one looked for"
    assert fresh.list_messages(0).flags == {1: SEEN | FLAGGED, 2: SEEN | FLAGGED, 3: 0, 4: SEEN}
    fresh.close()


def test_set_flags_keeps_keyword_letters(store: MaildirStore, root: Path) -> None:
    [uid] = store.append([msg(1, SEEN)])
    [name] = files(root / "INBOX", "cur")
    os.rename(root / "INBOX" / "cur" / name, root / "INBOX" / "cur" / name.replace(":2,S", ":2,Sab"))
    store.set_flags([uid or 0], FLAGGED, 0)  # finds the renamed file again
    [name] = files(root / "INBOX", "cur")
    assert name.endswith(":2,FSab")


def test_uid_stable_across_mua_rename_and_reopen(root: Path) -> None:
    s = open_store(root)
    s.create_folder("INBOX")
    s.select("INBOX")
    deliver(root / "INBOX", "200.M5P9Q1.host")
    [uid] = s.list_messages(0).flags
    [name] = files(root / "INBOX", "new")
    os.rename(root / "INBOX" / "new" / name, root / "INBOX" / "cur" / (name + ":2,S"))  # the MUA reads it
    [fetched] = s.fetch([uid])  # found again without a new listing
    assert fetched.flags == SEEN
    assert s.list_messages(0).flags == {uid: SEEN}
    status = s.select("INBOX")
    s.close()
    s2 = open_store(root)
    again = s2.select("INBOX")
    assert (again.validity, again.uidnext) == (status.validity, status.uidnext)
    assert s2.list_messages(0).flags == {uid: SEEN}
    assert files(root / "INBOX", "cur") == [name + ":2,S"]


def test_mda_file_gets_uid_and_keeps_its_name(store: MaildirStore, root: Path) -> None:
    validity = store.select("INBOX").validity
    deliver(root / "INBOX", "1700000000.M1P2Q3.mx.example.org")
    [uid] = store.list_messages(0).flags
    assert files(root / "INBOX", "new") == [f"1700000000.M1P2Q3.mx.example.org,U={uid},V={validity:x}"]


def test_mda_files_numbered_in_name_order(store: MaildirStore, root: Path) -> None:
    for name in ("3.c.h", "1.a.h", "2.b.h"):
        deliver(root / "INBOX", name)
    store.list_messages(0)
    numbered = {n.split(",")[0]: int(n.split(",U=")[1].split(",")[0]) for n in files(root / "INBOX", "new")}
    assert numbered["1.a.h"] < numbered["2.b.h"] < numbered["3.c.h"]


def test_duplicate_uid_copy_gets_new_uid(store: MaildirStore, root: Path) -> None:
    [uid] = store.append([msg(1, SEEN)])
    [name] = files(root / "INBOX", "cur")
    unique, rest = name.split(",", 1)
    copy = "9" + unique + "," + rest  # sorts after the original
    shutil.copy(root / "INBOX" / "cur" / name, root / "INBOX" / "cur" / copy)
    flags = store.list_messages(0).flags
    assert len(flags) == 2 and uid in flags
    assert name in files(root / "INBOX", "cur")  # the first by name keeps its UID and name
    assert copy not in files(root / "INBOX", "cur")


def test_foreign_uid_replaced_and_other_fields_kept(store: MaildirStore, root: Path) -> None:
    validity = store.select("INBOX").validity
    deliver(root / "INBOX", "1234_0.99.host,U=55,FMD5=abcdef:2,RS", sub="cur")
    listing = store.list_messages(0)
    [uid] = listing.flags
    assert listing.flags[uid] == REPLIED | SEEN
    assert files(root / "INBOX", "cur") == [f"1234_0.99.host,U={uid},V={validity:x},FMD5=abcdef:2,RS"]


def test_file_moved_from_other_folder_gets_new_uid(root: Path) -> None:
    s = open_store(root)
    for name in ("A", "B"):
        s.create_folder(name)
    s.select("B")
    s.append([msg(1), msg(2)])
    s.select("A")
    [ua] = s.append([msg(3)])
    [name] = files(root / "A", "cur")
    os.rename(root / "A" / "cur" / name, root / "B" / "cur" / name)
    s.select("B")
    flags = s.list_messages(0)
    assert len(flags.flags) == 3
    assert name not in files(root / "B", "cur")
    assert ua == 1 and max(flags.flags) == 3


def test_uidvalidity_file_format_and_reserve_before_rename(store: MaildirStore, root: Path) -> None:
    st = store.select("INBOX")
    path = root / "INBOX" / UIDVALIDITY_FILE
    assert path.read_text() == f"{st.validity}\n1\n"
    assert 0 < st.validity < 2**32
    store.append([msg(1), msg(2), msg(3)])
    assert path.read_text() == f"{st.validity}\n4\n"
    assert store.select("INBOX").uidnext == 4


def test_damaged_uidvalidity_is_a_folder_error(store: MaildirStore, root: Path) -> None:
    (root / "INBOX" / UIDVALIDITY_FILE).write_text("garbage\n")
    with pytest.raises(FolderError, match="damaged"):
        store.select("INBOX")


def test_status_counts_without_selecting(store: MaildirStore, root: Path) -> None:
    store.create_folder("Other")
    store.append([msg(1), msg(2)])
    deliver(root / "Other", "1.x.h")
    st = store.status("Other")
    assert st.messages == 1 and st.uidnext == 1
    assert store.status("INBOX").messages == 2 and store.status("INBOX").uidnext == 3
    assert len(store.list_messages(0).flags) == 2  # INBOX still selected
    with pytest.raises(FolderError, match="does not exist"):
        store.status("Nope")
    with pytest.raises(FolderError, match="does not exist"):
        store.select("Nope")


def test_status_after_a_stable_listing_uses_its_count_until_a_file_moves(
    store: MaildirStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.append([msg(1), msg(2), msg(3)])
    time.sleep(0.05)  # older than a clock tick: the listing's scan is stable
    assert len(store.list_messages(0).flags) == 3
    real_scandir, scans = os.scandir, []
    monkeypatch.setattr(os, "scandir", lambda p: scans.append(p) or real_scandir(p))
    assert store.status("INBOX").messages == 3 and not scans  # counted by the listing
    deliver(root / "INBOX", "2.y.h")  # another program delivers: new/ moves
    assert store.status("INBOX").messages == 4 and scans  # counted again
    (root / "INBOX" / "new" / "2.y.h").unlink()
    assert store.status("INBOX").messages == 3


def test_status_stamp_moves_when_a_reader_changes_flags(store: MaildirStore, root: Path) -> None:
    store.append([msg(1)])
    time.sleep(0.05)
    before = store.status("INBOX").highestmodseq
    assert before > 0
    [name] = files(root / "INBOX", "cur")
    os.rename(root / "INBOX" / "cur" / name, root / "INBOX" / "cur" / (name + "S"))
    # within one clock tick of a change the stamp cannot be trusted: reported as unknown
    assert store.status("INBOX").highestmodseq == 0
    time.sleep(0.05)
    assert store.status("INBOX").highestmodseq > before


def test_delete_and_fetch_skip_vanished(store: MaildirStore, root: Path) -> None:
    u1, u2, u3 = store.append([msg(1), msg(2), msg(3)])
    assert u1 and u2 and u3
    store.delete([u1])
    store.flush()
    for n in files(root / "INBOX", "cur"):
        if f",U={u2}," in n:
            os.unlink(root / "INBOX" / "cur" / n)  # gone behind our back
    assert [m.uid for m in store.fetch([u1, u2, u3])] == [u3]
    assert set(store.list_messages(0).flags) == {u3}


def test_dry_run_renames_and_writes_nothing(root: Path) -> None:
    s = open_store(root)
    s.create_folder("INBOX")
    deliver(root / "INBOX", "1.a.h")
    deliver(root / "INBOX", "2.b.h,U=55,FMD5=ab:2,S", sub="cur")
    before = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
    d = open_store(root, dry_run=True)
    d.select("INBOX")
    first = d.list_messages(0).flags
    assert len(first) == 2 and d.list_messages(0).flags == first  # stable in memory
    assert d.append([msg(1)]) and len(d.list_messages(0).flags) == 2
    d.set_flags(list(first), FLAGGED, 0)
    d.delete(list(first))
    d.create_folder("New")
    assert "New" in [f.name for f in d.list_folders()]
    d.select("New")
    assert d.list_messages(0).flags == {}
    d.flush()
    assert sorted(str(p.relative_to(root)) for p in root.rglob("*")) == before


def test_readonly_refuses_every_write(root: Path) -> None:
    s = open_store(root)
    s.create_folder("INBOX")
    deliver(root / "INBOX", "1.a.h")
    r = MaildirStore(root, readonly=True, repository="Local")
    r.connect()
    r.select("INBOX")
    [uid] = r.list_messages(0).flags
    assert files(root / "INBOX", "new") == ["1.a.h"]
    assert [m.data for m in r.fetch([uid])] == [b"From: x\r\n\r\nbody\r\n"]
    r.create_folder("INBOX")  # exists = success, nothing to write
    for call in (
        lambda: r.append([msg(1)]),
        lambda: r.set_flags([uid], SEEN, 0),
        lambda: r.delete([uid]),
        lambda: r.create_folder("New"),
    ):
        with pytest.raises(FolderError, match=r"\[Repository Local\] is read-only"):
            call()
    assert not (root / "INBOX" / UIDVALIDITY_FILE).exists()


@pytest.mark.parametrize("umask", [0, 0o277])
def test_modes_private_whatever_the_umask(root: Path, umask: int) -> None:
    old = os.umask(umask)
    try:
        s = open_store(root, "/", make_root=False)  # the store makes the root too
        s.create_folder("a/b")
        s.select("a/b")
        s.append([msg(1)])
        deliver(root / "a" / "b", "1.x.h")
        s.list_messages(0)
    finally:
        os.umask(old)
    for p in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(p.stat().st_mode)
        if p.name.startswith("1.x.h"):
            continue  # the MDA's file keeps the MDA's mode
        assert mode == (0o700 if p.is_dir() else 0o600), p


@pytest.fixture
def enospc_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[set[bytes]]:
    """os.write fails with ENOSPC (after writing part of the data) for data containing a marker."""
    markers: set[bytes] = set()
    real = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        chunk = bytes(data)
        if any(m in chunk for m in markers):
            real(fd, chunk[:10])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    yield markers


def test_enospc_mid_batch_keeps_earlier_messages_and_no_tmp(
    store: MaildirStore, root: Path, enospc_on: set[bytes]
) -> None:
    enospc_on.add(b"<2@x>")
    with pytest.raises(AppendError) as info:
        store.append([msg(1), msg(2), msg(3)])
    err = info.value
    assert isinstance(err, MessageError)
    assert "'INBOX'" in str(err) and "No space left on device" in str(err) and "source UID 2" in str(err)
    assert len(err.done) == 1
    assert files(root / "INBOX", "tmp") == []
    assert len(files(root / "INBOX", "cur")) == 1
    assert [m.data for m in store.fetch(err.done)] == [msg(1).data]


def test_enospc_single_message_raises_message_error(
    store: MaildirStore, root: Path, enospc_on: set[bytes]
) -> None:
    enospc_on.add(b"<5@x>")
    with pytest.raises(MessageError):
        store.append([msg(5)])
    assert files(root / "INBOX", "tmp") == [] and files(root / "INBOX", "cur") == []


def test_identities_equal_for_lf_and_crlf_copies(store: MaildirStore, root: Path) -> None:
    big = MSG + b"x" * 3_000_000 + b"\r\n" + b"\r\n\r\n" * 10  # spans chunks
    [u1, u2] = store.append([msg(1), msg(2, data=big)])
    store.create_folder("Other")
    deliver(root / "Other", "1.crlf.h", msg(1).data)  # an MDA that kept CRLF
    deliver(root / "Other", "2.crlf.h", big)
    keys = store.identities([u1 or 0, u2 or 0])
    store.select("Other")
    other = store.list_messages(0)
    by_name = store.identities(sorted(other.flags))
    assert sorted(keys.values()) == sorted(by_name.values())
    # and equal to what an IMAP server gives: BODY[HEADER] and RFC822.SIZE of the CRLF form
    header = MSG[: MSG.index(b"\r\n\r\n") + 4]
    assert keys[u1 or 0] == content_key(header, len(msg(1).data))
    assert keys[u2 or 0] == content_key(header, len(big))


def test_flags_from_names_match_model(store: MaildirStore, root: Path) -> None:
    deliver(root / "INBOX", "1.a.h:2,DFPRST", sub="cur")
    assert list(store.list_messages(0).flags.values()) == [flags_from_maildir("DFPRST")]


def test_listing_20000_files_is_fast(store: MaildirStore, root: Path) -> None:
    cur = root / "INBOX" / "cur"
    for i in range(20_000):
        (cur / f"{1_700_000_000 + i}.M{i}P1Q1.host:2,S").write_bytes(b"x")
    t0 = time.perf_counter()
    first = store.list_messages(0)
    t1 = time.perf_counter()
    again = store.list_messages(20_000)
    t2 = time.perf_counter()
    print(f"\n20,000 files: first listing (numbering, renames) {t1 - t0:.3f}s, re-listing {t2 - t1:.3f}s")
    assert len(first.flags) == 20_000 and again.flags == first.flags
    assert again.sizes == {}
    assert t2 - t1 < 1.0


def test_uids_reserved_on_disk_before_any_file_carries_them(
    store: MaildirStore, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.rename
    seen: list[int] = []

    def rename(src: str | Path, dst: str | Path) -> None:
        name = os.path.basename(dst)
        if ",U=" in name:
            uid = int(name.split(",U=")[1].split(",")[0])
            nxt = int((root / "INBOX" / UIDVALIDITY_FILE).read_text().split("\n")[1])
            assert uid < nxt, f"{name} renamed before UID {uid} was reserved"
            seen.append(uid)
        real(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    store.append([msg(1), msg(2)])
    deliver(root / "INBOX", "5.mda.h")
    store.list_messages(0)
    assert seen == [1, 2, 3]


def test_append_syncs_each_file_and_cur_once_without_syncfs(
    store: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = os.fsync
    calls: list[int] = []

    def fsync(fd: int) -> None:
        calls.append(fd)
        real(fd)

    monkeypatch.setattr(maildir_io, "SYNCFS", None)
    monkeypatch.setattr(os, "fsync", fsync)
    store.append([msg(i) for i in range(10)])
    # 10 files, the uidvalidity file and its directory, cur/ once
    assert len(calls) == 13


def test_append_makes_a_batch_durable_with_one_syncfs(
    store: MaildirStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert maildir_io.SYNCFS is not None, "syncfs(2) should be available on Linux"
    real_fsync, real_syncfs = os.fsync, maildir_io.SYNCFS
    fsyncs: list[int] = []
    syncfs: list[int] = []

    def fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    def counting_syncfs(fd: int) -> int:
        syncfs.append(fd)
        return real_syncfs(fd)

    monkeypatch.setattr(maildir_io, "SYNCFS", counting_syncfs)
    monkeypatch.setattr(os, "fsync", fsync)
    store.append([msg(i) for i in range(150)])  # more than the files kept open without syncfs
    # one for the files before they are renamed into cur/, one for the renames and the UID counter
    assert len(syncfs) == 2
    assert fsyncs == []


def test_no_fsync_option_still_stores(root: Path) -> None:
    s = MaildirStore(root, fsync=False)
    s.connect()
    s.create_folder("INBOX")
    s.select("INBOX")
    [uid] = s.append([msg(1)])
    assert [m.data for m in s.fetch([uid or 0])] == [msg(1).data]


def test_readonly_folder_with_unnumbered_files_gets_a_fresh_validity(root: Path) -> None:
    s = open_store(root)
    s.create_folder("INBOX")
    on_disk = s.select("INBOX").validity
    s.append([msg(1)])
    r = open_store(root, readonly=True)
    assert r.select("INBOX").validity == on_disk  # every file numbered: UIDs can be trusted
    deliver(root / "INBOX", "9.mda.h")
    r2 = open_store(root, readonly=True)
    fresh = r2.select("INBOX").validity
    assert fresh != on_disk  # memory-only UIDs must not be trusted by the next run
    assert r2.select("INBOX").validity == fresh  # but are stable within this one
    assert len(r2.list_messages(0).flags) == 2


def test_stores_appending_to_one_folder_at_once_never_share_a_uid(root: Path) -> None:
    """Range copies of a huge folder append from several processes: the UID reservation
    re-reads the counter under a lock, so a store's stale view cannot hand out a used UID."""
    a, b = open_store(root), open_store(root)
    a.create_folder("INBOX")
    a.select("INBOX")
    b.select("INBOX")  # both now believe the next UID is 1
    got = a.append([msg(i) for i in range(3)]) + b.append([msg(10 + i) for i in range(3)])
    got += a.append([msg(20)])
    assert len(set(got)) == 7
    fresh = open_store(root)
    fresh.select("INBOX")
    assert sorted(fresh.list_messages(0).flags) == sorted(u for u in got if u is not None)


def test_concurrent_processes_reserving_uids_get_disjoint_blocks(root: Path) -> None:
    import multiprocessing

    s = open_store(root)
    s.create_folder("INBOX")
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        blocks = pool.starmap(_append_some, [(str(root), k) for k in range(8)])
    uids = [u for block in blocks for u in block]
    assert len(uids) == 8 * 20 and len(set(uids)) == len(uids)


def _append_some(root: str, k: int) -> list[int | None]:
    s = open_store(Path(root))
    s.select("INBOX")
    out: list[int | None] = []
    for j in range(4):
        out += s.append([msg(100 * k + 5 * j + i) for i in range(5)])
    return out


def test_status_since_trusts_the_count_only_while_new_and_cur_are_untouched(
    store: MaildirStore, root: Path
) -> None:
    store.append([msg(i) for i in range(3)])
    time.sleep(0.05)  # past the mtime granularity guard
    last = store.status("INBOX")
    assert last.messages == 3 and last.highestmodseq
    # the count is not taken again while the mark stands: a made-up count shows it
    pretend = FolderStatus(last.validity, last.uidnext, 99, last.highestmodseq)
    assert store.status_since("INBOX", pretend).messages == 99
    (root / "INBOX" / "new" / "1800000000.x.host").write_bytes(b"Subject: x\n\nx\n")
    assert store.status_since("INBOX", pretend).messages == 4  # new/ moved: counted again


def test_listing_keeps_no_file_name_per_message_and_later_calls_find_their_files(tmp_path):
    store = MaildirStore(tmp_path / "mail", fsync=False)
    store.connect()
    store.create_folder("INBOX")
    store.select("INBOX")
    uids = store.append([msg(i) for i in range(5)])
    store.select("INBOX")  # a new selection: nothing known of the files
    listing = store.list_messages(0)
    assert list(listing.flags) == sorted(uids)
    assert store._sel is not None and store._sel.loc == {}  # the listing kept no names
    store.set_flags([uids[1]], FLAGGED, 0)
    store.flush()
    assert set(store._sel.loc) == {uids[1]}  # only the file it needed was looked up
    assert store.select("INBOX") and store.list_messages(0).flags[uids[1]] == FLAGGED
    assert [m.uid for m in store.fetch([uids[3], 99])] == [uids[3]]
