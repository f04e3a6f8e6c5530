"""Reading back what a server kept of the messages just stored, to catch rewriting.

Some servers change a message on APPEND (Cyrus replaces 8-bit header bytes with ``X``; the
size stays). fastsync stores bytes as they are, so a changed copy is the server's doing; it
is reported per message, counted, and left in place (the copy is paired: re-sending it would
be changed the same way).

One ``UID FETCH (RFC822.SIZE BODY.PEEK[HEADER])`` per stored chunk, for stores that ask for it
(``Store.checks_stored``): a difference in size or in the header block is seen; a change
inside the body that keeps the size is not (``fastsync migrate --verify=body`` sees it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from fastsync.model import Outgoing, content_key, header_section, message_id

log = logging.getLogger(__name__)

_HASH = 12  # content_key = 12 bytes of header hash + 8 bytes of size


class Kept(Protocol):
    """What this module needs of a store (stores.base.Store has both)."""

    @property
    def checks_stored(self) -> bool: ...

    def identities(self, uids: list[int]) -> dict[int, bytes]: ...


@dataclass(frozen=True)
class Altered:
    """One message the destination did not keep as sent."""

    src_uid: int
    dst_uid: int
    message_id: str
    what: str  # e.g. "size 812 -> 790 bytes" or "header bytes differ (same size, 812 bytes)"


def altered_messages(dst: Kept, stored: Sequence[tuple[Outgoing, int]]) -> list[Altered]:
    """The messages of ``stored`` (message sent, UID it got) whose stored copy differs.

    A message no longer there (expunged meanwhile) is not reported. Raises what
    ``dst.identities`` raises.
    """
    if not dst.checks_stored or not stored:
        return []
    kept = dst.identities([uid for _, uid in stored])
    out: list[Altered] = []
    for msg, uid in stored:
        got = kept.get(uid)
        if got is None:
            continue
        sent = content_key(header_section(msg.data), len(msg.data))
        if got == sent:
            continue
        sent_size = int.from_bytes(sent[_HASH:], "big")
        got_size = int.from_bytes(got[_HASH:], "big")
        if got_size != sent_size:
            what = f"size {sent_size} -> {got_size} bytes"
        else:
            what = f"header bytes differ (same size, {sent_size} bytes)"
        mid = message_id(header_section(msg.data))
        out.append(Altered(msg.src_uid, uid, mid.decode("ascii", "replace") if mid else "none", what))
    return out
