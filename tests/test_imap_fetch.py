"""The streaming FETCH reader on scripted server bytes (the live server is in test_imap_store)."""

from __future__ import annotations

import io

import pytest
from imapclient.exceptions import IMAPClientAbortError, IMAPClientError

from fastsync.stores.imap_fetch import FetchStream


class Scripted:
    """Enough of imaplib.IMAP4 for FetchStream: tags, send, readline, read."""

    def __init__(self, server_bytes: bytes) -> None:
        self.buf = io.BytesIO(server_bytes)
        self.sent: list[bytes] = []
        self.tagged_commands: dict[bytes, None] = {}
        self.n = 0

    def _new_tag(self) -> bytes:
        self.n += 1
        tag = b"T%d" % self.n
        self.tagged_commands[tag] = None
        return tag

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def readline(self) -> bytes:
        return self.buf.readline()

    def read(self, n: int) -> bytes:
        return self.buf.read(n)


def test_interleaved_answers_of_pipelined_commands_are_all_read():
    server = (
        b"* 1 FETCH (UID 10 FLAGS (\\Seen))\r\n"
        b"* 1 FETCH (UID 10 RFC822.SIZE 300)\r\n"
        b"* 2 FETCH (UID 11 RFC822.SIZE 5)\r\n"
        b"* 2 FETCH (UID 11 FLAGS ())\r\n"
        b"T1 OK done\r\nT2 OK done\r\n"
    )
    imap = Scripted(server)
    s = FetchStream(imap)
    tags = (s.send("1:*", "UID FLAGS"), s.send("1:*", "UID RFC822.SIZE"))
    items = list(s.read(*tags))
    assert {(i.uid, i.flags) for i in items if i.flags is not None} == {(10, (b"\\Seen",)), (11, ())}
    assert {(i.uid, i.size) for i in items if i.size is not None} == {(10, 300), (11, 5)}
    assert imap.tagged_commands == {}


def test_literal_bodies_quoted_and_nil_bodies_and_dates():
    body = b"Subject: x\r\n\r\nline with ) and {3}\r\n"
    server = (
        b"* 1 FETCH (UID 7 FLAGS (\\Seen $Forwarded) "
        + b'INTERNALDATE "01-Jan-2021 01:00:00 +0100" BODY[] {%d}\r\n' % len(body)
        + body
        + b")\r\n"
        + b'* 2 FETCH (UID 8 BODY[] "a \\"q\\" b")\r\n'
        + b"* 3 FETCH (UID 9 BODY[] NIL)\r\n"
        + b"T1 OK done\r\n"
    )
    s = FetchStream(Scripted(server))
    items = list(s.read(s.send("7:9", "UID FLAGS INTERNALDATE BODY.PEEK[]")))
    assert [i.uid for i in items] == [7, 8, 9]
    assert items[0].body == body and items[0].internaldate == 1609459200.0
    assert items[0].flags == (b"\\Seen", b"$Forwarded")
    assert items[1].body == b'a "q" b'
    assert items[2].body == b""


def test_untagged_non_fetch_responses_are_ignored_and_a_failure_is_raised_after_completion():
    server = b"* 3 EXISTS\r\n* 1 EXPUNGE\r\n* 1 FETCH (UID 5 FLAGS ())\r\nT1 NO [SERVERBUG] nope\r\n"
    s = FetchStream(Scripted(server))
    with pytest.raises(IMAPClientError, match="SERVERBUG"):
        list(s.read(s.send("1:*", "UID FLAGS")))


def test_bye_and_a_connection_closed_inside_a_literal_are_connection_errors():
    s = FetchStream(Scripted(b"* BYE shutting down\r\n"))
    with pytest.raises(IMAPClientAbortError):
        list(s.read(s.send("1:*", "UID FLAGS")))
    s = FetchStream(Scripted(b"* 1 FETCH (UID 1 BODY[] {100}\r\nshort"))
    with pytest.raises(IMAPClientAbortError, match="literal"):
        list(s.read(s.send("1", "UID BODY.PEEK[]")))


def test_an_abandoned_read_drains_its_answer_so_the_next_command_reads_cleanly():
    server = (
        b"* 1 FETCH (UID 1 BODY[] {2}\r\nab)\r\n* 2 FETCH (UID 2 BODY[] {2}\r\ncd)\r\nT1 OK done\r\n"
        b"* 1 FETCH (UID 1 FLAGS (\\Seen))\r\nT2 OK done\r\n"
    )
    s = FetchStream(Scripted(server))
    first = s.read(s.send("1:2", "UID BODY.PEEK[]"))
    assert next(first).body == b"ab"
    first.close()  # e.g. the consumer stopped on request
    assert [i.flags for i in s.read(s.send("1", "UID FLAGS"))] == [(b"\\Seen",)]


def test_esearch_all_gives_the_uid_set():
    server = b'* ESEARCH (TAG "T1") UID ALL 1:3,7\r\nT1 OK\r\n* 7 FETCH (UID 7 FLAGS ())\r\nT2 OK\r\n'
    s = FetchStream(Scripted(server))
    tags = (s.send_search_all(), s.send("1:*", "UID FLAGS", "CHANGEDSINCE 5"))
    items, uid_set = s.read_with_search(*tags)
    assert uid_set == "1:3,7" and [i.uid for i in items] == [7]
    assert s.imap.sent[1].endswith(b"(UID FLAGS) (CHANGEDSINCE 5)\r\n")
