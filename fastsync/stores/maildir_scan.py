"""Listing a Maildir folder into compact maps, without keeping a name per message.

A list of (subdir, file name) for a million files is about 150 MB of Python objects. The
listing needs only each file's UID and flags, so the scan keeps one byte per UID (a table
indexed by UID: Maildir UIDs are a dense counter below the folder's next UID), names only
of files that need a UID, and sizes only of new files. Where a message's file is needed
later (read, rename, unlink), the store finds the few it needs with ``locate``.

Both scans read new/ and cur/ consistently (maildir_io.stable_scan's rule: repeat when the
directories' mtimes moved during the scan, or are too recent to tell).
"""

from __future__ import annotations

import os
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import compress

from fastsync.errors import FolderError
from fastsync.stores import maildir_io as mio
from fastsync.stores import maildir_names as mn
from fastsync.uidmap import FLAGS_CODE, SIZES_CODE, UID_CODE, UidMap, UidMapBuilder

_PRESENT = 0x80  # table byte: 0 = no file with this UID, else 0x80 | flags (flags < 0x80)
_TABLE_MAX = 64 << 20  # above this many UIDs, a table would outweigh the sorted arrays
_STRIP = bytes(i & 0x7F for i in range(256))

Entry = tuple[str, str | None, str, str]  # (base, info, subdir, file name)


@dataclass
class Scanned:
    """What a listing scan found: flags of files with a valid UID, sizes of those above the
    asked UID, files to number (``fresh``), and UIDs held by more than one file (``twins``)."""

    flags: UidMap
    sizes: UidMapBuilder
    fresh: list[Entry] = field(default_factory=list)
    twins: set[int] = field(default_factory=set)


def _walk(folder: str, visit: Callable[[str, str], None], reset: Callable[[], None]) -> None:
    """Call ``visit(subdir, name)`` for each message file of new/ and cur/, consistently:
    when a scan was not stable, ``reset()`` and scan again."""
    attempts = mio._SCAN_ATTEMPTS
    try:
        for attempt in range(attempts):
            before = mio.dir_stamps(folder)
            for sub in mio.SCANNED:
                with os.scandir(os.path.join(folder, sub)) as it:
                    for e in it:
                        if not e.name.startswith(".") and e.is_file():
                            visit(sub, e.name)
            after = mio.dir_stamps(folder)
            if before == after:
                if time.time_ns() - max(after) > mio.TICK_NS or attempt == attempts - 1:
                    return
                time.sleep(mio.TICK_NS / 1e9)
            reset()
    except OSError as e:
        raise FolderError(f"Maildir folder {folder!r}: cannot list it: {mio.reason(e)}") from e
    raise FolderError(f"Maildir folder {folder!r}: new/ and cur/ kept changing over {attempts} scans")


def scan_listing(folder: str, uid_of: Callable[[str], int], next_uid: int, sizes_above: int) -> Scanned:
    """Scan a folder for its listing. ``uid_of(base)`` is the file's valid UID (below
    ``next_uid``) or 0; sizes (file sizes) are taken for UIDs above ``sizes_above``."""
    if next_uid > _TABLE_MAX:
        return _scan_sparse(folder, uid_of, sizes_above)
    table = bytearray(max(next_uid, 1))
    out = Scanned(flags=UidMap(), sizes=UidMapBuilder(SIZES_CODE))

    def visit(sub: str, name: str) -> None:
        base, info = mn.split_name(name)
        uid = uid_of(base)
        if uid == 0:
            out.fresh.append((base, info, sub, name))
            return
        if table[uid]:
            out.twins.add(uid)
            return
        table[uid] = _PRESENT | (mn.info_flags(info) if sub == "cur" else 0)
        if uid > sizes_above:
            out.sizes.add(uid, mio.file_size(os.path.join(folder, sub, name)))

    def reset() -> None:
        table[:] = bytes(len(table))
        out.fresh.clear()
        out.twins.clear()
        out.sizes = UidMapBuilder(SIZES_CODE)

    _walk(folder, visit, reset)
    uids = array(UID_CODE, compress(range(len(table)), table))  # C-level: no loop per UID here
    flags = array(FLAGS_CODE, table.replace(b"\0", b"").translate(_STRIP))
    out.flags = UidMap(uids, flags)
    return out


def _scan_sparse(folder: str, uid_of: Callable[[str], int], sizes_above: int) -> Scanned:
    """The same for UIDs too far apart for a table: a builder, sorted at the end."""
    out = Scanned(flags=UidMap(), sizes=UidMapBuilder(SIZES_CODE))
    builder = UidMapBuilder(FLAGS_CODE)
    seen: set[int] = set()

    def visit(sub: str, name: str) -> None:
        base, info = mn.split_name(name)
        uid = uid_of(base)
        if uid == 0:
            out.fresh.append((base, info, sub, name))
        elif uid in seen:
            out.twins.add(uid)
        else:
            seen.add(uid)
            builder.add(uid, mn.info_flags(info) if sub == "cur" else 0)
            if uid > sizes_above:
                out.sizes.add(uid, mio.file_size(os.path.join(folder, sub, name)))

    def reset() -> None:
        nonlocal builder
        builder = UidMapBuilder(FLAGS_CODE)
        seen.clear()
        out.fresh.clear()
        out.twins.clear()
        out.sizes = UidMapBuilder(SIZES_CODE)

    _walk(folder, visit, reset)
    out.flags = builder.finish()
    return out


def locate(folder: str, uid_of: Callable[[str], int], wanted: set[int]) -> dict[int, list[tuple[str, str]]]:
    """Every file (subdir, name) holding one of the ``wanted`` UIDs, the lowest base name first."""
    found: dict[int, list[tuple[str, str]]] = {}

    def visit(sub: str, name: str) -> None:
        uid = uid_of(mn.split_name(name)[0])
        if uid in wanted:
            found.setdefault(uid, []).append((sub, name))

    _walk(folder, visit, found.clear)
    for names in found.values():
        names.sort(key=lambda sn: mn.split_name(sn[1])[0])
    return found
