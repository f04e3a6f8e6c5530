"""The IMAP store against the real private Dovecot: listings by difference, LIST-STATUS."""

from __future__ import annotations

import pytest

from fastsync.config import ImapRepo
from fastsync.model import FLAGGED, SEEN, Outgoing
from fastsync.stores.imap import ImapStore
from fastsync.stores.imap_fetch import parse_internaldate

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
    assert ch.uids == {u for u in uids if u != uids[4]} | {new_uid}
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
