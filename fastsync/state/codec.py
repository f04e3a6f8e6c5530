"""Bytes on disk: the snapshot and the journal of one folder pair. Pure, no file access.

Snapshot: ``b"FSST"``, u8 format version, u32 LE crc32 of the body, then the body: one
msgpack ``array_like`` Struct whose pair table is three blobs (far UIDs and near UIDs as
u32 LE, one flags byte per pair): 9 bytes per pair, decoded without a loop per pair.

Journal: ``b"FSJN"``, u8 format version, u64 LE token of the snapshot it extends, then
records, each u32 LE length + msgpack body + u32 LE crc32 of the body. A journal is only
replayed over the snapshot whose token it names; any other is stale (see statefile.py).

Compatible changes add Struct fields at the end with defaults; an incompatible one bumps the
version, which older readers refuse with NewerFormatError.
"""

from __future__ import annotations

import zlib

import msgspec

from fastsync.state.pairs import PairTable
from fastsync.state.records import FolderState, Header, JournalRecord, apply_record, header_of

SNAPSHOT_MAGIC = b"FSST"
SNAPSHOT_VERSION = 1
JOURNAL_MAGIC = b"FSJN"
JOURNAL_VERSION = 1
_SNAPSHOT_HEAD = len(SNAPSHOT_MAGIC) + 1 + 4
JOURNAL_HEAD = len(JOURNAL_MAGIC) + 1 + 8


class FormatError(ValueError):
    """The bytes are not a state file this version can read; the message says why."""


class NewerFormatError(FormatError):
    """The file was written in a format version newer than this one reads."""

    def __init__(self, kind: str, found: int, known: int) -> None:
        super().__init__(f"{kind} format version {found}, this fastsync reads up to {known}")
        self.found = found


class _Snapshot(msgspec.Struct, array_like=True):
    token: int
    far_validity: int
    near_validity: int
    far_max_uid: int
    near_max_uid: int
    far_modseq: int
    far_uidnext: int
    near_uidnext: int
    far_messages: int
    near_messages: int
    retry_far: list[int]
    retry_near: list[int]
    far_uids: bytes
    near_uids: bytes
    flags: bytes
    near_modseq: int = 0
    # new fields go here, with defaults


_encoder = msgspec.msgpack.Encoder()
_snapshot_decoder = msgspec.msgpack.Decoder(_Snapshot)
_record_decoder = msgspec.msgpack.Decoder(JournalRecord)


def _crc(data: bytes) -> bytes:
    return zlib.crc32(data).to_bytes(4, "little")


def encode_snapshot(state: FolderState, token: int) -> bytes:
    far, near, flags = state.pairs.to_blobs()
    body = _encoder.encode(
        _Snapshot(
            token=token,
            retry_far=sorted(state.retry_far),
            retry_near=sorted(state.retry_near),
            far_uids=far,
            near_uids=near,
            flags=flags,
            **msgspec.structs.asdict(header_of(state)),  # the header fields, one list of them
        )
    )
    return SNAPSHOT_MAGIC + bytes([SNAPSHOT_VERSION]) + _crc(body) + body


def decode_snapshot(data: bytes) -> tuple[FolderState, int]:
    """(state, token) of a snapshot; FormatError (NewerFormatError) when unreadable."""
    if len(data) < _SNAPSHOT_HEAD:
        raise FormatError(f"{len(data)} bytes, shorter than the header")
    if data[:4] != SNAPSHOT_MAGIC:
        raise FormatError("not a fastsync state file (bad magic)")
    version = data[4]
    if version > SNAPSHOT_VERSION:
        raise NewerFormatError("state", version, SNAPSHOT_VERSION)
    if version < 1:
        raise FormatError(f"unknown format version {version}")
    body = data[_SNAPSHOT_HEAD:]
    if _crc(body) != data[5:9]:
        raise FormatError("checksum mismatch")
    try:
        snap = _snapshot_decoder.decode(body)
        table = PairTable.from_blobs(snap.far_uids, snap.near_uids, snap.flags)
    except (msgspec.DecodeError, ValueError) as e:  # ValidationError is a DecodeError
        raise FormatError(str(e)) from e
    state = FolderState(retry_far=set(snap.retry_far), retry_near=set(snap.retry_near), pairs=table)
    apply_record(state, Header(**{name: getattr(snap, name) for name in Header.__struct_fields__}))
    return state, snap.token


def journal_head(token: int) -> bytes:
    return JOURNAL_MAGIC + bytes([JOURNAL_VERSION]) + token.to_bytes(8, "little")


def encode_record(rec: JournalRecord) -> bytes:
    """One framed journal record."""
    body = _encoder.encode(rec)
    return len(body).to_bytes(4, "little") + body + _crc(body)


class ParsedJournal(msgspec.Struct):
    """A journal as read: ``token`` is None when even the header is incomplete (nothing was
    ever durably written to it); ``end`` is the length of its intact part; ``torn`` says why
    the bytes after ``end`` were ignored, or is None when there are none."""

    token: int | None
    records: list[JournalRecord]
    end: int
    torn: str | None


def parse_journal(data: bytes) -> ParsedJournal:
    """Split a journal into records, ignoring a torn last record.

    FormatError (naming the record index) for damage that a crash during an append cannot
    explain: a bad checksum with more records after it, or an intact record that does not
    decode.
    """
    if len(data) < JOURNAL_HEAD:
        # The header goes to disk in the same write as the first record: nothing here counts.
        return ParsedJournal(None, [], 0, "incomplete header" if data else None)
    if data[:4] != JOURNAL_MAGIC:
        raise FormatError("not a fastsync journal (bad magic)")
    if data[4] > JOURNAL_VERSION:
        raise NewerFormatError("journal", data[4], JOURNAL_VERSION)
    if data[4] < 1:
        raise FormatError(f"unknown journal format version {data[4]}")
    token = int.from_bytes(data[5:JOURNAL_HEAD], "little")
    records: list[JournalRecord] = []
    pos, size = JOURNAL_HEAD, len(data)
    view = memoryview(data)
    while pos < size:
        index = len(records)
        if size - pos < 4:
            return ParsedJournal(token, records, pos, f"record {index}: length cut short")
        length = int.from_bytes(view[pos : pos + 4], "little")
        end = pos + 4 + length + 4
        if end > size:
            return ParsedJournal(token, records, pos, f"record {index}: cut short")
        body = view[pos + 4 : end - 4]
        if zlib.crc32(body).to_bytes(4, "little") != view[end - 4 : end]:
            if end == size:
                return ParsedJournal(token, records, pos, f"record {index}: bad checksum")
            raise FormatError(f"record {index} is corrupt (bad checksum, more records follow)")
        try:
            records.append(_record_decoder.decode(body))
        except msgspec.DecodeError as e:
            raise FormatError(f"record {index} does not decode ({e})") from e
        pos = end
    return ParsedJournal(token, records, pos, None)
