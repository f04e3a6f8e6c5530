"""migrate.gmail's pure part: which messages each folder leaves out (see test_gmail for the
real migration through a Gmail-like proxy)."""

from __future__ import annotations

from array import array
from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from fastsync.migrate import gmail

ALL = "[Gmail]/All Mail"
FOLDERS = st.dictionaries(
    st.sampled_from(["INBOX", "A", "B", "C", ALL]),
    st.lists(st.integers(1, 12), unique=True, max_size=10),
    min_size=1,
)


def _ids(folders: dict[str, list[int]]) -> dict[str, gmail.Ids]:
    """UIDs 1.. in each folder; the listed numbers are their X-GM-MSGIDs."""
    return {f: (array("I", range(1, len(m) + 1)), array("Q", m)) for f, m in folders.items()}


def _copies(ids: dict[str, gmail.Ids], once: bool, done: list[str] | None = None) -> Counter[int]:
    plan = gmail.GmailPlan(all_mail=ALL if ALL in ids else None, ids=ids)
    order = gmail.copy_order(list(ids), plan.all_mail)
    if once:
        plan.skips = gmail.first_copies(order, ids)
    last = set(plan.last_skip(order if done is None else done))
    copies: Counter[int] = Counter()
    for folder, (uids, msgids) in ids.items():
        if done is not None and folder not in done and folder != ALL:
            continue  # this folder failed: it copied nothing
        left_out = last if folder == plan.all_mail else set(plan.skips.get(folder, ()))
        copies.update(m for u, m in zip(uids, msgids, strict=True) if u not in left_out)
    return copies


@given(FOLDERS)
def test_each_label_keeps_its_copy_and_all_mail_gets_only_the_unlabelled(
    folders: dict[str, list[int]],
) -> None:
    ids = _ids(folders)
    labels = Counter(m for f, ms in folders.items() if f != ALL for m in ms)
    expected = labels + Counter(m for m in folders.get(ALL, []) if m not in labels)
    assert _copies(ids, once=False) == expected


@given(FOLDERS)
def test_once_copies_every_message_exactly_once(folders: dict[str, list[int]]) -> None:
    held = {m for ms in folders.values() for m in ms}
    assert _copies(_ids(folders), once=True) == Counter(held)


@given(FOLDERS, st.booleans())
def test_what_a_failed_folder_held_still_lands_in_all_mail(folders: dict[str, list[int]], once: bool) -> None:
    every = sorted({m for ms in folders.values() for m in ms})
    ids = _ids({**folders, ALL: every})
    order = gmail.copy_order(list(ids), ALL)
    done = order[1:]  # the first folder failed
    assert set(_copies(ids, once, done)) == set(every)  # nothing is missing from the destination


def test_all_mail_is_found_by_its_special_use_first_then_by_name() -> None:
    assert gmail.all_mail([("Archive", "\\All"), (ALL, None)]) == "Archive"
    assert gmail.all_mail([("INBOX", None), ("[Google Mail]/All Mail", None)]) == "[Google Mail]/All Mail"
    assert gmail.all_mail([("INBOX", None)]) is None
    assert gmail.copy_order(["b", ALL, "INBOX", "a"], ALL) == ["INBOX", "a", "b"]
