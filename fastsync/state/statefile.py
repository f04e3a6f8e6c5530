"""The files of one folder pair's state: a snapshot, and a journal of what happened since.

Crash safety rests on three rules. A commit writes ``<path>.new``, fsyncs it, renames it over
``<path>``, fsyncs the directory, and only then unlinks the journal. Every snapshot carries a
random token and a journal names the token of the snapshot it extends, so a journal that
survived a crash between the rename and the unlink is recognised as stale and dropped
instead of being replayed twice. A torn last journal record (a crash during an append) is
ignored and cut off before the next append.

Files are 0600; nothing here deletes a state it could not read: after a corrupt load, the
next journal() or commit() moves the unreadable files aside (``.corrupt``) before writing.

Part states (``<path>.part<k>``, each a StateFile of its own) hold the pairs recorded by the
range copies of a huge folder (workers/split.py). load() merges them into the state before
replaying the journal; the next commit() makes them part of the snapshot, and only then are
they removed. A part whose UIDVALIDITYs differ from the state's adds nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import time
from pathlib import Path

from fastsync.errors import FolderError
from fastsync.state import codec
from fastsync.state.pairs import PairTable
from fastsync.state.paths import make_private_dirs
from fastsync.state.records import FolderState, JournalRecord, apply_record

log = logging.getLogger(__name__)

_NO_SNAPSHOT = 0  # the token a journal names when it extends "no state yet"
_FILE_MODE = 0o600


class StateCorrupt(FolderError):
    """The state of a folder pair cannot be read; the engine re-pairs that folder by content."""


class StateTooNew(FolderError):
    """The state was written by a newer fastsync; the folder pair is left alone."""


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def part_path(path: Path, part: int) -> Path:
    """The state file of range copy ``part`` (1, 2, ...) of the folder pair whose state is ``path``."""
    return path.with_name(f"{path.name}.part{part}")


_listing_cache: dict[Path, tuple[int, list[str]]] = {}


def _names_in(directory: Path) -> list[str]:
    """The names in a state directory, listed again only when it changed (loads of many
    folder pairs in one directory would otherwise list it once each)."""
    try:
        stamp = os.stat(directory).st_mtime_ns
    except FileNotFoundError:
        return []
    cached = _listing_cache.get(directory)
    if cached is None or cached[0] != stamp or time.time_ns() - stamp < 50_000_000:
        cached = (stamp, os.listdir(directory))
        _listing_cache[directory] = cached
    return cached[1]


def _read(path: Path) -> bytes | None:
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


class StateFile:
    """The snapshot ``path`` and its journal ``path.journal``. One process at a time (the
    account lock); not thread-safe.

    Use: ``load()`` once, then ``journal()`` each batch after applying it, ``commit()`` at the
    end; ``journal()`` before any ``load()`` or ``commit()`` is a RuntimeError.
    """

    def __init__(self, path: Path, fsync: bool = True) -> None:
        self.path = path
        self.fsync = fsync
        self.journal_path = path.with_name(path.name + ".journal")
        self.new_path = path.with_name(path.name + ".new")
        self._token: int | None = None  # token of the snapshot on disk; None = not known yet
        self._fd: int | None = None  # open journal, append mode
        self._journal_valid = False  # the journal on disk extends _token and may be appended to
        self._corrupt = False  # the last load failed: files on disk are unreadable
        self._too_new: StateTooNew | None = None
        self._parts: list[Path] = []  # part states merged by load(); removed after the next commit

    # -- reading ---------------------------------------------------------------------

    def load(self) -> FolderState | None:
        """The state, or None when there is none (first sync).

        StateCorrupt (a FolderError naming the file) when the snapshot or a journal record in
        the middle is damaged: treat the folder pair as having no state. StateTooNew when a
        newer fastsync wrote it. FolderError when the files cannot be read at all.
        """
        self.close()
        self._token, self._journal_valid, self._corrupt, self._too_new = None, False, False, None
        self._parts = []
        try:
            state, token = self._load_snapshot()
            marks: list[int] = []
            state = self._merge_parts(state, marks)  # before the journal: it may name their pairs
            state = self._replay(state, token)
            if state is not None and marks:
                # The earliest change mark: a flag changed after any part's copy is listed since it.
                state.far_modseq = min(state.far_modseq, *marks) if all(marks) and state.far_modseq else 0
        except StateCorrupt:
            self._token, self._corrupt = _NO_SNAPSHOT, True
            raise
        except StateTooNew as e:
            self._too_new = e
            raise
        except OSError as e:
            raise FolderError(f"cannot read state {self.path}: {e.strerror or e}") from e
        self._token = token
        return state

    def _load_snapshot(self) -> tuple[FolderState | None, int]:
        data = _read(self.path)
        if data is None:
            return None, _NO_SNAPSHOT
        try:
            return codec.decode_snapshot(data)
        except codec.NewerFormatError as e:
            raise StateTooNew(
                f"state {self.path} was written by a newer fastsync ({e}); this folder pair is skipped"
            ) from e
        except codec.FormatError as e:
            raise StateCorrupt(
                f"state {self.path} is corrupt ({e}); the folder pair will be re-paired by content"
            ) from e

    def _merge_parts(self, state: FolderState | None, marks: list[int]) -> FolderState | None:
        """Add the pairs of the part states to ``state``; their change marks go to ``marks``."""
        pattern = re.compile(re.escape(self.path.name) + r"\.part\d+")
        names = sorted(n for n in _names_in(self.path.parent) if pattern.fullmatch(n))
        tables: list[PairTable] = []
        for name in names:
            path = self.path.parent / name
            self._parts.append(path)
            try:
                part = StateFile(path, self.fsync).load()
            except FolderError as e:  # an unreadable part only loses pairs: they are re-paired by content
                log.warning("ignoring part state: %s", e)
                continue
            if part is None:
                continue
            if state is None:
                state = FolderState(
                    far_validity=part.far_validity,
                    near_validity=part.near_validity,
                    far_modseq=part.far_modseq,
                )
            if (part.far_validity, part.near_validity) != (state.far_validity, state.near_validity):
                log.info("ignoring part state %s: it belongs to other UIDVALIDITYs", path)
                continue
            marks.append(part.far_modseq)
            tables.append(part.pairs)
        if state is not None:
            # Pairs already there (a crash came between the commit and the removal of the
            # parts) are skipped; the parts of a first pull are appended by whole columns.
            state.pairs.merge(tables)
        return state

    def _remove_parts(self) -> None:
        for path in self._parts:
            for p in (path, path.with_name(path.name + ".journal"), path.with_name(path.name + ".new")):
                p.unlink(missing_ok=True)
        self._parts = []

    def _replay(self, state: FolderState | None, token: int) -> FolderState | None:
        data = _read(self.journal_path)
        if data is None:
            return state
        try:
            parsed = codec.parse_journal(data)
        except codec.NewerFormatError as e:
            raise StateTooNew(
                f"journal {self.journal_path} was written by a newer fastsync ({e}); "
                "this folder pair is skipped"
            ) from e
        except codec.FormatError as e:
            raise StateCorrupt(
                f"journal {self.journal_path}: {e}; the folder pair will be re-paired by content"
            ) from e
        if parsed.token != token:
            # Left by a crash after a commit's rename (its records are in the snapshot), or
            # never completed its first write: either way it adds nothing.
            log.info("dropping stale journal %s", self.journal_path)
            self.journal_path.unlink()
            return state
        result = state if state is not None else FolderState()
        for index, rec in enumerate(parsed.records):
            try:
                apply_record(result, rec)
            except (ValueError, KeyError) as e:
                raise StateCorrupt(
                    f"journal {self.journal_path}: record {index} does not apply "
                    f"({e!r}); the folder pair will be re-paired by content"
                ) from e
        if parsed.torn is not None:
            log.warning("journal %s: ignoring a torn last record (%s)", self.journal_path, parsed.torn)
            with open(self.journal_path, "r+b") as f:
                f.truncate(parsed.end)
                if self.fsync:
                    os.fsync(f.fileno())
        self._journal_valid = True
        return result

    # -- writing ---------------------------------------------------------------------

    def journal(self, rec: JournalRecord) -> None:
        """Append one record durably (fsync when ``self.fsync``). FolderError if it fails."""
        if self._token is None:
            if self._too_new is not None:
                raise self._too_new
            raise RuntimeError(f"{self.path}: journal() before load() or commit()")
        frame = codec.encode_record(rec)
        try:
            if self._fd is None:
                frame = self._open_journal() + frame
            _write_all(self._fd_or_fail(), frame)
            if self.fsync:
                os.fdatasync(self._fd_or_fail())
        except OSError as e:
            self.close()
            raise FolderError(f"cannot write journal {self.journal_path}: {e.strerror or e}") from e

    def _fd_or_fail(self) -> int:
        assert self._fd is not None
        return self._fd

    def _open_journal(self) -> bytes:
        """Open the journal for appending; the header to write first, if it is new."""
        assert self._token is not None
        self._set_corrupt_aside()
        if self._journal_valid:
            self._fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            return b""
        make_private_dirs(self.path.parent)
        self._fd = os.open(
            self.journal_path,
            os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC,
            _FILE_MODE,
        )
        os.fchmod(self._fd, _FILE_MODE)
        if self.fsync:
            _fsync_dir(self.path.parent)
        self._journal_valid = True
        return codec.journal_head(self._token)

    def commit(self, state: FolderState) -> None:
        """Make ``state`` the snapshot and drop the journal (see the module docstring)."""
        if self._too_new is not None:
            raise self._too_new
        self.close()
        token = int.from_bytes(os.urandom(8), "little") or 1
        data = codec.encode_snapshot(state, token)
        try:
            self._set_corrupt_aside()
            make_private_dirs(self.path.parent)
            fd = os.open(self.new_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, _FILE_MODE)
            try:
                os.fchmod(fd, _FILE_MODE)
                _write_all(fd, data)
                if self.fsync:
                    os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(self.new_path, self.path)
            if self.fsync:
                _fsync_dir(self.path.parent)
            # From here the snapshot is the truth; a journal surviving a crash now is stale
            # (its token differs), so the unlink need not be made durable.
            self._token = token
            self._journal_valid = False
            self.journal_path.unlink(missing_ok=True)
            self._remove_parts()  # their pairs are in the snapshot now
        except OSError as e:
            with contextlib.suppress(OSError):
                self.new_path.unlink(missing_ok=True)
            raise FolderError(f"cannot write state {self.path}: {e.strerror or e}") from e

    def discard(self) -> None:
        """Remove the state of this folder pair (snapshot, journal, leftovers)."""
        self.close()
        try:
            for p in (self.path, self.journal_path, self.new_path):
                p.unlink(missing_ok=True)
            self._remove_parts()
            if self.fsync and self.path.parent.is_dir():
                _fsync_dir(self.path.parent)
        except OSError as e:
            raise FolderError(f"cannot remove state {self.path}: {e.strerror or e}") from e
        self._token, self._journal_valid, self._corrupt, self._too_new = _NO_SNAPSHOT, False, False, None

    def close(self) -> None:
        """Close the journal file if open (records already written stay)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)

    def _set_corrupt_aside(self) -> None:
        """After a failed load, keep the unreadable files for inspection and start afresh."""
        if not self._corrupt:
            return
        for p in (self.path, self.journal_path):
            if p.exists():
                aside = p.with_name(p.name + ".corrupt")
                os.replace(p, aside)
                log.warning("moved unreadable %s aside to %s", p, aside)
        if self.fsync:
            _fsync_dir(self.path.parent)
        self._corrupt = False
        self._journal_valid = False
