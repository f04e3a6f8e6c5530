"""The IMAP store against the real private Dovecot: listings by difference, LIST-STATUS, and the
round trips connecting and closing cost."""

from __future__ import annotations

import imaplib
import re
import secrets
import ssl
import time
from collections.abc import Callable

import pytest

from fastsync.config import ImapRepo
from fastsync.errors import AccountError, StoreError
from fastsync.model import FLAGGED, SEEN, Outgoing
from fastsync.stores.imap import ImapStore
from fastsync.stores.imap_fetch import parse_internaldate
from tests.faultkit import imap_repo
from tools.delayproxy import DelayProxy
from tools.faultproxy import FaultProxy

pytestmark = pytest.mark.dovecot


def store_for(dovecot, user) -> ImapStore:
    repo = ImapRepo(
        name="R", remotehost=dovecot.host, remoteport=dovecot.port, remoteuser=user.name, ssl=False
    )
    s = ImapStore(repo, user.password)
    s.connect()
    return s


def msg(i: int) -> Outgoing:
    return Outgoing(
        src_uid=0, flags=0, internaldate=1.6e9 + i, data=f"Message-ID: <{i}@t>\r\n\r\n{i}\r\n".encode()
    )


def test_list_changes_returns_every_uid_but_only_the_changed_flags(dovecot, imap_user):
    s = store_for(dovecot, imap_user)
    s.select("INBOX")
    uids = s.append([msg(i) for i in range(6)])
    assert all(isinstance(u, int) for u in uids)
    mark = s.select("INBOX").highestmodseq
    assert mark > 0
    s.set_flags([uids[2]], SEEN | FLAGGED, 0)
    s.delete([uids[4]])
    [new_uid] = s.append([msg(9)])
    s.select("INBOX")
    ch = s.list_changes(mark, max(u for u in uids if u))
    assert ch is not None
    assert ch.uids.tolist() == sorted({u for u in uids if u != uids[4]} | {new_uid})  # sorted, compact
    assert ch.flags == {uids[2]: SEEN | FLAGGED, new_uid: 0}
    assert set(ch.sizes) == {new_uid}
    s.close()


def test_list_status_gives_every_folder_in_one_command(dovecot, imap_user):
    c = imap_user.connect()
    c.create_folder("Zwölf")
    c.append("Zwölf", b"Message-ID: <z@t>\r\n\r\nz\r\n")
    c.logout()
    s = store_for(dovecot, imap_user)
    st = s.list_status()
    assert st is not None
    assert st["Zwölf"].messages == 1 and st["INBOX"].messages == 0
    assert st["Zwölf"].highestmodseq > 0 and st["Zwölf"].validity > 0
    s.close()


def test_internaldate_parsing_is_locale_independent_and_honours_the_zone():
    assert parse_internaldate(b"01-Jan-2021 01:00:00 +0100") == 1609459200.0
    assert parse_internaldate(b" 1-Feb-2021 00:00:00 -0000") == 1612137600.0
    assert parse_internaldate(b"garbage") == 0.0


def test_keywords_travel_with_a_copied_message_and_are_not_taken_for_our_flags(dovecot, imap_user):
    c = imap_user.connect()
    c.create_folder("Src")
    c.append("Src", b"Message-ID: <k@t>\r\n\r\nk\r\n", [b"\\Seen", b"$Label1", b"Work"])
    c.logout()
    s = store_for(dovecot, imap_user)
    s.select("Src")
    [m] = list(s.fetch([1]))
    assert m.flags == SEEN and set(m.keywords) == {b"$Label1", b"Work"}
    s.create_folder("Dst")
    s.select("Dst")
    [uid] = s.append([Outgoing(m.uid, m.flags, m.internaldate, m.data, m.keywords)])
    [copied] = list(s.fetch([uid or 0]))
    assert copied.flags == SEEN and set(copied.keywords) == {b"$Label1", b"Work"}
    s.close()


# -- round trips of connecting and closing --------------------------------------------------


class _Commands:
    """A DelayProxy tap: the names of the commands the client sent, in order."""

    def __init__(self) -> None:
        self.sent = bytearray()

    def __call__(self, chunk: bytes) -> None:
        self.sent += chunk

    def names(self) -> list[str]:
        lines = bytes(self.sent).split(b"\r\n")
        return [line.split(b" ")[1].upper().decode() for line in lines if line.count(b" ") >= 1]

    def wait_for(self, name: str, timeout: float = 5.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while name not in self.names() and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.names()


def _store_via(port: int, dovecot, user, **kw) -> ImapStore:
    s = ImapStore(imap_repo(dovecot, user, port=port, **kw), user.password)
    s.connect()
    return s


def test_connecting_sends_only_login_capabilities_come_from_the_greeting_and_login(dovecot, imap_user):
    tap = _Commands()
    with DelayProxy((dovecot.host, dovecot.port), rtt_ms=0, tap=tap) as proxy:
        s = _store_via(proxy.port, dovecot, imap_user)
        try:
            # after LOGIN, imapclient's capabilities() took LOGIN's OK [CAPABILITY ...] list:
            # these are offered only after login, so the pre-login list was not kept
            assert s.has(b"CONDSTORE") and s.has(b"LIST-STATUS")
            assert s.client.capabilities() and tap.names() == ["LOGIN"]
        finally:
            s.close()
        assert tap.wait_for("LOGOUT") == ["LOGIN", "LOGOUT"]


def test_implicit_tls_takes_capabilities_from_the_greeting_too(dovecot, imap_user, monkeypatch):
    sent: list[bytes] = []
    real_send = imaplib.IMAP4.send

    def send(self: imaplib.IMAP4, data: bytes) -> None:
        sent.append(data)
        real_send(self, data)

    monkeypatch.setattr(imaplib.IMAP4, "send", send)
    s = _store_via(
        dovecot.tls_port,
        dovecot,
        imap_user,
        ssl=True,
        remotehost="localhost",
        sslcacertfile=str(dovecot.ca_cert),
    )
    try:
        assert s.has(b"CONDSTORE")
        assert [d.split(b" ")[1] for d in sent] == [b"LOGIN"]
    finally:
        s.close()


def test_starttls_discards_the_greetings_capabilities_and_asks_again_after_the_handshake(dovecot, imap_user):
    def mark_greeting(line: bytes) -> bytes:  # a capability only the plaintext greeting offers
        return line.replace(b"[CAPABILITY ", b"[CAPABILITY XPRETLS ", 1) if line.startswith(b"* OK") else line

    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        proxy.rewrite_down = mark_greeting
        s = _store_via(
            proxy.port,
            dovecot,
            imap_user,
            starttls=True,
            remotehost="localhost",
            sslcacertfile=str(dovecot.ca_cert),
        )
        try:
            # STARTTLS was sent in the clear, and everything after it (LOGIN, the password) is not
            up = bytes(proxy.up_log)
            assert re.search(rb"^\S+ STARTTLS\r\n", up, re.M), up[:200]
            assert b"LOGIN" not in up.upper() and imap_user.password.encode() not in up
            assert isinstance(s.client._imap.sock, ssl.SSLSocket)
            plaintext = up.split(b"STARTTLS", 1)[0]
            assert b"XPRETLS" in bytes(proxy.down_log)  # the greeting was marked ...
            assert b"CAPABILITY" not in plaintext.upper()  # ... and believed without asking
            # imaplib's list was asked again over TLS; ours comes from LOGIN
            assert (
                "XPRETLS" not in s.client._imap.capabilities and "AUTH=PLAIN" in s.client._imap.capabilities
            )
            assert not s.has(b"XPRETLS") and s.has(b"CONDSTORE")
            s.select("INBOX")
        finally:
            s.close()


def test_a_greeting_without_capabilities_makes_the_client_ask(dovecot, imap_user):
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        proxy.rewrite_down = lambda line: re.sub(rb"^\* OK \[CAPABILITY [^\]]*\] ", b"* OK ", line)
        s = _store_via(proxy.port, dovecot, imap_user)
        try:
            greeting = bytes(proxy.down_log).split(b"\r\n", 1)[0]
            assert b"CAPABILITY" not in greeting
            assert re.search(rb"^\S+ CAPABILITY\r\n", bytes(proxy.up_log))
            assert s.has(b"CONDSTORE") and "IMAP4REV1" in s.client._imap.capabilities
        finally:
            s.close()


def test_close_does_not_wait_for_the_answer_to_logout(dovecot, imap_user):
    tap = _Commands()
    with DelayProxy((dovecot.host, dovecot.port), rtt_ms=400, tap=tap) as proxy:
        s = _store_via(proxy.port, dovecot, imap_user)
        began = time.monotonic()
        s.close()
        assert time.monotonic() - began < 0.1
        assert tap.wait_for("LOGOUT")[-1] == "LOGOUT"
        s.close()  # a second close is harmless


def test_close_after_the_server_went_away_neither_raises_nor_hangs(dovecot, imap_user):
    with DelayProxy((dovecot.host, dovecot.port), rtt_ms=0) as proxy:
        s = _store_via(proxy.port, dovecot, imap_user)
    time.sleep(0.05)  # the proxy is gone, and the connection with it: the far end closed
    began = time.monotonic()
    s.close()
    assert time.monotonic() - began < 1.0 and s.client is None


# -- LOGIN pipelined with the listing -------------------------------------------------------


class _Chunks(_Commands):
    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[bytes] = []

    def __call__(self, chunk: bytes) -> None:
        self.chunks.append(chunk)
        super().__call__(chunk)


def _connect_prefetching(port: int, dovecot, user, **kw) -> ImapStore:
    s = ImapStore(imap_repo(dovecot, user, port=port, **kw), user.password)
    s.connect(prefetch_listing=True)
    return s


def test_prefetched_listing_goes_out_with_login_and_matches_the_ordinary_one(dovecot, imap_user):
    c = imap_user.connect()
    c.create_folder("Zwölf")
    c.append("Zwölf", b"Message-ID: <z@t>\r\n\r\nz\r\n")
    c.logout()
    plain = store_for(dovecot, imap_user)
    want = (plain.list_folders(), plain.separator, plain.list_status())
    plain.close()
    tap = _Chunks()
    with DelayProxy((dovecot.host, dovecot.port), rtt_ms=0, tap=tap) as proxy:
        s = _connect_prefetching(proxy.port, dovecot, imap_user)
        try:
            assert (s.list_folders(), s.separator, s.list_status()) == want
            assert tap.names() == ["LOGIN", "LIST"]
            assert len(tap.chunks) == 1  # one write: the listing costs no round trip of its own
            assert s.list_status() == want[2]  # asked again: a fresh LIST-STATUS
            assert tap.names() == ["LOGIN", "LIST", "LIST"]
        finally:
            s.close()


def test_prefetched_listing_is_dropped_once_another_command_ran(dovecot, imap_user):
    s = _connect_prefetching(dovecot.port, dovecot, imap_user)
    try:
        s.create_folder("Later")
        assert "Later" in {e.name for e in s.list_folders()}
        st = s.list_status()
        assert st is not None and "Later" in st
    finally:
        s.close()


def test_prefetching_with_a_password_that_needs_quoting_and_with_a_wrong_one(dovecot):
    password = 'Pa ss"wo\\rd{x}' + secrets.token_hex(4)
    user = dovecot.add_user(f"quoted{secrets.token_hex(3)}", password)
    s = _connect_prefetching(dovecot.port, dovecot, user)
    try:
        assert "INBOX" in {e.name for e in s.list_folders()}
    finally:
        s.close()
    wrong = ImapStore(imap_repo(dovecot, user), password + "x")
    with pytest.raises(AccountError, match="login refused"):
        wrong.connect(prefetch_listing=True)
    assert wrong.client is None


def _without_list_status() -> Callable[[bytes], bytes]:
    """A FaultProxy rewrite: the server neither offers nor knows LIST-STATUS (RFC 5819)."""
    refused = False

    def rewrite(line: bytes) -> bytes:
        nonlocal refused
        line = line.replace(b" LIST-STATUS", b"")
        if refused:
            return line
        if line.startswith((b"* LIST ", b"* STATUS ")):
            return b""  # LIST-STATUS's answer, turned into the BAD of a server without it
        m = re.match(rb"(\S+) OK List completed", line)
        if m:
            refused = True
            return m.group(1) + b" BAD Error in IMAP command LIST: Extra arguments.\r\n"
        return line

    return rewrite


def test_prefetching_from_a_server_without_list_status_falls_back_silently(dovecot, imap_user):
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        proxy.rewrite_down = _without_list_status()
        s = _connect_prefetching(proxy.port, dovecot, imap_user)
        try:
            assert b" BAD " in bytes(proxy.down_log)  # the pipelined LIST was refused
            assert not s.has(b"LIST-STATUS")
            assert [e.name for e in s.list_folders()] == ["INBOX"]
            assert s.list_status() is None
            assert s.select("INBOX").validity > 0  # the session is in step
        finally:
            s.close()


@pytest.mark.parametrize("prefetch", [False, True])
def test_a_link_dropped_right_after_the_greeting_is_a_lost_connection_not_a_refused_login(
    dovecot, imap_user, prefetch
):
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        proxy.greeting_then_close = {0}
        s = ImapStore(imap_repo(dovecot, imap_user, port=proxy.port), imap_user.password)
        with pytest.raises(StoreError, match="connection"):
            s.connect(prefetch_listing=prefetch)
        assert s.client is None


def test_a_connection_started_early_is_the_one_the_store_logs_in_on(dovecot, imap_user):
    from fastsync.stores import early

    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        early.start(dovecot.host, proxy.port)
        s = _store_via(proxy.port, dovecot, imap_user)
        try:
            assert s.has(b"CONDSTORE")
            assert proxy.connections == 1  # no second connection was opened
            assert not early._pending
        finally:
            s.close()


def test_an_early_connection_that_failed_leaves_the_store_its_own_attempt_and_error(dovecot, imap_user):
    from fastsync.errors import AccountError
    from fastsync.stores import early
    from tools.dovecot import free_port

    closed = free_port()
    early.start(dovecot.host, closed)  # refused: nothing listens there
    with pytest.raises(AccountError, match="cannot connect"):
        _store_via(closed, dovecot, imap_user)
    assert not early._pending
    early.start(dovecot.host, closed)
    early.drop()
    assert not early._pending
