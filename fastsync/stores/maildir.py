"""The Maildir store: a folder is a directory with cur/, new/ and tmp/; a message is a file.

UIDs live in the file names (``,U=<uid>,V=<validity hex>``, see maildir_names), like
mbsync's native Maildir UIDs; each folder keeps its UIDVALIDITY and next UID in
``<folder>/.fastsync-uidvalidity`` ("<validity>\\n<next uid>\\n"). A file without a valid
UID of this folder (new mail from an MDA, another tool's ``,U=``, a file moved in from
another folder, a copy with a duplicated UID) gets a fresh one when the folder is listed:
the range is reserved on disk first, then the files are renamed, so a crash in between
only wastes UIDs and never gives two files one UID.

Messages are stored with LF line ends (the Maildir convention) and read back as CRLF.
Files are created 0600 and directories 0700 whatever the umask. Folder names go through
folders.maildir_path, so no name reaches outside the root.

With ``readonly`` every write raises FolderError; with ``dry_run`` writes do nothing. In
both, files without a UID are numbered in memory only (stable for the life of this object)
and a missing uidvalidity file is replaced by a random validity in memory. A read-only
folder that holds files without a UID is given such a random validity too: UIDs numbered in
memory could differ next run, so the next run must see a new UIDVALIDITY and re-pair by
content rather than trust them (a dry run commits no state, so it needs no such care).
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import msgspec

from fastsync.errors import FolderError, MessageError, StoreError
from fastsync.folders import folder_name_from_path, maildir_path
from fastsync.model import Fetched, Outgoing, to_crlf
from fastsync.stores import maildir_io as mio
from fastsync.stores import maildir_names as mn
from fastsync.stores import maildir_scan as ms
from fastsync.stores.base import FolderEntry, FolderStatus, Listing, Store
from fastsync.stores.maildir_uids import MAX_UID, UidCounters, random_validity

log = logging.getLogger(__name__)

T = TypeVar("T")

_OWN_PREFIX = ".fastsync"
_MAX_OPEN = 64  # files of one append batch kept open until their fsync
_STORE_FULL = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})

_Entry = tuple[str, str | None, str, str]  # (base, info, subdir, file name)


class AppendError(MessageError):
    """An append batch stopped at one message.

    ``done`` holds the UIDs of the messages before it, in order (they are ``msgs[:len(done)]``,
    stored and synced); the failed message left nothing behind and later ones were not tried.
    """

    def __init__(self, message: str, done: list[int], fatal: bool = False) -> None:
        super().__init__(message)
        self.done = done
        self.fatal = fatal  # the store cannot take more (disk full, quota, read-only fs)


class _Folder(msgspec.Struct):
    """A selected folder and what the last listing found in it."""

    name: str
    dir: str
    validity: int
    next_uid: int
    phantom: bool = False  # created during a dry run: exists in memory only
    # uid -> (subdir, file name) of the files found for reads, renames and unlinks only: a
    # listing keeps no name per message (maildir_scan)
    loc: dict[int, tuple[str, str]] = msgspec.field(default_factory=dict)
    listed: bool = False  # files without a UID have been numbered
    want: set[int] = msgspec.field(default_factory=set)  # UIDs whose files the listing is to find
    dirty: set[str] = msgspec.field(default_factory=set)  # subdirs changed since their last fsync

    @property
    def vhex(self) -> str:
        return f"{self.validity:x}"


class MaildirStore(Store):
    """A Maildir tree under ``root``; ``sep`` "/" nests folders, any other sep keeps them flat."""

    mark_tick = mio.TICK_NS / 1e9

    def __init__(
        self,
        root: Path | str,
        sep: str = ".",
        *,
        fsync: bool = True,
        readonly: bool = False,
        dry_run: bool = False,
        repository: str | None = None,
    ) -> None:
        self._root = Path(root).expanduser()
        self._sep = sep
        self._fsync = fsync
        self._readonly = readonly
        self._dry_run = dry_run
        self._writes = not (readonly or dry_run)
        self._label = f"[Repository {repository}]" if repository else f"Maildir {str(self._root)!r}"
        self._sel: _Folder | None = None
        self._phantoms: set[str] = set()  # folders "created" during a dry run
        self._uids = UidCounters(self._label, writes=self._writes, fsync=fsync)
        # no-write modes only: folder dir -> {base name: UID numbered in memory}
        self._virtual: dict[str, dict[str, int]] = {}
        self._counts: dict[str, tuple[tuple[int, ...], int]] = {}  # dir -> (stamps, files): _counted

    # --- store -------------------------------------------------------------------------

    def connect(self, *, prefetch_listing: bool = False) -> None:
        """Check that the root is (or can be made) a directory; StoreError if unusable. A missing
        root is created (0700) with its first folder, so a run that stops before writing any
        (a configuration error found at discovery) leaves no trace."""
        if self._root.is_dir():
            return
        if self._root.exists():
            raise StoreError(f"{self._label}: root {str(self._root)!r} is not a directory")
        if not self._writes:
            log.info("%s: root %s does not exist; it lists as empty", self._label, self._root)
            return
        base = self._root.parent
        while not base.exists() and base.parent != base:
            base = base.parent
        if not base.is_dir() or not os.access(base, os.W_OK | os.X_OK):
            raise StoreError(
                f"{self._label}: cannot create root {str(self._root)!r}: "
                f"{str(base)!r} is not a writable directory"
            )

    def close(self) -> None:
        try:
            self.flush()
        except FolderError as e:
            log.warning("%s", e)
        self._sel = None

    @property
    def separator(self) -> str:
        return self._sep

    def list_folders(self) -> list[FolderEntry]:
        names: set[str] = set(self._phantoms)
        root = str(self._root)
        if os.path.isdir(root):
            try:
                self._walk(root, mio.is_maildir(root), names)
            except OSError as e:
                raise StoreError(f"{self._label}: cannot list {root!r}: {mio.reason(e)}") from e
        return [FolderEntry(name) for name in sorted(names)]

    def create_folder(self, name: str) -> None:
        path = self._folder_dir(name)
        if mio.is_maildir(path):
            return
        self._check_writable("create folder", name)
        if self._dry_run:
            log.info("dry run: would create Maildir folder %r at %s", name, path)
            self._phantoms.add(name)
            return
        try:
            self._make_dirs(path)
            for sub in ("tmp", "new", "cur"):  # cur/ last: the folder counts once it is complete
                self._mkdir_private(os.path.join(path, sub))
        except OSError as e:
            raise FolderError(
                f"{self._label}: cannot create folder {name!r} at {path!r}: {mio.reason(e)}"
            ) from e

    def status(self, name: str) -> FolderStatus:
        """As select, without selecting. ``highestmodseq`` is the newest mtime (ns) of new/ and
        cur/: it moves whenever a file is added, renamed (flags) or removed, so a caller can
        tell that nothing changed without listing (within the file system's time granularity)."""
        return self._status_of(self._open_folder(name))

    def status_since(self, name: str, last: FolderStatus) -> FolderStatus:
        """status() without counting the files when new/ and cur/ are untouched since ``last``
        was taken: no file was added, removed or renamed there, so the count is ``last``'s."""
        folder = self._open_folder(name)
        if folder.phantom or not last.highestmodseq:
            return self._status_of(folder)
        try:
            stamp = max(os.stat(os.path.join(folder.dir, sub)).st_mtime_ns for sub in mio.SCANNED)
        except OSError as e:
            raise FolderError(f"{self._label}: cannot read folder {name!r}: {mio.reason(e)}") from e
        if stamp != last.highestmodseq:
            return self._status_of(folder)
        return FolderStatus(folder.validity, folder.next_uid, last.messages, stamp)

    def select(self, name: str) -> FolderStatus:
        self.flush()  # the previous folder's renames become durable before we forget them
        self._sel = None
        folder = self._open_folder(name)
        self._sel = folder
        return self._status_of(folder)

    def list_messages(self, sizes_above: int) -> Listing:
        """List new/ and cur/; numbers files without a valid UID (see the module docstring).

        Flags are from the info of files in cur/ (files in new/ have none); sizes are file
        sizes (LF form) of the messages with a UID above ``sizes_above`` or newly numbered.
        """
        sel = self._selected()
        if sel.phantom:
            return Listing(flags={}, sizes={})
        found = ms.scan_listing(sel.dir, self._uid_reader(sel), sizes_above, self._counted(sel), sel.want)
        sel.want = set()
        sel.loc.update(found.located)
        flags, sizes = found.flags, found.sizes
        if found.twins:
            self._part_twins(sel, found)
        for uid, sub, _name, info, size in self._number(sel, found.fresh):  # above every UID so far
            flags.uids.append(uid)
            flags.vals.append(mn.info_flags(info) if sub == "cur" else 0)
            sizes.add(uid, size)
        sel.listed = True
        return Listing(flags=flags, sizes=sizes.finish())

    def _uid_reader(self, sel: _Folder) -> ms.UidReader:
        """How one scan of ``sel`` reads each file's valid UID (0: none)."""
        virtual = None if self._writes else self._virtual.setdefault(sel.dir, {})
        vhex, limit = sel.vhex, sel.next_uid

        def uid_of(base: str) -> int:
            uid = mn.uid_of(base, vhex)
            if uid == 0 and virtual is not None:
                uid = virtual.get(base, 0)
            return uid if uid < limit else 0

        return ms.UidReader(general=uid_of, vhex=vhex, limit=limit)

    def _part_twins(self, sel: _Folder, found: ms.Scanned) -> None:
        """Of files sharing a UID, the first by name keeps it (and gives the flags); the
        others join the files to number."""
        for uid, files in ms.locate(sel.dir, self._uid_reader(sel), found.twins).items():
            sub, name = files[0]
            i = found.flags.index(uid)
            if i >= 0:
                found.flags.vals[i] = mn.info_flags(mn.split_name(name)[1]) if sub == "cur" else 0
            for sub, name in files[1:]:
                base, info = mn.split_name(name)
                found.fresh.append((base, info, sub, name))

    def fetch(self, uids: Sequence[int]) -> Iterator[Fetched]:
        sel = self._selected()
        if not sel.listed and not sel.phantom:
            self.list_messages(MAX_UID)  # not listed yet (a fetch of a whole UID range): number the files

        def read(sub: str, name: str) -> tuple[int, float, bytes]:
            with open(os.path.join(sel.dir, sub, name), "rb") as f:
                data = f.read()
                mtime = os.fstat(f.fileno()).st_mtime
            return (mn.info_flags(mn.split_name(name)[1]) if sub == "cur" else 0), mtime, data

        for uid, (flags, mtime, data) in self._each(sel, uids, "read", read):
            yield Fetched(uid, flags, mtime, to_crlf(data))

    def append(self, msgs: list[Outgoing]) -> list[int | None]:
        """Store ``msgs`` into cur/ (flags in the name, ``:2,`` when none) and return their UIDs.

        All files are written to tmp/ and synced (one syncfs), then given UIDs with one write of
        the uidvalidity file and renamed into cur/, and a second syncfs makes the counter and
        the renames durable (without syncfs: an fsync per file, the counter and cur/). If writing or moving
        one message fails (disk full...) its tmp file is removed, the messages before it
        are completed and AppendError (a MessageError) carries their UIDs in ``done``.
        """
        sel = self._writable("append to")
        if not msgs:
            return []
        if self._dry_run or sel.phantom:
            first = self._reserve(sel, len(msgs))
            return list(range(first, first + len(msgs)))
        staged: list[str] = []  # unique names in tmp/, complete
        uids: list[int] = []
        tmpdir, curdir = os.path.join(sel.dir, "tmp"), os.path.join(sel.dir, "cur")
        try:
            problem = self._write_batch(sel, msgs, staged)
            if staged:
                # With syncfs the counter is made durable by the one syncfs after the renames.
                first = self._reserve(sel, len(staged), sync=mio.SYNCFS is None)
                for k, unique in enumerate(staged):
                    name = mn.join_name(
                        mn.with_uid(unique, first + k, sel.vhex), mn.info_with_flags(None, msgs[k].flags)
                    )
                    try:
                        os.rename(os.path.join(tmpdir, unique), os.path.join(curdir, name))
                    except OSError as e:
                        problem = (k, e)
                        break
                    uids.append(first + k)
        finally:
            for unique in staged[len(uids) :]:
                mio.discard(os.path.join(tmpdir, unique))
        if uids and self._fsync:
            if mio.SYNCFS is not None:
                self._syncfs(sel, curdir)  # the renames and the UID counter, before any record
            else:
                self._sync_dir(sel, "cur")
        if problem is not None:
            k, err = problem
            raise AppendError(
                f"{self._label}: folder {sel.name!r}: cannot store message {k + 1} of {len(msgs)} "
                f"(source UID {msgs[k].src_uid}): {mio.reason(err)}; {len(uids)} stored before it",
                uids,
                fatal=err.errno in _STORE_FULL,
            )
        return list(uids)

    def will_change(self, uids: list[int]) -> None:
        sel = self._selected()
        if sel.phantom or self._readonly or self._dry_run:
            return
        missing = {u for u in uids if u not in sel.loc}
        if not sel.listed:
            sel.want |= missing  # the listing finds them on its way
        elif missing:
            self._locate(sel, missing)

    def set_flags(self, uids: list[int], add: int, remove: int) -> None:
        """Rename the files (new/ -> cur/ when they get flags); the directory sync is in flush()."""
        sel = self._writable("change flags in")
        if not uids or not (add or remove) or self._dry_run:
            return

        def reflag(sub: str, name: str) -> tuple[str, str] | None:
            base, info = mn.split_name(name)
            old = mn.info_flags(info) if sub == "cur" else 0
            new = (old | add) & ~remove
            if new == old:
                return None
            target = mn.join_name(base, mn.info_with_flags(info, new))
            os.rename(os.path.join(sel.dir, sub, name), os.path.join(sel.dir, "cur", target))
            sel.dirty.update((sub, "cur"))
            return "cur", target

        for uid, moved in self._each(sel, uids, "rename", reflag):
            if moved is not None:
                sel.loc[uid] = moved

    def delete(self, uids: list[int]) -> None:
        sel = self._writable("delete from")
        if not uids or self._dry_run:
            return

        def unlink(sub: str, name: str) -> None:
            os.unlink(os.path.join(sel.dir, sub, name))
            sel.dirty.add(sub)

        for uid, _ in self._each(sel, uids, "delete", unlink):
            del sel.loc[uid]

    def identities(self, uids: list[int]) -> dict[int, bytes]:
        sel = self._selected()

        def key(sub: str, name: str) -> bytes:
            return mio.identity(os.path.join(sel.dir, sub, name))

        return dict(self._each(sel, uids, "read", key))

    def identity_keys(self, uids: list[int]) -> tuple[dict[int, bytes], dict[int, bytes]]:
        sel = self._selected()

        def keys(sub: str, name: str) -> tuple[bytes, bytes | None]:
            return mio.identity_keys(os.path.join(sel.dir, sub, name))

        both = dict(self._each(sel, uids, "read", keys))
        loose = {uid: second for uid, (_, second) in both.items() if second is not None}
        return {uid: first for uid, (first, _) in both.items()}, loose

    def flush(self) -> None:
        """fsync new/ and cur/ of the selected folder where files were renamed or removed."""
        sel = self._sel
        if sel is None or not sel.dirty:
            return
        dirty, sel.dirty = sel.dirty, set()
        if self._fsync:
            for sub in sorted(dirty):
                self._sync_dir(sel, sub)

    # --- folders -------------------------------------------------------------------------

    def _walk(self, dirpath: str, in_maildir: bool, names: set[str]) -> None:
        """Add the folders under ``dirpath``; nested layouts ("/") are walked recursively."""
        with os.scandir(dirpath) as it:
            entries = list(it)
        for e in entries:
            if e.name.startswith(_OWN_PREFIX) or (in_maildir and e.name in mio.SUBDIRS):
                continue
            try:
                if not e.is_dir():
                    continue
                nested = self._sep == "/" and not e.is_symlink()  # a symlink could loop
            except OSError:
                continue
            is_folder = mio.is_maildir(e.path)
            if is_folder:
                try:
                    names.add(folder_name_from_path(self._root, Path(e.path), self._sep))
                except FolderError as err:
                    log.warning("%s: directory %s skipped: %s", self._label, e.path, err)
            if nested:
                try:
                    self._walk(e.path, is_folder, names)
                except OSError as err:  # one unreadable directory hides only what is below it
                    log.warning("%s: cannot list %s: %s", self._label, e.path, mio.reason(err))

    def _folder_dir(self, name: str) -> str:
        return str(maildir_path(self._root, name, self._sep))

    def _open_folder(self, name: str) -> _Folder:
        path = self._folder_dir(name)
        exists = mio.is_maildir(path)
        if not exists and name not in self._phantoms:
            raise FolderError(f"{self._label}: folder {name!r} does not exist (no Maildir at {path!r})")
        validity, nxt = self._uids.read(path)
        if self._readonly and exists and path not in self._uids.mem:
            probe = _Folder(name, path, validity, nxt)
            if ms.scan_listing(probe.dir, self._uid_reader(probe), MAX_UID).fresh:
                validity, nxt = random_validity(), 1
                self._uids.mem[path] = (validity, nxt)
                log.info(
                    "%s: read-only folder %r has files without a UID; they are numbered in memory "
                    "under a new UIDVALIDITY",
                    self._label,
                    name,
                )
        return _Folder(name, path, validity, nxt, phantom=not exists)

    def _counted(self, sel: _Folder) -> ms.Stable:
        """What a stable scan of ``sel`` tells _status_of: its file count, while the
        directories' mtimes stay as they were (any file added, renamed or removed moves them)."""
        return lambda stamps, count: self._counts.__setitem__(sel.dir, (stamps, count))

    def _status_of(self, folder: _Folder) -> FolderStatus:
        if folder.phantom:
            return FolderStatus(folder.validity, folder.next_uid, 0)
        try:
            stamps = mio.dir_stamps(folder.dir)
            known = self._counts.get(folder.dir)
            if known is not None and known[0] == stamps:
                count = known[1]  # a stable scan counted them, and nothing moved since
            else:
                count = 0
                for sub in mio.SCANNED:
                    with os.scandir(os.path.join(folder.dir, sub)) as it:  # streamed, not a list
                        count += sum(1 for e in it if e.name[0] != "." and e.is_file())
            stamp = max(stamps)
        except OSError as e:
            raise FolderError(f"{self._label}: cannot read folder {folder.name!r}: {mio.reason(e)}") from e
        if time.time_ns() - stamp < mio.TICK_NS:
            stamp = 0  # a change later in this same clock tick would not move it: unknown
        return FolderStatus(folder.validity, folder.next_uid, count, stamp)

    def _make_dirs(self, path: str) -> None:
        """Create ``path`` and its missing parents, each 0700 and synced into its parent."""
        missing: list[str] = []
        p = path
        while not os.path.isdir(p):
            missing.append(p)
            parent = os.path.dirname(p)
            if parent == p:
                break
            p = parent
        for d in reversed(missing):
            self._mkdir_private(d)

    def _mkdir_private(self, path: str) -> None:
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            if os.path.isdir(path):
                return
            raise
        os.chmod(path, 0o700)  # the umask may have taken bits away, or left others
        if self._fsync:
            mio.fsync_dir(os.path.dirname(path))

    # --- UIDs ----------------------------------------------------------------------------

    def _reserve(self, sel: _Folder, n: int, *, sync: bool = True) -> int:
        """Reserve ``n`` UIDs of the folder (on disk, before any file carries them); the first."""
        first = self._uids.reserve(sel.dir, sel.name, sel.validity, sel.next_uid, n, sync=sync)
        sel.next_uid = first + n
        return first

    def _number(self, sel: _Folder, fresh: list[_Entry]) -> Iterator[tuple[int, str, str, str | None, int]]:
        """Give each file of ``fresh`` a UID; yield (uid, subdir, file name, info, size).

        Name order is arrival order for time-based names, so older mail gets lower UIDs. A
        file that vanished meanwhile is left out: it was never in any listing, so nothing
        can take it for deleted.
        """
        if not fresh:
            return
        fresh.sort(key=lambda item: item[0])
        first = self._reserve(sel, len(fresh))
        virtual = None if self._writes else self._virtual.setdefault(sel.dir, {})
        for k, (base, info, sub, old) in enumerate(fresh):
            uid = first + k
            path = os.path.join(sel.dir, sub, old)
            size = mio.file_size(path)
            if virtual is not None:
                virtual[base] = uid
                yield uid, sub, old, info, size
                continue
            name = mn.join_name(mn.with_uid(base, uid, sel.vhex), info)
            if not mn.fits(name):  # a long foreign name: start afresh, keeping the flags
                name = mn.join_name(mn.with_uid(mn.unique_base(), uid, sel.vhex), info)
            try:
                os.rename(path, os.path.join(sel.dir, sub, name))
            except FileNotFoundError:
                log.debug("%s: %s vanished before it got UID %d", self._label, path, uid)
                continue
            except OSError as err:
                raise FolderError(
                    f"{self._label}: folder {sel.name!r}: cannot rename {path!r} to give it a UID: "
                    f"{mio.reason(err)}"
                ) from err
            sel.dirty.add(sub)
            yield uid, sub, name, info, size

    def _locate(self, sel: _Folder, wanted: set[int]) -> None:
        """Find the files of these UIDs (one scan); a UID without a file is forgotten."""
        found = ms.locate(sel.dir, self._uid_reader(sel), wanted, self._counted(sel))
        for uid in wanted:
            files = found.get(uid)
            if files:
                sel.loc[uid] = files[0]
            else:
                sel.loc.pop(uid, None)

    def _each(
        self, sel: _Folder, uids: Sequence[int], what: str, action: Callable[[str, str], T]
    ) -> Iterator[tuple[int, T]]:
        """Run ``action(subdir, name)`` on the file of each listed UID; yield (uid, result).

        A file renamed meanwhile (a mail reader changing flags) is found again with one rescan
        per call; a file gone for good is left out. Other OSErrors are FolderError.
        """
        relocated = False
        if not sel.phantom:
            missing = {u for u in uids if u not in sel.loc}
            if missing:
                self._locate(sel, missing)
        for uid in uids:
            while uid in sel.loc:
                sub, name = sel.loc[uid]
                try:
                    result = action(sub, name)
                except FileNotFoundError:
                    if relocated:
                        log.debug("%s: UID %d of %r vanished", self._label, uid, sel.name)
                        break
                    self._locate(sel, set(uids))
                    relocated = True
                    continue
                except OSError as e:
                    raise FolderError(
                        f"{self._label}: folder {sel.name!r}: cannot {what} {sub}/{name}: {mio.reason(e)}"
                    ) from e
                yield uid, result
                break

    # --- writing ---------------------------------------------------------------------------

    def _selected(self) -> _Folder:
        if self._sel is None:
            raise FolderError(f"{self._label}: no folder selected")
        return self._sel

    def _check_writable(self, what: str, name: str) -> None:
        if self._readonly:
            raise FolderError(f"{self._label} is read-only: cannot {what} {name!r}")

    def _writable(self, what: str) -> _Folder:
        sel = self._selected()
        self._check_writable(what, sel.name)
        return sel

    def _write_batch(
        self, sel: _Folder, msgs: list[Outgoing], staged: list[str]
    ) -> tuple[int, OSError] | None:
        """Write ``msgs`` into tmp/ in order until one fails; return (its index, the error).

        ``staged`` receives the unique names of the complete files; with fsync on they are
        all synced when this returns (files are kept open and synced together, which lets
        the disk write them in one go).
        """
        fds: list[int] = []
        problem: tuple[int, OSError] | None = None
        tmpdir = os.path.join(sel.dir, "tmp")
        # With syncfs(2) one call at the end makes the whole batch durable: files are closed
        # as soon as written. Without it, each file is fsynced, a handful kept open at a time.
        per_file = self._fsync and mio.SYNCFS is None
        try:
            for k, msg in enumerate(msgs):
                try:
                    unique, fd = mio.write_tmp(tmpdir, msg)
                except OSError as e:
                    problem = (k, e)
                    break
                staged.append(unique)
                if not per_file:
                    os.close(fd)
                    continue
                fds.append(fd)
                if len(fds) >= _MAX_OPEN:
                    self._sync_close(sel, fds)
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        if per_file:
            self._sync_close(sel, fds)
        elif self._fsync and staged:
            self._syncfs(sel, tmpdir)
        return problem

    def _syncfs(self, sel: _Folder, path: str) -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                mio.syncfs(fd)
            finally:
                os.close(fd)
        except OSError as e:
            raise FolderError(
                f"{self._label}: folder {sel.name!r}: cannot sync new messages: {mio.reason(e)}"
            ) from e

    def _sync_close(self, sel: _Folder, fds: list[int]) -> None:
        error: OSError | None = None
        for fd in fds:
            try:
                os.fsync(fd)
            except OSError as e:
                error = error or e
            finally:
                os.close(fd)
        fds.clear()
        if error is not None:
            raise FolderError(
                f"{self._label}: folder {sel.name!r}: cannot sync new messages: {mio.reason(error)}"
            )

    def _sync_dir(self, sel: _Folder, sub: str) -> None:
        try:
            mio.fsync_dir(os.path.join(sel.dir, sub))
        except OSError as e:
            raise FolderError(
                f"{self._label}: folder {sel.name!r}: cannot sync {sub}/: {mio.reason(e)}"
            ) from e
