"""One fastsync per account: an flock on ``<metadata>/Account-<name>/lock``.

The kernel drops an flock when its last descriptor closes, so a lock left by a process that
died (even by SIGKILL) frees itself; the pid written in the file only serves the message.
Processes forked while the lock is held share it (same open file description), so workers
started with ``fork`` keep the account locked until they exit too.

``discard`` (a run that stopped on a configuration error before writing anything) removes the
lock file and the directories ``acquire`` made, while still holding the lock; ``acquire``
therefore checks, once it holds the flock, that its descriptor is still the file at the path,
and starts again if the file was removed meanwhile.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from fastsync.errors import AccountError
from fastsync.state.paths import account_dir


class LockedError(AccountError):
    """Another fastsync process is syncing this account."""


class AccountLock:
    """Context manager holding the lock of one account; LockedError if another holds it."""

    def __init__(self, metadata_dir: Path, account: str) -> None:
        self.account = account
        self.metadata_dir = metadata_dir
        self.path = account_dir(metadata_dir, account, create=False) / "lock"
        self._fd: int | None = None
        self._made: list[Path] = []  # directories acquire created, deepest last

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        for _attempt in range(100):
            fd = self._open_and_lock()
            if self._still_at_path(fd):
                break
            os.close(fd)  # discarded by its holder between our open and our flock: again
        else:
            raise AccountError(f"cannot lock {self.path}: the file keeps being replaced")
        try:
            # Truncate only once we hold the lock: before, the pid there is the holder's.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            os.close(fd)
            raise AccountError(f"cannot write lock file {self.path}: {e.strerror or e}") from e
        self._fd = fd

    def _open_and_lock(self) -> int:
        try:
            self._made = [p for p in (self.metadata_dir, self.path.parent) if not p.is_dir()]
            account_dir(self.metadata_dir, self.account)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise AccountError(f"cannot open lock file {self.path}: {e.strerror or e}") from e
        try:
            os.fchmod(fd, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_pid(fd)
            os.close(fd)
            raise LockedError(
                f"account {self.account} is locked by another fastsync (pid {holder}); lock file {self.path}"
            ) from None
        except OSError as e:
            os.close(fd)
            raise AccountError(f"cannot lock {self.path}: {e.strerror or e}") from e
        return fd

    def _still_at_path(self, fd: int) -> bool:
        try:
            here, there = os.fstat(fd), os.stat(self.path)
        except FileNotFoundError:
            return False
        return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)

    def discard(self) -> None:
        """Remove the lock file, and the directories ``acquire`` created if they are empty, then
        unlock: for a run that wrote nothing else (it stopped on a configuration error)."""
        if self._fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
            for d in reversed(self._made):
                d.rmdir()
        except OSError:
            pass  # something else was written there meanwhile: it stays, and so does the rest
        self.release()

    def release(self) -> None:
        """Unlock; the file stays (removing it would race with a process opening it)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # closing the last descriptor releases the flock

    def __enter__(self) -> AccountLock:
        self.acquire()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def _read_pid(fd: int) -> str:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return "unknown"
    return text if text.isdigit() else "unknown"
