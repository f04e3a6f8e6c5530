"""The run-time layer's one typed stream: jobs in to workers, events out to the supervisor and the UI.

Everything here is plain data (no message bodies, no passwords), as tagged msgspec structs.
Each worker reads jobs and sends worker events on pipes of its own (msgpack,
workers/channel.py); its account stamps the account name on them, the supervisor adds its own
supervisor events (AccountStarted, AccountDone, AccountSleeping, WorkerExited, Notice), and
hands every event to the UI's one ``render(event)``. Nothing else calls a UI. Fields are only
ever added at the end, with defaults.
"""

from __future__ import annotations

from typing import Literal

import msgspec

from fastsync.folders import FolderPair

Level = Literal["info", "warning", "error"]
InfoLevel = Literal["info", "warning", "error", "newmail", "idle"]  # newmail/idle: from IDLE watchers
WorkKind = Literal["to_near", "to_far", "flags", "delete", "list"]
FailScope = Literal["folder", "account", "config", "interrupted"]  # config: nothing written


class FolderStats(msgspec.Struct, array_like=True):
    to_near: int = 0
    to_far: int = 0
    flags_far: int = 0
    flags_near: int = 0
    del_far: int = 0
    del_near: int = 0
    errors: int = 0
    bytes: int = 0
    altered: int = 0  # stored, but the destination server kept something else (stored_check)

    def add(self, other: FolderStats) -> None:
        for f in self.__struct_fields__:
            setattr(self, f, getattr(self, f) + getattr(other, f))

    def changed(self) -> bool:
        quiet = ("errors", "bytes", "altered")
        return any(getattr(self, f) for f in self.__struct_fields__ if f not in quiet)


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
    account: str = ""


class Discovered(_Tagged):
    worker: int
    pairs: list[FolderPair]
    sizes: list[int]
    warnings: list[str] = msgspec.field(default_factory=list)
    ranges: dict[str, list[tuple[int, int]]] = msgspec.field(default_factory=dict)  # far name -> UID ranges
    account: str = ""


class JobStarted(_Tagged):
    worker: int
    folder: str
    part: int = 0  # a CopyRange part; 0: the folder's sync
    account: str = ""


class Progress(_Tagged):
    worker: int
    folder: str
    what: WorkKind
    done: int
    total: int
    bytes: int = 0
    account: str = ""


class Info(_Tagged):
    worker: int
    folder: str
    level: InfoLevel
    text: str
    account: str = ""


class JobDone(_Tagged):
    worker: int
    folder: str
    stats: FolderStats
    changed: bool = True
    part: int = 0
    account: str = ""


class JobFailed(_Tagged):
    worker: int
    folder: str
    scope: FailScope
    message: str
    part: int = 0
    account: str = ""
    stats: FolderStats = msgspec.field(default_factory=FolderStats)  # interrupted: what was done


WorkerEvent = WorkerUp | Discovered | JobStarted | Progress | Info | JobDone | JobFailed


# -- events of the supervisor (never cross a queue) -------------------------------------------
class AccountSummary(msgspec.Struct):
    """One sync of one account, as its closing line and its exit code see it."""

    name: str
    stats: FolderStats = msgspec.field(default_factory=FolderStats)
    folders: int = 0
    folders_failed: int = 0
    seconds: float = 0.0
    failed: bool = False
    locked: bool = False
    interrupted: bool = False
    config_error: bool = False  # failed on a configuration error (exit 2); nothing was written

    @property
    def errors(self) -> int:
        return self.stats.errors

    def state(self) -> str:
        if self.locked:
            return "LOCKED"
        if self.failed:
            return "FAILED"
        if self.interrupted:
            return "interrupted"
        return "ok" if not (self.stats.errors or self.folders_failed) else "with errors"

    def line(self) -> str:
        s = self.stats
        return (
            f"account {self.name}: {self.state()}: {self.folders} folders, "
            f"copied {s.to_near} far->near and {s.to_far} near->far, "
            f"flags changed {s.flags_far + s.flags_near}, deleted {s.del_far + s.del_near}, "
            f"errors {s.errors + self.folders_failed}, {self.seconds:.1f} s"
        )


class AccountStarted(_Tagged):
    account: str
    quick: bool = False


class AccountDone(_Tagged):
    account: str
    summary: AccountSummary


class AccountSleeping(_Tagged):
    """The account waits for its next sync: ``seconds`` (autorefresh), or None (IDLE only)."""

    account: str
    seconds: float | None


class WorkerExited(_Tagged):
    account: str
    worker: int


class Notice(_Tagged):
    """A line of the supervisor's own: an account failure, a retried folder, a hook's output."""

    level: Level
    text: str
    account: str = ""


Event = WorkerEvent | AccountStarted | AccountDone | AccountSleeping | WorkerExited | Notice

job_encoder = msgspec.msgpack.Encoder()
job_decoder: msgspec.msgpack.Decoder[Job] = msgspec.msgpack.Decoder(Job)
event_encoder = msgspec.msgpack.Encoder()
event_decoder: msgspec.msgpack.Decoder[WorkerEvent] = msgspec.msgpack.Decoder(WorkerEvent)
