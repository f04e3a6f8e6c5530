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

import functools
import os
import re
import time
from array import array
from collections.abc import Callable, Iterator
from itertools import compress, islice

import msgspec

from fastsync.errors import FolderError
from fastsync.stores import maildir_io as mio
from fastsync.stores import maildir_names as mn
from fastsync.uidmap import FLAGS_CODE, SIZES_CODE, UID_CODE, UidMap, UidMapBuilder

_PRESENT = 0x80  # table byte: 0 = no file with this UID, else 0x80 | flags (flags < 0x80)
_TABLE_MAX = 64 << 20  # above this many UIDs, a table would outweigh the sorted arrays
_STRIP = bytes(i & 0x7F for i in range(256))
_CHUNK = 2048  # names read in bulk at a time

Entry = tuple[str, str | None, str, str]  # (base, info, subdir, file name)


class Scanned(msgspec.Struct):
    """What a listing scan found: flags of files with a valid UID, sizes of those above the
    asked UID, files to number (``fresh``), UIDs held by more than one file (``twins``), and
    the (subdir, name) of the files of the UIDs the caller wanted (none of a twin)."""

    flags: UidMap
    sizes: UidMapBuilder
    fresh: list[Entry] = msgspec.field(default_factory=list)
    twins: set[int] = msgspec.field(default_factory=set)
    located: dict[int, tuple[str, str]] = msgspec.field(default_factory=dict)  # the wanted UIDs' files


class UidReader(msgspec.Struct, frozen=True):
    """How one scan reads UIDs from file names. ``general(base)`` is the store's reading (the
    file's valid UID, or 0); names of the shape fastsync writes under ``vhex``
    (``first,U=7,V=1f[,more]``) with a UID below ``limit`` are read in bulk instead, by one
    regular expression over all the names of a directory: no Python steps per field."""

    general: Callable[[str], int]
    vhex: str
    limit: int

    def read(self, names: list[str]) -> Iterator[tuple[str, str | None, int]]:
        """(base, info, uid) of each name; uid 0 when it has none that is valid."""
        text = "\n".join(names)
        if text.count("\n") != len(names) - 1:  # a name with a newline: one at a time
            for name in names:
                base, info = mn.split_name(name)
                yield base, info, self.general(base)
            return
        limit, general, split = self.limit, self.general, mn.split_name
        for m in _shape(self.vhex).finditer(text):
            base, digits, info, other = m.groups()
            if other:
                base, info2 = split(other)
                yield base, info2, general(base)
                continue
            uid = int(digits)
            yield base, info[1:] if info is not None else None, uid if uid < limit else general(base)


@functools.lru_cache(maxsize=64)
def _shape(vhex: str) -> re.Pattern[str]:
    """A name as mn.with_uid writes it (groups: base, UID, ":info") or anything else (last
    group). The base holds no ':' (split_name splits at the last one) and the first field no
    ',' (so U and V are the first fields after it); the UID has no leading zero."""
    return re.compile(
        rf"^(?:([^,:\n]*,U=([1-9][0-9]*),V={re.escape(vhex)}(?:,[^:\n]*)?)(:[^:\n]*)?|(.+))$", re.M
    )


Stable = Callable[[tuple[int, ...], int], None]  # (stamps of new/ and cur/, files in them)


def _walk(
    folder: str, visit: Callable[[str, list[str]], None], reset: Callable[[], None], stable: Stable | None
) -> None:
    """Call ``visit(subdir, names)`` with the message files of new/, then of cur/ (a chunk
    of names at a time), consistently: when a scan was not stable, ``reset()`` and scan
    again. ``stable(stamps, count)`` hears of a scan that no change can have overlapped
    (the directories' mtimes the same before and after, and older than a clock tick)."""
    attempts = mio._SCAN_ATTEMPTS
    try:
        for attempt in range(attempts):
            before = mio.dir_stamps(folder)
            count = 0
            for sub in mio.SCANNED:
                with os.scandir(os.path.join(folder, sub)) as it:
                    names = (e.name for e in it if e.name[0] != "." and e.is_file())
                    while chunk := list(islice(names, _CHUNK)):  # in chunks: a million names
                        visit(sub, chunk)  # at once would be 100 MB
                        count += len(chunk)
            after = mio.dir_stamps(folder)
            if before == after:
                if time.time_ns() - max(after) > mio.TICK_NS:
                    if stable is not None:
                        stable(after, count)
                    return
                if attempt == attempts - 1:
                    return
                time.sleep(mio.TICK_NS / 1e9)
            reset()
    except OSError as e:
        raise FolderError(f"Maildir folder {folder!r}: cannot list it: {mio.reason(e)}") from e
    raise FolderError(f"Maildir folder {folder!r}: new/ and cur/ kept changing over {attempts} scans")


def scan_listing(
    folder: str,
    reader: UidReader,
    sizes_above: int,
    stable: Stable | None = None,
    want: set[int] | None = None,
) -> Scanned:
    """Scan a folder for its listing; sizes (file sizes) are taken for UIDs above ``sizes_above``,
    and the files of the UIDs in ``want`` are noted (``located``)."""
    if reader.limit > _TABLE_MAX:
        return _scan_sparse(folder, reader, sizes_above, stable, want)
    table = bytearray(max(reader.limit, 1))
    out = Scanned(flags=UidMap(), sizes=UidMapBuilder(SIZES_CODE))
    info_flags = functools.lru_cache(maxsize=256)(mn.info_flags)  # a folder has few distinct infos
    wanted = want or ()

    def visit(sub: str, names: list[str]) -> None:
        cur = sub == "cur"
        for base, info, uid in reader.read(names):
            if uid == 0:
                out.fresh.append((base, info, sub, mn.join_name(base, info)))
            elif table[uid]:
                out.twins.add(uid)
            else:
                table[uid] = _PRESENT | (info_flags(info) if cur else 0)
                if uid > sizes_above:
                    out.sizes.add(uid, mio.file_size(os.path.join(folder, sub, mn.join_name(base, info))))
                if uid in wanted:
                    out.located[uid] = (sub, mn.join_name(base, info))

    def reset() -> None:
        table[:] = bytes(len(table))
        out.fresh.clear()
        out.twins.clear()
        out.located.clear()
        out.sizes = UidMapBuilder(SIZES_CODE)

    _walk(folder, visit, reset, stable)
    uids = array(UID_CODE, compress(range(len(table)), table))  # C-level: no loop per UID here
    flags = array(FLAGS_CODE, table.replace(b"\0", b"").translate(_STRIP))
    out.flags = UidMap(uids, flags)
    _drop_twins(out)
    return out


def _drop_twins(out: Scanned) -> None:
    """A twin's file is chosen by name once all are known (the store's _part_twins)."""
    for uid in out.twins:
        out.located.pop(uid, None)


def _scan_sparse(
    folder: str, reader: UidReader, sizes_above: int, stable: Stable | None, want: set[int] | None
) -> Scanned:
    """The same for UIDs too far apart for a table: a builder, sorted at the end."""
    out = Scanned(flags=UidMap(), sizes=UidMapBuilder(SIZES_CODE))
    builder = UidMapBuilder(FLAGS_CODE)
    seen: set[int] = set()
    wanted = want or ()

    def visit(sub: str, names: list[str]) -> None:
        for base, info, uid in reader.read(names):
            if uid == 0:
                out.fresh.append((base, info, sub, mn.join_name(base, info)))
            elif uid in seen:
                out.twins.add(uid)
            else:
                seen.add(uid)
                builder.add(uid, mn.info_flags(info) if sub == "cur" else 0)
                if uid > sizes_above:
                    out.sizes.add(uid, mio.file_size(os.path.join(folder, sub, mn.join_name(base, info))))
                if uid in wanted:
                    out.located[uid] = (sub, mn.join_name(base, info))

    def reset() -> None:
        nonlocal builder
        builder = UidMapBuilder(FLAGS_CODE)
        seen.clear()
        out.fresh.clear()
        out.twins.clear()
        out.located.clear()
        out.sizes = UidMapBuilder(SIZES_CODE)

    _walk(folder, visit, reset, stable)
    out.flags = builder.finish()
    _drop_twins(out)
    return out


def locate(
    folder: str, reader: UidReader, wanted: set[int], stable: Stable | None = None
) -> dict[int, list[tuple[str, str]]]:
    """Every file (subdir, name) holding one of the ``wanted`` UIDs, the lowest base name first."""
    found: dict[int, list[tuple[str, str]]] = {}

    def visit(sub: str, names: list[str]) -> None:
        for base, info, uid in reader.read(names):
            if uid in wanted:
                found.setdefault(uid, []).append((sub, mn.join_name(base, info)))

    _walk(folder, visit, found.clear, stable)
    for names in found.values():
        names.sort(key=lambda sn: mn.split_name(sn[1])[0])
    return found
