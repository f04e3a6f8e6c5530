"""Maildir file names: the U and V fields fastsync writes and reads back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fastsync.stores import maildir_names as mn

FIELD = st.sampled_from(["U=", "V=", "S=", "W=", "U=0", "V=1f", "U=12", "U=x", "V=", ""]).flatmap(
    lambda head: st.text("0123456789abfU=V", max_size=4).map(lambda rest: head + rest)
)
BASE = st.tuples(st.text("0123456789.MPQhost", min_size=1, max_size=12), st.lists(FIELD, max_size=5)).map(
    lambda parts: ",".join([parts[0], *parts[1]])
)
VHEX = st.sampled_from(["1f", "0", "abc", "1", ""])


@given(BASE, VHEX)
def test_the_quick_reading_agrees_with_the_field_by_field_one(base: str, vhex: str) -> None:
    assert mn.uid_of(base, vhex) == mn._uid_of_fields(base, vhex)


@given(BASE, st.integers(1, 2**32 - 1), VHEX.filter(bool))
def test_a_written_uid_is_read_back_under_its_validity_only(base: str, uid: int, vhex: str) -> None:
    name = mn.with_uid(base, uid, vhex)
    assert mn.uid_of(name, vhex) == uid
    assert mn.uid_of(name, vhex + "0") == 0


def test_examples() -> None:
    assert mn.uid_of("1700000000.M1P2Q3.host,U=42,V=1f", "1f") == 42
    assert mn.uid_of("1700000000.M1P2Q3.host,U=42,V=1f,S=1234", "1f") == 42
    assert mn.uid_of("1700000000.M1P2Q3.host,S=1234,U=42,V=1f", "1f") == 42
    assert mn.uid_of("1700000000.M1P2Q3.host,U=42,V=1e", "1f") == 0
    assert mn.uid_of("1700000000.M1P2Q3.host,U=42", "1f") == 0
    assert mn.uid_of("1700000000.M1P2Q3.host", "1f") == 0
