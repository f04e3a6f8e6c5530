"""Pure parts of surviving servers that rewrite messages: the second identity key, pairing by
it when content keys differ, and telling what a store kept apart from what was sent."""

from __future__ import annotations

from fastsync.model import Outgoing, content_key, header_section, loose_key, message_id
from fastsync.plan import PlanOptions, plan
from fastsync.stored_check import altered_messages

SENT_TEXT = "From: Jörg <j@example.org>\r\nSubject: Grüße\r\nMessage-ID: <g1@example.org>\r\n\r\nhi\r\n"
SENT = SENT_TEXT.encode()
REWRITTEN = bytes(b if b < 0x80 else ord("X") for b in SENT)  # what Cyrus stores


def keys(data: bytes, date: float = 1_700_000_000.0) -> tuple[bytes, bytes | None]:
    head = header_section(data)
    return content_key(head, len(data)), loose_key(head, date, len(data))


def test_in_place_rewriting_changes_the_content_key_but_not_the_second_key() -> None:
    (k1, l1), (k2, l2) = keys(SENT), keys(REWRITTEN)
    assert len(SENT) == len(REWRITTEN) and k1 != k2
    assert l1 is not None and l1 == l2


def test_second_key_differs_by_date_size_or_message_id_and_needs_both() -> None:
    head = header_section(SENT)
    base = loose_key(head, 1_700_000_000.0, 100)
    assert base != loose_key(head, 1_700_000_001.0, 100)
    assert base != loose_key(head, 1_700_000_000.0, 101)
    assert base != loose_key(head.replace(b"<g1@", b"<g2@"), 1_700_000_000.0, 100)
    assert loose_key(b"From: a\r\nSubject: no id", 1_700_000_000.0, 100) is None
    assert loose_key(head, 0.0, 100) is None


def test_message_id_is_found_folded_and_any_case() -> None:
    assert message_id(b"Subject: x\r\nmessage-ID:\r\n  <a@b>\r\nTo: y") == b"<a@b>"
    assert message_id(b"Subject: x\r\nMessage-ID:   \r\nTo: y") is None


def test_without_state_rewritten_messages_pair_by_the_second_key_not_copied() -> None:
    far = {1: 0, 2: 0}  # 1 rewritten on far, 2 identical on both
    near = {7: 0, 8: 0}
    far_keys = {1: keys(REWRITTEN)[0], 2: b"same"}
    near_keys = {7: keys(SENT)[0], 8: b"same"}
    loose = keys(SENT)[1]
    assert loose is not None
    p = plan(None, far, near, PlanOptions(), far_keys, near_keys, {1: loose}, {7: loose})
    assert sorted((f, n) for f, n, _ in p.paired) == [(1, 7), (2, 8)]
    assert p.copy_to_near == [] and p.copy_to_far == []
    without = plan(None, far, near, PlanOptions(), far_keys, near_keys)
    assert without.copy_to_near == [1] and without.copy_to_far == [7]


class _Kept:
    """What altered_messages reads of a store: the identities of what it holds."""

    checks_stored = True

    def __init__(self, held: dict[int, bytes]) -> None:
        self.held = held

    def identities(self, uids: list[int]) -> dict[int, bytes]:
        held = {u: self.held[u] for u in uids if u in self.held}
        return {u: content_key(header_section(data), len(data)) for u, data in held.items()}


def test_altered_messages_names_each_difference_and_ignores_exact_or_vanished_copies() -> None:
    grown = SENT.replace(b"hi\r\n", b"hi\r\nfooter added\r\n")
    store = _Kept({10: REWRITTEN, 11: SENT, 12: grown})
    sent = [(Outgoing(1, 0, 0.0, SENT), 10), (Outgoing(2, 0, 0.0, SENT), 11),
            (Outgoing(3, 0, 0.0, SENT), 12), (Outgoing(4, 0, 0.0, SENT), 13)]
    found = altered_messages(store, sent)
    assert [(a.src_uid, a.dst_uid, a.message_id) for a in found] == [
        (1, 10, "<g1@example.org>"), (3, 12, "<g1@example.org>")]
    assert found[0].what == f"header bytes differ (same size, {len(SENT)} bytes)"
    assert found[1].what == f"size {len(SENT)} -> {len(grown)} bytes"
