"""A Maildir folder's UID counter: ``<folder>/.fastsync-uidvalidity``, "<validity>\\n<next uid>\\n".

UIDs are reserved here, on disk, before any file carries them, so a crash between the
reservation and the renames only wastes UIDs. Range copies of one huge folder run in several
processes at once, so a reservation reads, checks and writes under a lock on the folder
directory. The file is created by link (a second process creating it at the same moment keeps
the first one's validity) and replaced atomically (tmp, fsync, rename, fsync dir). A store that
writes nothing (read-only, dry run) keeps its counters in memory instead.
"""

from __future__ import annotations

import fcntl
import os

from fastsync.errors import FolderError
from fastsync.stores import maildir_io as mio

UIDVALIDITY_FILE = ".fastsync-uidvalidity"
MAX_UID = 0xFFFFFFFF
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def random_validity() -> int:
    """A new UIDVALIDITY in 1..2**32-1 (os.urandom: the secrets module costs its import)."""
    return int.from_bytes(os.urandom(4), "big") % MAX_UID + 1


class UidCounters:
    """The counters of one store's folders; ``label`` names the store in errors."""

    def __init__(self, label: str, *, writes: bool, fsync: bool) -> None:
        self.label = label
        self.writes = writes
        self.fsync = fsync
        self.mem: dict[str, tuple[int, int]] = {}  # no writes: folder dir -> (validity, next uid)

    def read(self, folder: str) -> tuple[int, int]:
        """(validity, next uid) of a folder; created (random validity) when missing."""
        mem = self.mem.get(folder)
        if mem is not None:
            return mem
        path = os.path.join(folder, UIDVALIDITY_FILE)
        try:
            with open(path, "rb") as f:
                text = f.read(256)
        except FileNotFoundError:
            validity = random_validity()
            if not self.writes:
                self.mem[folder] = (validity, 1)
                return validity, 1
            if self._create(folder, validity):
                return validity, 1
            return self.read(folder)  # another process created it first: theirs holds
        except OSError as e:
            raise FolderError(f"{self.label}: cannot read {path!r}: {mio.reason(e)}") from e
        lines = text.split(b"\n")
        try:
            validity, nxt = int(lines[0]), int(lines[1])
        except (IndexError, ValueError):
            validity = nxt = 0
        if not (0 < validity <= MAX_UID and nxt > 0):
            raise FolderError(
                f"{self.label}: {path!r} is damaged (expected '<uidvalidity>\\n<next uid>\\n'); "
                "removing it renumbers the folder"
            )
        return validity, nxt

    def reserve(self, folder: str, name: str, validity: int, nxt: int, n: int, *, sync: bool = True) -> int:
        """Reserve ``n`` UIDs of folder ``name`` (directory ``folder``) at or above ``nxt``, the
        next UID as this store knows it; return the first. Without ``sync`` the caller makes the
        counter durable (one syncfs after its renames)."""
        if not self.writes:
            first = self._check_room(name, nxt, n)
            self.mem[folder] = (validity, first + n)
            return first
        try:
            lock = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise FolderError(f"{self.label}: cannot open folder {name!r}: {mio.reason(e)}") from e
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            on_disk, disk_next = self.read(folder)
            if on_disk != validity:
                raise FolderError(
                    f"{self.label}: folder {name!r} was renumbered while in use "
                    f"(UIDVALIDITY {validity} -> {on_disk})"
                )
            first = self._check_room(name, max(nxt, disk_next), n)
            self._write(folder, validity, first + n, sync=sync)
        finally:
            os.close(lock)  # releases the lock
        return first

    def _check_room(self, name: str, first: int, n: int) -> int:
        if first + n - 1 > MAX_UID:
            raise FolderError(
                f"{self.label}: folder {name!r} has used up its UIDs; removing "
                f"{UIDVALIDITY_FILE} there renumbers it"
            )
        return first

    def _create(self, folder: str, validity: int) -> bool:
        """Create the file unless it exists (False then): written aside, then linked into
        place, which fails rather than replace a file another process created."""
        path = os.path.join(folder, UIDVALIDITY_FILE)
        tmp = f"{path}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        try:
            self._write_private(tmp, f"{validity}\n1\n".encode())
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            if self.fsync:
                mio.fsync_dir(folder)
            return True
        except OSError as e:
            raise FolderError(f"{self.label}: cannot write {path!r}: {mio.reason(e)}") from e
        finally:
            mio.discard(tmp)

    def _write(self, folder: str, validity: int, nxt: int, *, sync: bool = True) -> None:
        """Replace the file atomically (tmp, fsync, rename, fsync dir)."""
        path = os.path.join(folder, UIDVALIDITY_FILE)
        tmp = path + ".tmp"
        try:
            mio.discard(tmp)  # left by a crash
            self._write_private(tmp, f"{validity}\n{nxt}\n".encode(), sync=sync)
            os.replace(tmp, path)
            if self.fsync and sync:
                mio.fsync_dir(folder)
        except OSError as e:
            mio.discard(tmp)
            raise FolderError(f"{self.label}: cannot write {path!r}: {mio.reason(e)}") from e

    def _write_private(self, path: str, data: bytes, *, sync: bool = True) -> None:
        """Create ``path`` (0600, whatever the umask) holding ``data``; synced with fsync on."""
        fd = os.open(path, _CREATE, 0o600)
        try:
            os.fchmod(fd, 0o600)
            mio.write_all(fd, data)
            if self.fsync and sync:
                os.fsync(fd)
        finally:
            os.close(fd)
