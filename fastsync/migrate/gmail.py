"""Gmail's labels in a migration: each message once per label folder, All Mail only for the rest.

On a server with X-GM-EXT-1 every label is a folder and ``[Gmail]/All Mail`` holds every
message once more (Trash and Spam aside); X-GM-MSGID names a message the same in each
folder. Copied as plain folders, an account would arrive twice over. So (imapsync's
``--gmail1`` is the model):

- the All Mail folder is copied last, after every other folder, and receives only the
  messages that no other folder *copied*: a folder that failed in this run counts as not
  having copied anything, so its messages still land in All Mail (a duplicate, at worst,
  never a loss);
- with ``once`` (``--gmail-once``) a message is copied into the first folder, in copy order,
  that holds it, and left out of the others.

Everything here is pure: folder listings of (UIDs, X-GM-MSGIDs) in, per-folder UIDs to leave
out, sorted, as packed arrays (the engine's ``skip_far``). Copy order is deterministic
(INBOX, then by name), so a re-run leaves out the same messages.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from fastsync.uidmap import UID_CODE

ALL_MAIL_NAMES = ("[Gmail]/All Mail", "[Google Mail]/All Mail")
CAPABILITY = b"X-GM-EXT-1"

Ids = tuple["array[int]", "array[int]"]  # (UIDs, X-GM-MSGIDs), in step


@dataclass
class GmailPlan:
    """What a migration from Gmail knows before copying: the All Mail folder, each source
    folder's ids, and (``once``) the UIDs each label folder leaves out."""

    all_mail: str | None
    ids: dict[str, Ids]
    skips: dict[str, array[int]] = field(default_factory=dict)

    def last_skip(self, done: Iterable[str]) -> array[int]:
        """All Mail's UIDs to leave out, once the folders in ``done`` copied without a failure."""
        if self.all_mail is None or self.all_mail not in self.ids:
            return array(UID_CODE)
        others = [f for f in done if f != self.all_mail]
        return all_mail_skip(self.ids[self.all_mail], self.ids, others, self.skips)


def all_mail(folders: Iterable[tuple[str, str | None]]) -> str | None:
    """The All Mail folder among (name, special-use) pairs: \\All first, then by name."""
    pairs = list(folders)
    for name, special in pairs:
        if special is not None and special.lower() == "\\all":
            return name
    return next((name for name, _ in pairs if name in ALL_MAIL_NAMES), None)


def copy_order(folders: Iterable[str], all_mail_folder: str | None) -> list[str]:
    """INBOX first, then by name, All Mail left out (it goes last, on its own)."""
    names = list(folders)
    rest = sorted(f for f in names if f != all_mail_folder and f.upper() != "INBOX")
    return [f for f in names if f.upper() == "INBOX"][:1] + rest


def first_copies(order: list[str], ids: Mapping[str, Ids]) -> dict[str, array[int]]:
    """``once``: per folder, the UIDs of messages an earlier folder in ``order`` holds."""
    seen: set[int] = set()
    skips: dict[str, array[int]] = {}
    for folder in order:
        uids, msgids = ids.get(folder, (array(UID_CODE), array("Q")))
        skip = array(UID_CODE, sorted(u for u, m in zip(uids, msgids, strict=True) if m in seen))
        if skip:
            skips[folder] = skip
        seen.update(msgids)
    return skips


def all_mail_skip(
    all_mail_ids: Ids, ids: Mapping[str, Ids], done: Iterable[str], skipped: Mapping[str, array[int]]
) -> array[int]:
    """The UIDs of All Mail that a folder in ``done`` copied (held and not left out), sorted."""
    copied: set[int] = set()
    for folder in done:
        uids, msgids = ids.get(folder, (array(UID_CODE), array("Q")))
        left_out = set(skipped.get(folder, ()))
        copied.update(m for u, m in zip(uids, msgids, strict=True) if u not in left_out)
    uids, msgids = all_mail_ids
    return array(UID_CODE, sorted(u for u, m in zip(uids, msgids, strict=True) if m in copied))
