"""Maildir file names: the U and V fields fastsync writes and reads back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from fastsync.stores import maildir_names as mn
from fastsync.stores.maildir_scan import UidReader

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


WRITTEN = st.builds(mn.with_uid, BASE, st.integers(1, 60), VHEX.filter(bool))  # as fastsync names files
INFO = st.none() | st.text("2,FSRT:x", max_size=5)
NAME = st.tuples(BASE | WRITTEN, INFO).map(lambda bi: mn.join_name(*bi))


@given(st.lists(NAME | st.text(min_size=1, max_size=8), min_size=1, max_size=8), VHEX, st.integers(0, 50))
def test_reading_a_directory_in_bulk_agrees_with_reading_each_name(names, vhex, limit) -> None:
    def general(base: str) -> int:
        uid = mn.uid_of(base, vhex)
        return uid if uid < limit else 0

    reader = UidReader(general=general, vhex=vhex, limit=limit)
    expected = [(*mn.split_name(n), general(mn.split_name(n)[0])) for n in names]
    assert list(reader.read(names)) == expected
    assert [mn.join_name(b, i) for b, i, _ in reader.read(names)] == names
