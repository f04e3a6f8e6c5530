"""A narrow, streaming reader for the one response shape the sync lives on: UID FETCH.

imapclient reads a whole FETCH response into memory and runs its general-purpose lexer over
every token, which costs more CPU than the server spends serving the mail. This reader
sends ``UID FETCH`` commands on imapclient's connection (several may be in flight, so a
folder's listing costs one round trip) and hands each message over as soon as its last
literal has arrived, so memory holds one message at a time.

It understands the items fastsync asks for (UID, FLAGS, INTERNALDATE, RFC822.SIZE, MODSEQ,
BODY[] and BODY[HEADER] as literals, quoted strings or NIL). Anything else in a response is
skipped. Untagged responses other than FETCH are ignored (an EXPUNGE while listing only
means the next run sees the message gone); ``* BYE`` ends the connection.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_FETCH = re.compile(rb"^\* \d+ FETCH \(", re.I)
_UID = re.compile(rb"[( ]UID (\d+)", re.I)
_FLAGS = re.compile(rb"[( ]FLAGS \(([^)]*)\)", re.I)
_DATE = re.compile(rb'[( ]INTERNALDATE "([^"]*)"', re.I)
_SIZE = re.compile(rb"[( ]RFC822\.SIZE (\d+)", re.I)
_MODSEQ = re.compile(rb"[( ]MODSEQ \((\d+)\)", re.I)
_GM_MSGID = re.compile(rb"[( ]X-GM-MSGID (\d+)", re.I)
_QUOTED_BODY = re.compile(rb'[( ](BODY\[(?:HEADER)?\]) (?:"((?:[^"\\]|\\.)*)"|NIL)', re.I)
_ESEARCH_ALL = re.compile(rb"^\* ESEARCH .*\bALL ([0-9:,]+)", re.I)
_MONTHS = {
    m.encode(): i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_DATE_PARTS = re.compile(rb"^ ?(\d{1,2})-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)$")


@dataclass(slots=True)
class FetchItem:
    """One message of a FETCH response, with the items that were present."""

    uid: int
    flags: tuple[bytes, ...] | None = None
    internaldate: float | None = None
    size: int | None = None
    modseq: int | None = None
    gm_msgid: int | None = None  # Gmail's message id (X-GM-EXT-1): the same in every label folder
    body: bytes | None = None  # BODY[]
    header: bytes | None = None  # BODY[HEADER]


def parse_internaldate(raw: bytes) -> float:
    """``"25-Nov-2026 18:16:45 +0100"`` -> seconds since the epoch (locale-independent)."""
    m = _DATE_PARTS.match(raw)
    if not m:
        return 0.0
    day, mon, year, hh, mm, ss, sign, zh, zm = m.groups()
    month = _MONTHS.get(mon.capitalize())
    if month is None:
        return 0.0
    offset = (int(zh) * 3600 + int(zm) * 60) * (1 if sign == b"+" else -1)
    return float(calendar.timegm((int(year), month, int(day), int(hh), int(mm), int(ss))) - offset)


def parse_fetch(text: bytes, literals: list[tuple[bytes, bytes]]) -> FetchItem | None:
    """One FETCH response: ``text`` with literals cut out, ``literals`` as (item name, bytes)."""
    m = _UID.search(text)
    if m is None:
        return None  # a FETCH without UID is not an answer to a UID FETCH
    names = [name.upper() for name, _ in literals]
    if len(_UID.findall(text)) != 1 or not text.rstrip().endswith(b")") or len(set(names)) != len(names):
        # A literal whose announced length was wrong swallowed or cut a neighbour: the
        # stream is out of step, and no byte of it can be trusted to belong to this UID.
        raise IMAPClientAbortError(f"malformed FETCH response (literal length?): {text[:80]!r}")
    item = FetchItem(uid=int(m.group(1)))
    if (m := _FLAGS.search(text)) is not None:
        item.flags = tuple(m.group(1).split())
    if (m := _DATE.search(text)) is not None:
        item.internaldate = parse_internaldate(m.group(1))
    if (m := _SIZE.search(text)) is not None:
        item.size = int(m.group(1))
    if (m := _MODSEQ.search(text)) is not None:
        item.modseq = int(m.group(1))
    if (m := _GM_MSGID.search(text)) is not None:
        item.gm_msgid = int(m.group(1))
    for name, data in literals:
        _set_body(item, name, data)
    for m in _QUOTED_BODY.finditer(text):
        raw = m.group(2)
        _set_body(item, m.group(1), re.sub(rb"\\(.)", rb"\1", raw) if raw is not None else b"")
    return item


def _set_body(item: FetchItem, name: bytes, data: bytes) -> None:
    key = name.upper()
    if key == b"BODY[]":
        item.body = data
    elif key == b"BODY[HEADER]":
        item.header = data


class FetchStream:
    """UID FETCH commands over an imaplib connection (imapclient's ``client._imap``).

    ``send`` starts a command and returns its tag; ``read`` yields its messages, and must be
    called for tags in the order they were sent. A reader that is abandoned part-way drains
    the rest of its response, so the connection stays usable.
    """

    def __init__(self, imap: Any) -> None:
        self.imap = imap

    def send(self, uid_set: str, items: str, modifiers: str = "") -> bytes:
        tag: bytes = self.imap._new_tag()
        line = tag + b" UID FETCH " + uid_set.encode() + b" (" + items.encode() + b")"
        if modifiers:
            line += b" (" + modifiers.encode() + b")"
        self.imap.send(line + b"\r\n")
        return tag

    def send_search_all(self) -> bytes:
        """``UID SEARCH RETURN (ALL) ALL`` (RFC 4731): every UID as one compact set."""
        tag: bytes = self.imap._new_tag()
        self.imap.send(tag + b" UID SEARCH RETURN (ALL) ALL\r\n")
        return tag

    def append(self, folder: bytes, msgs: list[tuple[bytes, bytes, bytes]]) -> bytes:
        """APPEND (MULTIAPPEND when several) with LITERAL+ literals, sent without copying them.

        ``folder`` is the quoted, encoded name; each message is (flag list, quoted date or
        b"", bytes). Returns the tagged OK line (it holds APPENDUID); a NO or BAD raises
        IMAPClientError with the server's words. Needs LITERAL+: no continuation requests.
        """
        tag: bytes = self.imap._new_tag()
        head = tag + b" APPEND " + folder
        for flags, date, data in msgs:
            head += b" (" + flags + b")"
            if date:
                head += b" " + date
            self.imap.send(head + b" {%d+}\r\n" % len(data))
            self.imap.send(data)
            head = b""
        self.imap.send(b"\r\n")
        done: dict[bytes, bytes] = {}
        for _ in self._responses((tag,), done):
            pass
        return done.get(tag, b"")

    def read(self, *tags: bytes) -> Iterator[FetchItem]:
        """The FETCH items answering ``tags`` (commands in flight together).

        A server may interleave the untagged answers of pipelined commands before any of
        them completes, so they cannot be told apart by tag: callers send together only
        commands whose items differ in what they carry (FLAGS vs RFC822.SIZE, ...).
        """
        for text, literals in self._responses(tags):
            if _FETCH.match(text):
                item = parse_fetch(text, literals)
                if item is not None:
                    yield item

    def read_with_search(self, *tags: bytes) -> tuple[list[FetchItem], str]:
        """As read(), collected, plus the UID set of an ESEARCH ALL answer among them."""
        items: list[FetchItem] = []
        found = ""
        for text, literals in self._responses(tags):
            if _FETCH.match(text):
                item = parse_fetch(text, literals)
                if item is not None:
                    items.append(item)
            elif (m := _ESEARCH_ALL.search(text)) is not None:
                found = m.group(1).decode()
        return items, found

    def _responses(
        self, tags: tuple[bytes, ...], completed: dict[bytes, bytes] | None = None
    ) -> Iterator[tuple[bytes, list[tuple[bytes, bytes]]]]:
        """Untagged responses until every tag has completed; the first failure is raised then.

        ``completed`` receives each tag's completion line.
        """
        pending = set(tags)
        failure: str | None = None
        try:
            while pending:
                line = self._line()
                tag = line.split(b" ", 1)[0]
                if tag in pending:
                    pending.discard(tag)
                    failure = failure or self._failure(tag, line)
                    if completed is not None:
                        completed[tag] = line
                    continue
                if not line.startswith(b"* "):  # out of step with the server: reconnect
                    raise IMAPClientAbortError(f"unexpected line from server: {line[:80]!r}")
                text, literals = self._gather(line)
                if text[2:5].upper() == b"BYE":
                    raise IMAPClientAbortError(f"server closed the connection: {text[6:80]!r}")
                yield text, literals
        finally:
            if pending:
                self._drain(pending)
            for tag in tags:
                self.imap.tagged_commands.pop(tag, None)
        if failure is not None:
            raise IMAPClientError(failure)

    def _line(self) -> bytes:
        line: bytes = self.imap.readline()
        if not line:
            raise IMAPClientAbortError("connection closed by the server")
        return line

    def _gather(self, line: bytes) -> tuple[bytes, list[tuple[bytes, bytes]]]:
        """A whole untagged response: its text with literals cut out, and the literals."""
        parts: list[bytes] = []
        literals: list[tuple[bytes, bytes]] = []
        while True:
            m = _LITERAL.search(line)
            if m is None:
                parts.append(line)
                return b"".join(parts), literals
            head = line[: m.start()]
            parts.append(head)
            name = head.rstrip().rsplit(b" ", 1)[-1].lstrip(b"(")
            size = int(m.group(1))
            data: bytes = self.imap.read(size)
            if len(data) != size:
                raise IMAPClientAbortError(f"connection closed inside a {size}-byte literal")
            literals.append((name, data))
            line = self._line()

    @staticmethod
    def _failure(tag: bytes, line: bytes) -> str | None:
        status = (line[len(tag) + 1 :].split(None, 1) or [b""])[0].upper()
        if status == b"OK":
            return None
        return "command failed: " + line[len(tag) + 1 :].decode("utf-8", "replace").strip()

    def _drain(self, pending: set[bytes]) -> None:
        try:
            while pending:
                line = self._line()
                tag = line.split(b" ", 1)[0]
                if tag in pending:
                    pending.discard(tag)
                else:
                    self._gather(line)
        except (OSError, IMAPClientError):
            return  # the caller is already failing; the connection will be dropped
