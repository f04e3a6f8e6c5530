"""`fastsync migrate SRC DST` against two private Dovecots: the session one (separator ".")
as source and one with separator "/", a second \\Sent name and a 64 KiB APPEND limit as
destination. Through the real command."""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.imapenv import (
    MAX_MAIL_SIZE,
    append,
    contents,
    folder_messages,
    folder_names,
    message,
    new_user,
)
from tools.corpus import CorpusSpec, generate
from tools.dovecot import Dovecot, User

pytestmark = pytest.mark.dovecot
REPO_ROOT = Path(__file__).resolve().parent.parent
CORPUS = ["INBOX", "Archive/2023", "Sent", "Entwürfe", "Old Stuff"]




@dataclass
class Mig:
    src: User
    dst: User
    tmp: Path

    def url(self, user: User) -> str:
        return f"imap://{user.name}@{user.server.host}:{user.server.port}"

    def argv(self, *args: str) -> list[str]:
        (self.tmp / "p1").write_text(self.src.password + "\n")
        (self.tmp / "p2").write_text(self.dst.password + "\n")
        return [
            sys.executable,
            "-m",
            "fastsync",
            "migrate",
            self.url(self.src),
            self.url(self.dst),
            "--no-tls1",
            "--no-tls2",
            "--password1-file",
            str(self.tmp / "p1"),
            "--password2-file",
            str(self.tmp / "p2"),
            "--metadata",
            str(self.tmp / "meta"),
            *args,
        ]

    def run(self, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.argv(*args),
            capture_output=True,
            text=True,
            timeout=120,
            stdin=subprocess.DEVNULL,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        )
        if expect is not None:
            assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        for pw in (self.src.password, self.dst.password):
            assert pw not in proc.stdout + proc.stderr
        return proc


@pytest.fixture
def mig(dovecot: Dovecot, slash_dovecot: Dovecot, tmp_path: Path) -> Mig:
    return Mig(new_user(dovecot, "src"), new_user(slash_dovecot, "dst"), tmp_path)


def total_line(out: str) -> list[int]:
    """found copied present skipped failed bytes of the statistics block's total line."""
    line = next(ln for ln in out.splitlines() if ln.strip().startswith("total "))
    return [int(x) for x in line.split()[1:7]]


def test_full_migration_is_byte_exact_verifies_clean_and_a_second_run_copies_nothing(mig: Mig) -> None:
    corpus = generate(mig.src.maildir, CorpusSpec(folders=CORPUS, messages=150, seed=3, size_mix="small"))
    report = mig.tmp / "report.json"
    out = mig.run("--verify", "--report", str(report)).stdout
    assert total_line(out)[:5] == [150, 150, 0, 0, 0]
    assert "verify: clean" in out
    assert folder_names(mig.dst) == ["Archive/2023", "Entwürfe", "INBOX", "Old Stuff", "Sent"]
    for name in CORPUS:
        src = folder_messages(mig.src, name.replace("/", "."))
        dst = folder_messages(mig.dst, name)
        assert contents(src) == contents(dst), name  # bytes, flags
        assert sorted(d for _, _, d in src.values()) == sorted(d for _, _, d in dst.values())  # INTERNALDATE
    data = json.loads(report.read_text())
    assert data["total"]["copied"] == 150 and data["total"]["bytes"] == corpus.total_imap_bytes
    assert data["verify"]["clean"] is True and data["exit_code"] == 0
    again = mig.run().stdout
    assert total_line(again)[:5] == [150, 0, 150, 0, 0]
    assert sum(len(folder_messages(mig.dst, n)) for n in CORPUS) == 150


def test_messages_already_on_the_destination_without_state_are_not_copied_again(mig: Mig) -> None:
    for i in range(20):
        append(mig.src, "INBOX", message(i))
    append(mig.src, "INBOX", b"From: x@example.org\r\nSubject: no id\r\n\r\nno message-id here\r\n")
    for i in range(8):  # "another tool" (or a crash before the state was written) copied these
        append(mig.dst, "INBOX", message(i))
    append(mig.dst, "INBOX", b"From: x@example.org\r\nSubject: no id\r\n\r\nno message-id here\r\n")
    out = mig.run().stdout
    assert total_line(out)[:3] == [21, 12, 9]
    assert contents(folder_messages(mig.src, "INBOX")) == contents(folder_messages(mig.dst, "INBOX"))


def test_an_interrupted_run_resumes_without_duplicates(mig: Mig) -> None:
    generate(
        mig.src.maildir, CorpusSpec(folders=["INBOX"], messages=400, seed=5, size_mix="small", weird=False)
    )
    proc = subprocess.Popen(
        mig.argv("--workers", "1", "--batch-messages", "4"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        copied = 0
        while time.monotonic() < deadline and copied < 40:
            time.sleep(0.05)
            with __import__("contextlib").suppress(Exception):
                copied = len(folder_messages(mig.dst, "INBOX"))
        os.killpg(proc.pid, signal.SIGKILL)  # a crash: no clean shutdown at all
    finally:
        proc.wait(10)
    assert 0 < copied < 400, "the run was not interrupted midway"
    out = mig.run("--verify").stdout
    assert "verify: clean" in out
    assert len(folder_messages(mig.dst, "INBOX")) == 400


def test_special_folders_map_by_use_when_names_differ(mig: Mig) -> None:
    append(mig.src, "Sent", message(1, tag="sent"))  # \Sent on the source
    append(mig.dst, "Sent Messages", message(99, tag="old"))  # \Sent on the destination
    out = mig.run().stdout
    assert "'Sent' -> 'Sent Messages'" in out or "Sent -> Sent Messages" in out
    assert "Sent" not in folder_names(mig.dst)
    assert len(folder_messages(mig.dst, "Sent Messages")) == 2
    mig.run("--no-automap", "--metadata", str(mig.tmp / "meta2"))
    assert "Sent" in folder_names(mig.dst)


def test_map_include_exclude_and_folder_select_folders_and_names(mig: Mig) -> None:
    for name in ("INBOX", "Work.Old", "Work.New", "Private"):
        append(mig.src, name, message(1, tag=name))
    mig.run("--include", "^Work", "--exclude", "Old$", "--map", "Work.New=Projects/Current")
    assert folder_names(mig.dst) == ["INBOX", "Projects/Current"]  # INBOX exists always
    assert len(folder_messages(mig.dst, "INBOX")) == 0
    mig.run("--folder", "Private")
    assert "Private" in folder_names(mig.dst) and "Work/Old" not in folder_names(mig.dst)


def test_dry_run_counts_what_would_be_copied_and_changes_nothing(mig: Mig) -> None:
    for i in range(10):
        append(mig.src, "INBOX", message(i))
        append(mig.src, "Lists.Python", message(i, tag="py"))
    for i in range(4):
        append(mig.dst, "INBOX", message(i))
    before = folder_names(mig.dst)
    out = mig.run("--dry-run").stdout
    sizes = sum(len(message(i)) for i in range(4, 10))
    assert f"'INBOX' -> 'INBOX': would copy 6 messages ({sizes} bytes), 4 already there" in out
    assert "'Lists.Python' -> 'Lists/Python': would copy 10 messages" in out
    assert folder_names(mig.dst) == before and len(folder_messages(mig.dst, "INBOX")) == 4
    assert not any((mig.tmp / "meta").rglob("*.state"))


def test_a_message_the_destination_refuses_is_reported_and_the_rest_copied(mig: Mig) -> None:
    for i in range(6):
        append(mig.src, "INBOX", message(i))
    append(mig.src, "INBOX", message(50, size=MAX_MAIL_SIZE + 1000, tag="huge"))
    proc = mig.run("--report", str(mig.tmp / "r.json"), expect=1)
    errors = [ln for ln in proc.stderr.splitlines() if "huge50@example.org" in ln]
    assert len(errors) == 1 and "'INBOX'" in errors[0] and "UID 7" in errors[0] and "LIMIT" in errors[0]
    assert total_line(proc.stdout)[:5] == [7, 6, 0, 0, 1]
    assert len(folder_messages(mig.dst, "INBOX")) == 6
    data = json.loads((mig.tmp / "r.json").read_text())
    assert data["exit_code"] == 1 and len(data["folders"][0]["message_errors"]) == 1
    # --maxsize leaves it out instead: counted as skipped, not failed
    proc = mig.run("--maxsize", str(MAX_MAIL_SIZE), "--verify", expect=0)
    assert total_line(proc.stdout)[:5] == [7, 0, 6, 1, 0]


def test_login_and_connection_failures_have_an_exit_code_per_side(mig: Mig) -> None:
    (mig.tmp / "bad").write_text("wrong\n")
    argv = mig.argv()
    i = argv.index("--password2-file")
    bad_dst = [*argv[: i + 1], str(mig.tmp / "bad"), *argv[i + 2 :]]
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    proc = subprocess.run(bad_dst, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 11 and "DST" in proc.stderr and "login refused" in proc.stderr
    bad_src = [a if a != str(mig.tmp / "p1") else str(mig.tmp / "bad") for a in argv]
    proc = subprocess.run(bad_src, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 10 and "SRC" in proc.stderr
    closed = [a.replace(f":{mig.dst.server.port}", ":1") for a in argv]
    proc = subprocess.run(closed, capture_output=True, text=True, timeout=60, env=env)
    assert proc.returncode == 13 and "cannot connect" in proc.stderr


def test_batch_csv_migrates_each_account_and_a_rerun_copies_nothing(
    dovecot: Dovecot, slash_dovecot: Dovecot, tmp_path: Path
) -> None:
    pairs = [(new_user(dovecot, "bs"), new_user(slash_dovecot, "bd")) for _ in range(2)]
    lines = []
    for k, (s, d) in enumerate(pairs):
        for i in range(5 + k):
            append(s, "INBOX", message(i, tag=f"b{k}"))
        (tmp_path / f"s{k}").write_text(s.password)
        lines.append(
            f"imap://{s.name}@{s.server.host}:{s.server.port},imap://{d.name}@{d.server.host}:{d.server.port},"
            f"file:{tmp_path / f's{k}'},env:DSTPW{k}"
        )
    csv = tmp_path / "accounts.csv"
    csv.write_text("# src,dst,password1,password2\n" + "\n".join(lines) + "\n")
    env = dict(
        os.environ, PYTHONPATH=str(REPO_ROOT), **{f"DSTPW{k}": d.password for k, (_, d) in enumerate(pairs)}
    )
    argv = [
        sys.executable,
        "-m",
        "fastsync",
        "migrate",
        "--batch",
        str(csv),
        "--no-tls1",
        "--no-tls2",
        "--metadata",
        str(tmp_path / "meta"),
        "-q",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    summary = [ln for ln in proc.stdout.splitlines() if ln.startswith("account ")]
    assert len(summary) == 2 and "copied 5," in summary[0] and "copied 6," in summary[1]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
    assert proc.returncode == 0 and proc.stdout.count("copied 0,") == 2, proc.stdout


def test_errorsmax_stops_the_run_after_that_many_message_errors(mig: Mig) -> None:
    for i in range(4):
        append(mig.src, "INBOX", message(i, size=MAX_MAIL_SIZE + 1000, tag="big"))
    proc = mig.run("--errorsmax", "2", "--workers", "1", expect=1)
    assert sum("Message-ID <big" in ln for ln in proc.stderr.splitlines()) == 2
    assert "stopping after 2 message errors" in proc.stderr


def _delete_on(user: User, *msgids: str) -> None:
    c = user.connect()
    try:
        c.select_folder("INBOX")
        for msgid in msgids:
            c.delete_messages(c.search(["HEADER", "Message-ID", msgid]))
        c.expunge()
    finally:
        c.logout()


def _dst_ids(mig: Mig) -> set[bytes]:
    ids = set()
    for _flags, data, _date in folder_messages(mig.dst, "INBOX").values():
        ids.add(re.search(rb"Message-ID: <([^>]+)>", data).group(1))
    return ids


def test_delete2_deletes_only_what_the_migration_copied_and_the_source_deleted(mig: Mig) -> None:
    for i in range(10):
        append(mig.src, "INBOX", message(i))
    mig.run()
    append(mig.dst, "INBOX", message(77, tag="only-on-dst"))  # never on SRC: never deleted
    _delete_on(mig.src, "<m3@example.org>")
    proc = mig.run("--delete2", "--verify", expect=1)  # verify finds the DST-only message
    assert "1 deleted on the destination" in proc.stdout, proc.stdout
    assert "verify: DIFFERENCES" in proc.stdout and "extra on dst: <only-on-dst77@example.org>" in proc.stdout
    kept = {f"m{i}@example.org".encode() for i in range(10) if i != 3}
    assert _dst_ids(mig) == kept | {b"only-on-dst77@example.org"}
    _delete_on(mig.src, "<m4@example.org>")
    mig.run()  # deletions are off by default, and this run's state forgets the pair
    assert b"m4@example.org" in _dst_ids(mig)
    mig.run("--delete2")
    assert b"m4@example.org" in _dst_ids(mig), "a deletion seen by a run without --delete2 is not carried"
    # the deletion guard: SRC deletes 6 of its 8 remaining messages
    _delete_on(mig.src, *(f"<m{i}@example.org>" for i in (0, 1, 2, 5, 6, 7)))
    proc = mig.run("--delete2", expect=1)
    assert "would delete 6 of 10" in proc.stderr, proc.stderr
    assert len(folder_messages(mig.dst, "INBOX")) == 10
    mig.run("--delete2", "--force-deletes")
    assert _dst_ids(mig) == {
        b"m4@example.org", b"m8@example.org", b"m9@example.org", b"only-on-dst77@example.org",
    }


def test_maxage_and_minage_copy_only_messages_inside_the_date_window(mig: Mig) -> None:
    now = datetime.now(UTC)
    c = mig.src.connect()
    for days in (1, 10, 100, 1000):
        body = f"Message-ID: <age{days}@t>\r\nSubject: {days} days old\r\n\r\nx\r\n".encode()
        c.append("INBOX", body, [], now - timedelta(days=days))
    c.logout()
    mig.run("--maxage", "200", "--minage", "5")
    copied = {data for _flags, data, _date in folder_messages(mig.dst, "INBOX").values()}
    assert copied == {
        b"Message-ID: <age10@t>\r\nSubject: 10 days old\r\n\r\nx\r\n",
        b"Message-ID: <age100@t>\r\nSubject: 100 days old\r\n\r\nx\r\n",
    }


def test_another_run_holding_the_migrations_lock_exits_4(mig: Mig) -> None:
    from fastsync.migrate.urls import migration_id, parse_endpoint
    from fastsync.state import AccountLock

    append(mig.src, "INBOX", message(1))
    src = parse_endpoint(mig.url(mig.src), "SRC", plain=True)
    name = migration_id(src, parse_endpoint(mig.url(mig.dst), "DST", plain=True))
    with AccountLock(mig.tmp / "meta", name):
        proc = mig.run(expect=4)
    assert "locked by another fastsync" in proc.stderr, proc.stderr
    assert folder_messages(mig.dst, "INBOX") == {}
    mig.run()  # the lock released: the same migration goes through
    assert len(folder_messages(mig.dst, "INBOX")) == 1


def test_a_source_that_cannot_be_reached_exits_12(mig: Mig) -> None:
    argv = mig.argv()
    src = mig.url(mig.src)
    closed = [a.replace(f":{mig.src.server.port}", ":1") if a == src else a for a in argv]
    proc = subprocess.run(closed, capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    assert proc.returncode == 12 and "SRC" in proc.stderr and "cannot connect" in proc.stderr, proc.stderr


def test_a_destination_over_quota_exits_14(dovecot: Dovecot, slash_dovecot: Dovecot, tmp_path: Path) -> None:
    dst = slash_dovecot.add_user(
        f"full-{secrets.token_hex(3)}", secrets.token_urlsafe(12), "userdb_quota_rule=*:messages=3"
    )
    mig = Mig(new_user(dovecot, "src"), dst, tmp_path)
    for i in range(6):
        append(mig.src, "INBOX", message(i))
    proc = mig.run("--workers", "1", expect=14)
    assert "quota" in proc.stderr.lower(), proc.stderr
    assert len(folder_messages(mig.dst, "INBOX")) == 3


def test_sigterm_stops_a_migration_with_exit_130_and_the_rerun_completes_it(mig: Mig) -> None:
    generate(
        mig.src.maildir, CorpusSpec(folders=["INBOX"], messages=400, seed=6, size_mix="small", weird=False)
    )
    proc = subprocess.Popen(
        mig.argv("--workers", "1", "--batch-messages", "4"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 60
        copied = 0
        while time.monotonic() < deadline and copied < 40 and proc.poll() is None:
            time.sleep(0.05)
            copied = len(folder_messages(mig.dst, "INBOX")) if "INBOX" in folder_names(mig.dst) else 0
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err.decode()
    assert 0 < len(folder_messages(mig.dst, "INBOX")) < 400
    assert "verify: clean" in mig.run("--verify").stdout
    assert len(folder_messages(mig.dst, "INBOX")) == 400


def test_a_huge_folder_is_copied_in_uid_ranges_by_the_workers_byte_exact(mig: Mig) -> None:
    generate(mig.src.maildir, CorpusSpec(folders=["INBOX"], messages=400, seed=5, size_mix="small"))
    out = mig.run("--splitthreshold", "100", "--workers", "3", "--verify").stdout
    assert "INBOX: copied in 8 UID ranges by 3 workers" in out  # parts of about threshold/2
    assert total_line(out)[:5] == [400, 400, 0, 0, 0] and "verify: clean" in out
    assert contents(folder_messages(mig.src, "INBOX")) == contents(folder_messages(mig.dst, "INBOX"))
    assert not list((mig.tmp / "meta").rglob("*.part*"))  # merged into the folder's one state
    again = mig.run("--splitthreshold", "100", "--workers", "3").stdout
    assert "UID ranges" not in again and total_line(again)[:5] == [400, 0, 400, 0, 0]
