"""What crosses the process boundary: jobs in, events out, as tagged msgspec structs.

Everything here is plain data (no message bodies): the supervisor and the UI read events,
workers read jobs. Fields are only ever added at the end, with defaults.
"""

from __future__ import annotations

import msgspec

from fastsync.folders import FolderPair


class FolderStats(msgspec.Struct, array_like=True):
    to_near: int = 0
    to_far: int = 0
    flags_far: int = 0
    flags_near: int = 0
    del_far: int = 0
    del_near: int = 0
    errors: int = 0
    bytes: int = 0

    def add(self, other: FolderStats) -> None:
        for f in self.__struct_fields__:
            setattr(self, f, getattr(self, f) + getattr(other, f))

    def changed(self) -> bool:
        return any(getattr(self, f) for f in self.__struct_fields__ if f not in ("errors", "bytes"))


class _Tagged(msgspec.Struct, array_like=True, tag=True):
    pass


# -- jobs (supervisor -> worker) ------------------------------------------------------------
class Discover(_Tagged):
    """List folders on both sides, map them, create missing ones, report the pairs.

    ``quick``: report only the pairs whose cheap status (STATUS / Maildir mtimes) moved since
    the state was written (``quick`` / ``-q``).
    """

    quick: bool = False


class SyncFolder(_Tagged):
    pair: FolderPair
    size: int = 0


class CopyRange(_Tagged):
    """Copy the far messages with UIDs ``lo``..``hi`` of a folder to near, recording the pairs
    in the folder's part state ``part`` (1, 2, ...). Several run at once on a huge folder;
    its SyncFolder job follows them and merges their state (see workers/split.py)."""

    pair: FolderPair
    lo: int
    hi: int
    part: int


class Stop(_Tagged):
    pass


Job = Discover | SyncFolder | CopyRange | Stop


# -- events (worker -> supervisor) ----------------------------------------------------------
class WorkerUp(_Tagged):
    worker: int
    pid: int


class Discovered(_Tagged):
    worker: int
    pairs: list[FolderPair]
    sizes: list[int]
    warnings: list[str] = msgspec.field(default_factory=list)
    ranges: dict[str, list[tuple[int, int]]] = msgspec.field(default_factory=dict)  # far name -> UID ranges


class JobStarted(_Tagged):
    worker: int
    folder: str
    part: int = 0  # a CopyRange part; 0: the folder's sync


class Progress(_Tagged):
    worker: int
    folder: str
    what: str  # "to_near", "to_far", "flags", "delete", "list"
    done: int
    total: int
    bytes: int = 0


class Info(_Tagged):
    worker: int
    folder: str
    level: str  # "info", "warning", "error"
    text: str


class JobDone(_Tagged):
    worker: int
    folder: str
    stats: FolderStats
    changed: bool = True
    part: int = 0


class JobFailed(_Tagged):
    worker: int
    folder: str
    scope: str  # "folder", "account", "config" (nothing written), "interrupted"
    message: str
    part: int = 0


class Beat(_Tagged):
    worker: int


Event = WorkerUp | Discovered | JobStarted | Progress | Info | JobDone | JobFailed | Beat

job_encoder = msgspec.msgpack.Encoder()
job_decoder: msgspec.msgpack.Decoder[Job] = msgspec.msgpack.Decoder(Job)
event_encoder = msgspec.msgpack.Encoder()
event_decoder: msgspec.msgpack.Decoder[Event] = msgspec.msgpack.Decoder(Event)
