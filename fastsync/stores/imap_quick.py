"""A far IMAP server's folders and their status from one round trip, without imapclient.

The run that finds nothing to do needs only LOGIN and one ``LIST "" "*" RETURN (STATUS
(...))`` (RFC 5819). This module sends both in one write on a plain socket (or implicit
TLS), reads the answers with a small parser, and sends LOGOUT without waiting. Importing
it costs no imapclient (about a third of a no-change run's start-up).

Anything it does not expect (STARTTLS, a pinned certificate, a name it cannot quote, an
answer shape it does not know, a refused LOGIN or LIST-STATUS, a socket error) makes it
give up with None: the caller then takes the ordinary way, which reports errors properly.
It never writes anything to the server but LOGIN, LIST and LOGOUT.
"""

from __future__ import annotations

import contextlib
import re
import socket
from typing import Any

from fastsync.config import ImapRepo
from fastsync.errors import StoreError
from fastsync.folders import imap_decode
from fastsync.stores.base import FolderEntry, FolderStatus, Store
from fastsync.stores.imap_text import keeps_pipelined_login, quotable, quoted

_SPECIAL_USE = (b"\\All", b"\\Archive", b"\\Drafts", b"\\Flagged", b"\\Junk", b"\\Sent", b"\\Trash")
_TOKEN = re.compile(rb'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|\{(\d+)\}$|([^\s()"{]+))')
_LINE_MAX = 1 << 20


class _Reader:
    def __init__(self, sock: Any) -> None:
        self.file = sock.makefile("rb")

    def line(self) -> bytes:
        data: bytes = self.file.readline(_LINE_MAX)
        if not data.endswith(b"\r\n"):
            raise ValueError("connection closed or line too long")
        return data[:-2]

    def response(self) -> list[Any]:
        """One response as tokens: bytes, None (NIL), or nested lists for parentheses."""
        line = self.line()
        stack: list[list[Any]] = [[]]
        pos = 0
        while True:
            m = _TOKEN.match(line, pos)
            if m is None:
                if line[pos:].strip():
                    raise ValueError(f"cannot parse {line[pos:pos + 40]!r}")
                break
            pos = m.end()
            opened, closed, text, literal, atom = m.groups()
            if opened:
                stack.append([])
            elif closed:
                if len(stack) == 1:
                    raise ValueError("unbalanced parentheses")
                inner = stack.pop()
                stack[-1].append(inner)
            elif text is not None:
                stack[-1].append(re.sub(rb"\\(.)", rb"\1", text))
            elif literal is not None:
                stack[-1].append(self.file.read(int(literal)))
                line, pos = self.line(), 0
            else:
                stack[-1].append(None if atom.upper() == b"NIL" else atom)
        if len(stack) != 1:
            raise ValueError("unbalanced parentheses")
        return stack[0]


def _status(values: list[Any]) -> FolderStatus:
    kv = {k.upper(): int(v) for k, v in zip(values[::2], values[1::2], strict=False)}
    return FolderStatus(
        validity=kv.get(b"UIDVALIDITY", 0),
        uidnext=kv.get(b"UIDNEXT", 0),
        messages=kv.get(b"MESSAGES", 0),
        highestmodseq=kv.get(b"HIGHESTMODSEQ", 0),
    )


def _entry(flags: list[bytes], name: bytes) -> FolderEntry:
    attrs = {f.lower() for f in flags}
    special = next((su.decode() for su in _SPECIAL_USE if su.lower() in attrs), None)
    selectable = b"\\noselect" not in attrs and b"\\nonexistent" not in attrs
    return FolderEntry(name=imap_decode(name), selectable=selectable, special_use=special)


class _Unanswerable(StoreError):
    """A call the listing cannot answer: the caller takes the ordinary way."""


class ListedServer(Store):
    """What one LIST-STATUS said of a far server: its folders, separator and statuses. The
    only calls it answers are those of folder discovery; any other raises StoreError."""

    def __init__(self, entries: list[FolderEntry], sep: str, status: dict[str, FolderStatus]) -> None:
        self.entries, self.sep, self.statuses = entries, sep, status

    def connect(self, *, prefetch_listing: bool = False) -> None:
        pass

    def close(self) -> None:
        pass

    @property
    def separator(self) -> str:
        return self.sep

    def list_folders(self) -> list[FolderEntry]:
        return list(self.entries)

    def list_status(self) -> dict[str, FolderStatus] | None:
        return dict(self.statuses)

    def status(self, name: str) -> FolderStatus:
        st = self.statuses.get(name)
        if st is None:
            raise _Unanswerable(f"no status of {name!r} in the listing")
        return st

    def _unanswerable(self, *args: object, **kwargs: object) -> Any:
        raise _Unanswerable("a listing answers only folder discovery")

    create_folder = select = list_messages = fetch = append = _unanswerable
    set_flags = delete = identities = _unanswerable


def list_server(repo: ImapRepo, password: str) -> ListedServer | None:
    """Log in and list every folder with its status in one round trip; None to fall back."""
    pending = begin_listing(repo, password)
    return pending.finish() if pending is not None else None


class PendingListing:
    """A LOGIN + LIST-STATUS sent and not yet read: the caller does its own work meanwhile
    (the server's answer takes as long as importing the rest of the no-change path)."""

    def __init__(self, sock: Any, reader: _Reader) -> None:
        self.sock, self.reader = sock, reader

    def finish(self) -> ListedServer | None:
        try:
            return _read_listing(self.sock, self.reader)
        except (OSError, ValueError, IndexError, TypeError):
            return None
        finally:
            self.close()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def begin_listing(repo: ImapRepo, password: str) -> PendingListing | None:
    """Connect, read the greeting and send LOGIN + LIST-STATUS; None to fall back."""
    if (repo.starttls and not repo.ssl) or repo.cert_fingerprint:
        return None
    if repo.oauth2 is not None or (repo.auth_mechanisms and "LOGIN" not in repo.auth_mechanisms):
        return None  # not a LOGIN with a password: the ordinary login path knows the others
    if not password or not (quotable(repo.remoteuser) and quotable(password)):
        return None
    try:
        host = repo.remotehost
        # an ASCII name goes as bytes (getaddrinfo takes them; typeshed says str only): a str
        # would load the idna codec just to encode it
        address = (host.encode() if host.isascii() else host, repo.port)
        sock = socket.create_connection(address, repo.timeout)  # type: ignore[arg-type]
    except OSError:
        return None
    try:
        if repo.ssl:
            import ssl

            ctx = ssl.create_default_context(cafile=repo.sslcacertfile)
            sock = ctx.wrap_socket(sock, server_hostname=repo.remotehost)
        reader = _Reader(sock)
        greeting = reader.line()
        if not greeting.startswith(b"* OK") or not keeps_pipelined_login(greeting):
            sock.close()
            return None
        sock.sendall(
            b"q1 LOGIN " + quoted(repo.remoteuser) + b" " + quoted(password) + b"\r\n"
            b'q2 LIST "" "*" RETURN (STATUS (MESSAGES UIDNEXT UIDVALIDITY HIGHESTMODSEQ))\r\n'
        )
        return PendingListing(sock, reader)
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            sock.close()
        return None


def _read_listing(sock: Any, reader: _Reader) -> ListedServer | None:
    entries: list[FolderEntry] = []
    statuses: dict[str, FolderStatus] = {}
    sep: str | None = None
    done: set[bytes] = set()
    while len(done) < 2:
        tokens = reader.response()
        head = tokens[0] if tokens else None
        if head in (b"q1", b"q2"):
            if not isinstance(tokens[1], bytes) or tokens[1].upper() != b"OK":
                return None
            done.add(head)
        elif head == b"*" and isinstance(tokens[1], bytes):
            kind = tokens[1].upper()
            if kind == b"LIST":
                flags, delim, name = tokens[2], tokens[3], tokens[4]
                if delim is not None and sep is None:
                    sep = delim.decode()
                entries.append(_entry(flags, name))
            elif kind == b"STATUS":
                statuses[imap_decode(tokens[2])] = _status(tokens[3])
            elif kind == b"BYE":
                return None
        else:
            return None
    with contextlib.suppress(OSError):
        sock.sendall(b"q3 LOGOUT\r\n")
    return ListedServer(entries, sep or "/", statuses)
