"""File-level helpers of the Maildir store: consistent scans, crash-safe writes, syncs.

Everything here works on paths and file descriptors; the store (maildir.py) decides what to
write where. Writes are 0600 files created with O_EXCL in tmp/, never through a symlink.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from typing import cast

from fastsync.errors import FolderError
from fastsync.model import Outgoing, content_key, loose_key, to_crlf, to_lf
from fastsync.stores import maildir_names as mn

log = logging.getLogger(__name__)

SUBDIRS = ("cur", "new", "tmp")
# new/ before cur/: a file a mail reader moves new/ -> cur/ during the scan is then seen
# (perhaps twice), never missed.
SCANNED = ("new", "cur")
TICK_NS = 20_000_000  # directory mtimes may be this coarse (kernel clock tick, with margin)
_SCAN_ATTEMPTS = 10
_CHUNK = 1 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def stable_scan(folder: str) -> list[tuple[str, str]]:
    """(subdir, file name) of the message files in new/ and cur/, read consistently.

    readdir may miss a file renamed while it runs, and a missed file would look deleted.
    So the directories' mtimes are compared before and after, and the scan is repeated
    when they moved, or when they are so recent that a change in the same clock tick
    could not show.
    """
    for attempt in range(_SCAN_ATTEMPTS):
        before = dir_stamps(folder)
        entries: list[tuple[str, str]] = []  # names, not DirEntry objects: a third of the memory
        for sub in SCANNED:
            with os.scandir(os.path.join(folder, sub)) as it:
                entries.extend((sub, e.name) for e in it if not e.name.startswith(".") and e.is_file())
        after = dir_stamps(folder)
        if before == after:
            if time.time_ns() - max(after) > TICK_NS or attempt == _SCAN_ATTEMPTS - 1:
                return entries
            time.sleep(TICK_NS / 1e9)
    raise FolderError(f"Maildir folder {folder!r}: new/ and cur/ kept changing over {_SCAN_ATTEMPTS} scans")


def dir_stamps(folder: str) -> tuple[int, ...]:
    return tuple(os.stat(os.path.join(folder, sub)).st_mtime_ns for sub in SCANNED)


def is_maildir(path: str) -> bool:
    return all(os.path.isdir(os.path.join(path, sub)) for sub in SUBDIRS)


def file_size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:  # renamed since the scan; the size only guides batching
        return 0


def _load_syncfs() -> Callable[[int], int] | None:
    import ctypes  # here, not at the top: the run that finds nothing to do never writes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.syncfs
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int]
    fn.restype = ctypes.c_int
    return cast(Callable[[int], int], fn)


def __getattr__(name: str) -> Callable[[int], int] | None:
    """``SYNCFS``: libc's syncfs(2), or None where there is none; looked up on first use."""
    if name != "SYNCFS":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    fn = _load_syncfs()
    globals()["SYNCFS"] = fn
    return fn


def syncfs(fd: int) -> bool:
    """syncfs(2) the filesystem holding ``fd``; False when unavailable (caller fsyncs instead)."""
    fn = globals()["SYNCFS"] if "SYNCFS" in globals() else __getattr__("SYNCFS")
    if fn is None:
        return False
    if fn(fd) != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return True


def write_tmp(tmpdir: str, msg: Outgoing) -> tuple[str, int]:
    """Write one message (LF form, mtime = internaldate) to a new 0600 file in ``tmpdir``.

    Returns (its unique name, the open fd). On failure nothing is left behind.
    """
    data = to_lf(msg.data)
    for _ in range(10):
        unique = mn.unique_base()
        path = os.path.join(tmpdir, unique)
        try:
            fd = os.open(path, _CREATE, 0o600)
            break
        except FileExistsError:
            continue
    else:
        raise FileExistsError(f"no free unique file name in {tmpdir}")
    try:
        os.fchmod(fd, 0o600)
        write_all(fd, data)
        when = msg.internaldate
        if math.isfinite(when) and when >= 0:
            os.utime(fd, (when, when))
    except BaseException:
        os.close(fd)
        discard(path)
        raise
    return unique, fd


def write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def identity(path: str) -> bytes:
    """content_key of a stored message as it is on the wire (CRLF form).

    The header ends at the first empty line of the CRLF form, as an IMAP server's
    BODY[HEADER] does; the size is the CRLF size. The file is streamed, so only the header
    block is held in memory.
    """
    header, size, _ = _wire_header(path)
    return content_key(header, size)


def identity_keys(path: str) -> tuple[bytes, bytes | None]:
    """(content_key, loose_key) of a stored message; its INTERNALDATE is the file's mtime."""
    header, size, mtime = _wire_header(path)
    return content_key(header, size), loose_key(header, mtime, size)


def _wire_header(path: str) -> tuple[bytes, int, float]:
    """(header block in CRLF form, CRLF size, mtime) of a message file, streamed."""
    size = 0
    acc = b""
    header: bytes | None = None
    carry = b""  # a trailing CR waits for the next chunk, so CR LF is never split
    with open(path, "rb") as f:
        mtime = os.fstat(f.fileno()).st_mtime
        while True:
            chunk = f.read(_CHUNK)
            data = carry + chunk
            carry = b""
            if chunk and data.endswith(b"\r"):
                data, carry = data[:-1], b"\r"
            piece = to_crlf(data)
            size += len(piece)
            if header is None:
                start = max(0, len(acc) - 3)
                acc += piece
                i = acc.find(b"\r\n\r\n", start)
                if i >= 0:
                    header, acc = acc[:i], b""
            if not chunk:
                break
    return (acc if header is None else header), size, mtime


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def discard(path: str) -> None:
    """Remove a file of ours on a cleanup path; a failure is logged, the original error wins."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as e:
        log.warning("cannot remove %s: %s", path, reason(e))


def reason(e: OSError) -> str:
    return e.strerror or str(e)
