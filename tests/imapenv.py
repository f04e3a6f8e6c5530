"""Helpers for IMAP <-> IMAP tests: a second private Dovecot with "/" as separator, a folder
named differently but marked \\Sent, and a per-message size limit; and looks at a server folder."""

from __future__ import annotations

import secrets
from pathlib import Path

import imapclient

from tools.dovecot import Dovecot, User

# A second name for \Sent on the "/" instance (the first instance has only "Sent"), and a
# per-message APPEND limit so that one oversized message is refused with [LIMIT].
MAX_MAIL_SIZE = 64 * 1024
SLASH_EXTRA_CONFIG = f"""namespace inbox {{
  mailbox "Sent Messages" {{
    special_use = \\Sent
  }}
}}
mail_plugins = $mail_plugins quota
plugin {{
  quota = count:User quota
  quota_rule = *:storage=0
  quota_vsizes = yes
  quota_max_mail_size = {MAX_MAIL_SIZE}
}}
"""


def start_slash_dovecot(base: Path) -> Dovecot:
    server = Dovecot(base, separator="/", extra_config=SLASH_EXTRA_CONFIG)
    server.start()
    return server


def new_user(server: Dovecot, prefix: str) -> User:
    return server.add_user(f"{prefix}-{secrets.token_hex(3)}", secrets.token_urlsafe(12))


def folder_messages(user: User, folder: str) -> dict[int, tuple[frozenset[bytes], bytes, float]]:
    """UID -> (flags and keywords without \\Recent, bytes, INTERNALDATE) of a server folder."""
    c = user.connect()
    try:
        c.normalise_times = False
        c.select_folder(folder, readonly=True)
        uids = c.search("ALL")
        resp = c.fetch(uids, [b"FLAGS", b"INTERNALDATE", b"BODY.PEEK[]"]) if uids else {}
        return {
            u: (
                frozenset(f for f in d[b"FLAGS"] if f.lower() != b"\\recent"),
                d[b"BODY[]"],
                d[b"INTERNALDATE"].timestamp(),
            )
            for u, d in resp.items()
        }
    finally:
        c.logout()


def folder_names(user: User) -> list[str]:
    c = user.connect()
    try:
        return sorted(name for flags, _d, name in c.list_folders() if b"\\Noselect" not in flags)
    finally:
        c.logout()


def append(user: User, folder: str, data: bytes, flags: tuple[bytes, ...] = (), create: bool = True) -> None:
    c: imapclient.IMAPClient = user.connect()
    try:
        if create and not c.folder_exists(folder):
            c.create_folder(folder)
        c.append(folder, data, list(flags))
    finally:
        c.logout()


def message(n: int, size: int = 0, tag: str = "m") -> bytes:
    """A small distinct message (CRLF), padded to about ``size`` bytes when asked."""
    body = f"Body of message {n}.\r\n".encode()
    if size > len(body):
        line = b"x" * 76 + b"\r\n"
        body += line * ((size - len(body)) // len(line) + 1)
    head = f"From: a{n}@example.org\r\nSubject: {tag} {n}\r\nMessage-ID: <{tag}{n}@example.org>\r\n\r\n"
    return head.encode() + body


def contents(msgs: dict[int, tuple[frozenset[bytes], bytes, float]]) -> list[tuple[frozenset[bytes], bytes]]:
    return sorted(((fl, data) for fl, data, _ in msgs.values()), key=lambda t: (t[1], sorted(t[0])))
