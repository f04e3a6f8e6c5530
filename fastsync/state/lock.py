"""One fastsync per account: an flock on ``<metadata>/Account-<name>/lock``.

The kernel drops an flock when its last descriptor closes, so a lock left by a process that
died (even by SIGKILL) frees itself; the pid written in the file only serves the message.
Processes forked while the lock is held share it (same open file description), so workers
started with ``fork`` keep the account locked until they exit too.
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

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"lock {self.path} is already held by this object")
        try:
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
        try:
            # Truncate only once we hold the lock: before, the pid there is the holder's.
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            os.close(fd)
            raise AccountError(f"cannot write lock file {self.path}: {e.strerror or e}") from e
        self._fd = fd

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
