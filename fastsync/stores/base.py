"""The one interface the engine uses to talk to a mail store (an IMAP server or a Maildir).

Both kinds look alike from here: a store holds folders; a selected folder holds messages
addressed by integer UIDs that never change while the folder's UIDVALIDITY stays the same;
message bytes cross this interface in canonical wire form (CRLF line ends), and each driver
converts to its own form when it stores them.

Failure grades (see errors.py): a call raises MessageError for one bad message only where
its docstring says so; FolderError when the selected folder cannot be used; StoreError when
the connection or the server dialogue broke (the caller may reconnect and retry the folder);
AccountError when the account cannot be used at all (login, TLS).
"""

from __future__ import annotations

import abc
from array import array
from collections.abc import Iterator, Mapping, Sequence

import msgspec

from fastsync.model import Fetched, Outgoing

_MAX_SET_CHARS = 4000  # keeps every IMAP command line well under servers' limits


def uid_set(uids: Sequence[int]) -> str:
    """Compress sorted-or-not UIDs into an IMAP sequence set: ``1:3,7,9:10``."""
    if isinstance(uids, range) and uids.step == 1:  # a whole UID range: no list of it
        if not uids:
            return ""
        return str(uids.start) if len(uids) == 1 else f"{uids.start}:{uids.stop - 1}"
    parts: list[str] = []
    ordered = sorted(set(uids))
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}:{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def uid_set_chunks(uids: Sequence[int]) -> Iterator[str]:
    """UID sets of at most _MAX_SET_CHARS characters covering ``uids``."""
    text = uid_set(uids)
    while len(text) > _MAX_SET_CHARS:
        cut = text.rfind(",", 0, _MAX_SET_CHARS)
        yield text[:cut]
        text = text[cut + 1 :]
    if text:
        yield text


def parse_uid_set(text: str) -> list[int]:
    return list(iter_uid_set(text))


def iter_uid_set(text: str) -> Iterator[int]:
    """The UIDs of an IMAP sequence set, one at a time (a set of a million UIDs is a short
    text, and no list of them is made)."""
    for part in text.split(","):
        lo, _, hi = part.partition(":")
        a, b = int(lo), int(hi or lo)
        yield from range(min(a, b), max(a, b) + 1)


class FolderEntry(msgspec.Struct, frozen=True):
    """A folder as the store lists it; ``name`` uses the store's own hierarchy separator."""

    name: str
    selectable: bool = True
    special_use: str | None = None  # RFC 6154 attribute such as "\\Sent", when the store knows one


class FolderStatus(msgspec.Struct):
    """What a store says about a folder without listing its messages."""

    validity: int
    uidnext: int
    messages: int
    highestmodseq: int = 0


class Listing(msgspec.Struct):
    """The messages of the selected folder now.

    ``flags`` holds every message (UID -> Flags bits). The stores return compact sorted
    maps (fastsync.uidmap.UidMap); any mapping will do. ``sizes`` holds at least the messages
    with a UID above the ``sizes_above`` the caller asked for (size in bytes; for a Maildir
    the file size, which may differ from the CRLF size by the line count: use it for
    batching only).
    """

    flags: Mapping[int, int]
    sizes: Mapping[int, int]
    # A listing by difference (CONDSTORE): the UIDs listed as changed since the mark; None
    # for a full listing.
    moved: list[int] | None = None


class Changes(msgspec.Struct):
    """A listing by difference: every UID now present (sorted, unique: uidmap.uid_array),
    and flags of those changed since."""

    uids: array[int]
    flags: dict[int, int]
    sizes: dict[int, int]


class Store(abc.ABC):
    """A mail store. Not thread-safe; one instance per connection, used by one process."""

    # Seconds after a change during which the change mark in status() reads 0 (unknown),
    # because a second change within that time might not move it (Maildir: mtime granularity).
    mark_tick: float = 0.0

    @abc.abstractmethod
    def connect(self, *, prefetch_listing: bool = False) -> None:
        """Open the store (log in). AccountError when refused, StoreError when unreachable.

        ``prefetch_listing``: the caller lists folders next; a store may ask for the listing
        along with the login (IMAP: LOGIN and LIST-STATUS in one round trip)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the connection; never raises."""

    @property
    @abc.abstractmethod
    def separator(self) -> str:
        """The hierarchy separator of folder names in this store."""

    @abc.abstractmethod
    def list_folders(self) -> list[FolderEntry]:
        """Every folder of the store (not filtered)."""

    @abc.abstractmethod
    def create_folder(self, name: str) -> None:
        """Create a folder (and its parents where the store needs them); exists = success."""

    @abc.abstractmethod
    def status(self, name: str) -> FolderStatus:
        """Cheap status of a folder without selecting it. FolderError if it does not exist."""

    def status_since(self, name: str, last: FolderStatus) -> FolderStatus:
        """status(), where a store may save work when its change mark still equals ``last``'s."""
        return self.status(name)

    def list_status(self) -> dict[str, FolderStatus] | None:
        """Status of every folder at once where the store can do that cheaply, else None."""
        return None

    @abc.abstractmethod
    def select(self, name: str) -> FolderStatus:
        """Select a folder for the message calls below. FolderError if it does not exist."""

    @abc.abstractmethod
    def list_messages(self, sizes_above: int) -> Listing:
        """List the selected folder (see Listing). May assign UIDs to new Maildir files."""

    def list_changes(self, since_modseq: int, sizes_above: int) -> Changes | None:
        """Changes since a change mark recorded earlier, where the store can tell; else None."""
        return None

    def uids_in_dates(self, since: float | None, before: float | None) -> set[int] | None:
        """UIDs whose INTERNALDATE day is within [since, before) where the store can search; else None."""
        return None

    @abc.abstractmethod
    def fetch(self, uids: Sequence[int]) -> Iterator[Fetched]:
        """Read these messages in one batch; UIDs that no longer exist are left out."""

    @abc.abstractmethod
    def append(self, msgs: list[Outgoing]) -> list[int | None]:
        """Store these messages with their flags and dates; return their new UIDs in order.

        None stands for a message whose UID the store cannot tell (no UIDPLUS). A message the
        store refuses raises MessageError only when it is the only one in the batch; callers
        retry a failed batch one message at a time.
        """

    def will_change(self, uids: list[int]) -> None:  # noqa: B027  (optional: most stores need no lookup)
        """The messages the next ``set_flags``/``delete`` calls of this folder will touch, all
        at once: a store that must look its messages up (Maildir: a scan of the folder) finds
        them in one go instead of once per call, or, told before ``list_messages``, during its
        listing. Nothing else; the default does nothing."""

    @abc.abstractmethod
    def set_flags(self, uids: list[int], add: int, remove: int) -> None:
        """Add and remove Flags bits on these messages; other flags and keywords are kept."""

    @abc.abstractmethod
    def delete(self, uids: list[int]) -> None:
        """Remove these messages for good (IMAP: \\Deleted + UID EXPUNGE where offered)."""

    @abc.abstractmethod
    def identities(self, uids: list[int]) -> dict[int, bytes]:
        """Content keys (model.content_key) of these messages, for pairing without state."""

    def identity_keys(self, uids: list[int]) -> tuple[dict[int, bytes], dict[int, bytes]]:
        """Content keys and second keys (model.loose_key) of these messages.

        The second keys pair what a server rewrote in place (same size, same Message-ID and
        date, different header bytes). A store that cannot give them returns none.
        """
        return self.identities(uids), {}

    # Whether the engine should read back what this store kept of each stored message and
    # report the ones that differ from what was sent (servers may rewrite messages).
    checks_stored: bool = False

    def flush(self) -> None:  # noqa: B027 - optional hook, nothing to do for most stores
        """Make everything stored so far durable (before the state that records it is written)."""
