"""fastsync.mutf7 against imapclient's codec, the one fastsync used before."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from imapclient import imap_utf7

from fastsync import mutf7

NAMES = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(NAMES)
def test_encode_agrees_with_imapclient_and_round_trips(name: str) -> None:
    wire = mutf7.encode(name)
    assert wire == imap_utf7.encode(name)
    assert mutf7.decode(wire) == name


@given(st.binary(max_size=30) | st.text("&-AOQ,+/xyz", max_size=20).map(str.encode))
def test_decode_never_fails_and_agrees_with_imapclient_on_well_formed_names(raw: bytes) -> None:
    text = mutf7.decode(raw)  # never raises: an odd name is kept as it came
    try:
        theirs = imap_utf7.decode(raw)
    except UnicodeDecodeError:
        return
    if imap_utf7.encode(theirs) == raw:  # raw is the one spelling of some name
        assert text == theirs


def test_malformed_runs_are_kept_as_they_came() -> None:
    assert mutf7.decode(b"a&") == "a&"
    assert mutf7.decode(b"&\x00-x") == "&\x00-x"
    assert mutf7.decode(b"&AGE-") == "&AGE-"  # "a" shifted: not the canonical spelling
    assert mutf7.decode(b"&AO-") == "&AO-"  # half a character


def test_known_names() -> None:
    assert mutf7.encode("Gäste & Co") == b"G&AOQ-ste &- Co"
    assert mutf7.decode(b"~peter/mail/&U,BTFw-/&ZeVnLIqe-") == "~peter/mail/台北/日本語"
    assert mutf7.decode(b"INBOX") == "INBOX"
