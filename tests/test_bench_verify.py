"""bench/verify.py, the benchmark's completeness check, on small hand-made Maildir trees: it
must see a missing, extra, re-flagged or moved message in any folder layout (not only totals)."""

from __future__ import annotations

from pathlib import Path

from bench.verify import folder_name, tally

A = b"Message-ID: <a@x>\r\nSubject: a\r\n\r\nbody a\r\n"
B = b"Message-ID: <b@x>\r\nSubject: b\r\n\r\nbody b\r\n"


def put(root: Path, folder: str, name: str, data: bytes) -> None:
    d = root / folder / ("cur" if ":2," in name else "new")
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def source(tmp: Path) -> Path:
    """A Dovecot-layout source: INBOX at the root, "Archive/2023" as .Archive.2023, a UTF-7 name."""
    root = tmp / "src"
    put(root, ".", "1.h:2,S", A)
    put(root, ".Archive.2023", "2.h:2,FSa", B)  # a Dovecot keyword letter (a) is not a flag
    put(root, ".Entw&APw-rfe", "3.h:2,", A)
    return root


def test_the_same_messages_in_another_layout_with_lf_and_x_tuid_are_complete(tmp_path: Path) -> None:
    dst = tmp_path / "dst"
    put(dst, "INBOX", "x1:2,S", A.replace(b"\r\n", b"\n"))
    put(dst, "Archive/2023", "x2:2,SF", b"X-TUID: abc\n" + B.replace(b"\r\n", b"\n"))
    put(dst, "Entwürfe", "x3:2,", A)
    assert folder_name(dst, str(dst / "Archive" / "2023")) == "Archive/2023"
    assert tally(dst).differences(tally(source(tmp_path))) == ""


def test_same_totals_but_a_message_in_the_wrong_folder_or_with_other_flags_is_incomplete(
    tmp_path: Path,
) -> None:
    src = tally(source(tmp_path))
    moved = tmp_path / "moved"  # same count, bytes and \Flagged count: only per folder it differs
    put(moved, "INBOX", "x1:2,S", A)
    put(moved, "INBOX", "x2:2,FS", B)
    put(moved, "Entwürfe", "x3:2,", A)
    assert "'Archive/2023': 1 missing" in tally(moved).differences(src)
    assert "'INBOX': 1 extra" in tally(moved).differences(src)
    reflagged = tmp_path / "reflagged"  # \Seen moved from one message to another
    put(reflagged, "INBOX", "x1:2,", A)
    put(reflagged, "Archive/2023", "x2:2,FS", B)
    put(reflagged, "Entwürfe", "x3:2,S", A)
    diff = tally(reflagged).differences(src)
    assert "'INBOX': 1 missing, 1 extra" in diff and "'Entwürfe': 1 missing, 1 extra" in diff


def test_a_message_with_altered_bytes_but_its_message_id_and_flags_is_noted_not_missing(
    tmp_path: Path,
) -> None:
    src = tally(source(tmp_path))
    dst = tmp_path / "dst"
    put(dst, "INBOX", "x1:2,S", A.replace(b"Subject: a", b"Subject:  a"))
    put(dst, "Archive/2023", "x2:2,FS", B)
    put(dst, "Entwürfe", "x3:2,", A)
    got = tally(dst)
    assert got.altered(src) == "content altered in 1 messages"
    # within the tolerance only: a few bytes of a big corpus, not a third of a tiny one
    assert "altered content" in got.differences(src)
