"""The test harness itself: the private Dovecot launcher and the corpus generator."""

from __future__ import annotations

import imaplib
import os
import re
import socket
import ssl
import time
from pathlib import Path

import imapclient
import psutil
import pytest

from tools import dovecot as dovecot_module
from tools.corpus import DEFAULT_FOLDERS, CorpusSpec, add_messages, generate, imap_name
from tools.dovecot import Dovecot, User

_IMAP_TO_LETTER = {b"\\Draft": "D", b"\\Flagged": "F", b"\\Answered": "R", b"\\Seen": "S", b"\\Deleted": "T"}


def crlf(data: bytes) -> bytes:
    """What IMAP serves for a file stored with LF endings."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def disk_messages(folder_dir: Path) -> dict[bytes, tuple[int, str]]:
    """CRLF bytes -> (mtime, flag letters) of every message file of one Maildir folder."""
    out = {}
    for sub in ("cur", "new"):
        for f in (folder_dir / sub).iterdir():
            out[crlf(f.read_bytes())] = (int(f.stat().st_mtime), f.name.partition(":2,")[2])
    return out


def snapshot(root: Path) -> dict[str, tuple[bytes, int]]:
    """Relative path -> (bytes, mtime) of every file under ``root``; mtime of messages only."""
    return {
        str(p.relative_to(root)): (p.read_bytes(), int(p.stat().st_mtime) if ",S=" in p.name else 0)
        for p in sorted(root.rglob("*")) if p.is_file()
    }


def family(server: Dovecot) -> list[psutil.Process]:
    assert server.master_pid is not None
    master = psutil.Process(server.master_pid)
    return [master, *master.children(recursive=True)]


def running(procs: list[psutil.Process]) -> list[int]:
    alive = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p.pid)
        except psutil.NoSuchProcess:
            pass
    return alive


# -- logins and TLS ----------------------------------------------------------------------------


@pytest.mark.dovecot
def test_plain_login_works_and_wrong_password_is_refused(dovecot: Dovecot, imap_user: User) -> None:
    with imap_user.connect() as client:
        client.noop()
        assert client.select_folder("INBOX")[b"EXISTS"] == 0
    with pytest.raises(imapclient.exceptions.LoginError):
        dovecot.connect(imap_user.name, imap_user.password + "x")


@pytest.mark.dovecot
def test_users_added_after_start_can_log_in_at_once(dovecot: Dovecot) -> None:
    first = dovecot.add_user("late-a", "pw-a")
    second = dovecot.add_user("late-b", "pw-b")  # same second, so only the size tells them apart
    for user in (first, second):
        with user.connect() as client:
            assert client.list_folders()


@pytest.mark.dovecot
@pytest.mark.parametrize("hostname", ["localhost", "127.0.0.1"])
def test_implicit_tls_verifies_against_the_instance_ca(
    dovecot: Dovecot, imap_user: User, hostname: str
) -> None:
    context = ssl.create_default_context(cafile=str(dovecot.ca_cert))
    with imapclient.IMAPClient(hostname, port=dovecot.tls_port, ssl=True, ssl_context=context) as client:
        assert isinstance(client.socket(), ssl.SSLSocket)
        client.login(imap_user.name, imap_user.password)
        assert client.select_folder("INBOX")[b"EXISTS"] == 0


@pytest.mark.dovecot
def test_implicit_tls_fails_against_an_unrelated_ca(dovecot: Dovecot) -> None:
    context = ssl.create_default_context(cafile=str(dovecot.other_ca_cert))
    with pytest.raises(ssl.SSLCertVerificationError):
        imapclient.IMAPClient("localhost", port=dovecot.tls_port, ssl=True, ssl_context=context)


@pytest.mark.dovecot
def test_starttls_upgrades_the_plain_port(dovecot: Dovecot, imap_user: User) -> None:
    client = imapclient.IMAPClient("localhost", port=dovecot.port, ssl=False)
    assert b"STARTTLS" in client.capabilities()
    client.starttls(ssl.create_default_context(cafile=str(dovecot.ca_cert)))
    assert isinstance(client.socket(), ssl.SSLSocket)
    client.login(imap_user.name, imap_user.password)
    client.logout()
    wrong = imapclient.IMAPClient("localhost", port=dovecot.port, ssl=False)
    with pytest.raises(ssl.SSLCertVerificationError):
        wrong.starttls(ssl.create_default_context(cafile=str(dovecot.other_ca_cert)))


@pytest.mark.dovecot
def test_capabilities_include_what_fastsync_relies_on(imap_user: User) -> None:
    with imap_user.connect() as client:
        caps = set(client.capabilities())
    assert {b"UIDPLUS", b"CONDSTORE", b"QRESYNC", b"MULTIAPPEND", b"SPECIAL-USE", b"IDLE", b"MOVE"} <= caps
    assert caps & {b"LITERAL+", b"LITERAL-"}


@pytest.mark.dovecot
def test_special_use_mailboxes_exist_only_once_created(imap_user: User) -> None:
    with imap_user.connect() as client:
        assert [name for _f, _d, name in client.list_folders()] == ["INBOX"]
        for name in ("Drafts", "Sent", "Trash", "Junk", "Archive"):
            client.create_folder(name)
        flags = {name: set(f) for f, _d, name in client.list_folders()}
    for name, use in (("Drafts", b"\\Drafts"), ("Sent", b"\\Sent"), ("Trash", b"\\Trash"),
                      ("Junk", b"\\Junk"), ("Archive", b"\\Archive")):
        assert use in flags[name], (name, flags[name])


# -- corpus seen through Dovecot -------------------------------------------------------------


@pytest.mark.dovecot
def test_generated_corpus_shows_exact_counts_sizes_and_names(dovecot: Dovecot, imap_user: User) -> None:
    summary = generate(imap_user.maildir, CorpusSpec(messages=2000, seed=11))
    assert summary.total_messages == 2000
    assert len(set(summary.counts.values())) > 3, "folder sizes should differ"
    with imap_user.connect() as client:
        listed = {name: (set(flags), delim) for flags, delim, name in client.list_folders()}
        assert set(listed) == {imap_name(f) for f in DEFAULT_FOLDERS}
        assert {d for _f, d in listed.values()} == {b"."}
        assert b"\\Sent" in listed["Sent"][0] and b"\\Drafts" in listed["Drafts"][0]
        assert {n for _f, _d, n in client.list_sub_folders()} == set(listed)
        for folder, fs in summary.folders.items():
            status = client.folder_status(imap_name(folder), [b"MESSAGES", b"UNSEEN", b"SIZE"])
            assert (status[b"MESSAGES"], status[b"UNSEEN"], status[b"SIZE"]) == (
                fs.count, fs.unseen, fs.imap_bytes), folder
    status_out = dovecot.doveadm("mailbox", "status", "-u", imap_user.name, "messages", "日本語")
    assert status_out.split() == ["日本語", f"messages={summary.counts['日本語']}"]


@pytest.mark.dovecot
def test_server_serves_corpus_bytes_dates_and_flags_exactly(imap_user: User) -> None:
    summary = generate(imap_user.maildir, CorpusSpec(folders=["INBOX", "Entwürfe"], messages=400, seed=3))
    with imap_user.connect() as client:
        client.normalise_times = False
        for folder, fs in summary.folders.items():
            expected = disk_messages(fs.path)
            client.select_folder(imap_name(folder), readonly=True)
            items = ["RFC822.SIZE", "BODY.PEEK[]", "INTERNALDATE", "FLAGS"]
            fetched = client.fetch(client.search("ALL"), items)
            assert len(fetched) == fs.count == len(expected)
            for data in fetched.values():
                body = data[b"BODY[]"]
                assert body in expected, "server bytes differ from the file with LF -> CRLF"
                mtime, letters = expected[body]
                assert data[b"RFC822.SIZE"] == len(body)
                assert int(data[b"INTERNALDATE"].timestamp()) == mtime
                got = "".join(sorted(_IMAP_TO_LETTER[f] for f in data[b"FLAGS"] if f in _IMAP_TO_LETTER))
                assert got == letters
    weird_ids = [m for fs in summary.folders.values() for m in fs.message_ids]
    assert len(weird_ids) == len(set(weird_ids)) + 1, "exactly one duplicated Message-ID"
    assert len(weird_ids) == 400 - 1, "exactly one message has no Message-ID"


@pytest.mark.dovecot
def test_added_messages_are_picked_up_by_the_running_server(dovecot: Dovecot, imap_user: User) -> None:
    with imap_user.connect() as client:
        assert client.folder_status("INBOX", [b"MESSAGES"])[b"MESSAGES"] == 0
        added = add_messages(imap_user.maildir, "INBOX", 5, seed=1)
        later = add_messages(imap_user.maildir, "Later/Sub", 3, seed=2)
        assert client.folder_status("INBOX", [b"MESSAGES", b"UNSEEN"]) == {b"MESSAGES": 5, b"UNSEEN": 5}
        client.select_folder("INBOX")
        sizes = client.fetch(client.search("ALL"), ["RFC822.SIZE"])
        assert sum(d[b"RFC822.SIZE"] for d in sizes.values()) == added.imap_bytes
        assert client.folder_status("Later.Sub", [b"MESSAGES"])[b"MESSAGES"] == later.count == 3
    assert dovecot.doveadm("mailbox", "status", "-u", imap_user.name, "messages", "INBOX").split() == [
        "INBOX", "messages=5"]
    with pytest.raises(FileExistsError):
        add_messages(imap_user.maildir, "INBOX", 1, seed=1)


# -- a second instance ---------------------------------------------------------------------------


@pytest.mark.dovecot
def test_second_instance_with_slash_separator_and_connection_limit(tmp_path: Path) -> None:
    began = time.monotonic()
    with Dovecot(tmp_path / "dc", separator="/", max_userip_connections=2) as server:
        print(f"\nDovecot start: {time.monotonic() - began:.2f}s")
        procs = family(server)
        user = server.add_user("bob", "secret")
        summary = generate(user.maildir, CorpusSpec(messages=300, seed=2), separator="/")
        assert (user.maildir / "Archive" / "2023" / "cur").is_dir()
        assert (user.maildir / "Entw&APw-rfe" / "cur").is_dir()
        with user.connect() as client:
            listed = {name: delim for _f, delim, name in client.list_folders()}
            assert listed == {f: b"/" for f in DEFAULT_FOLDERS}
            for folder, fs in summary.folders.items():
                assert client.folder_status(folder, [b"MESSAGES"])[b"MESSAGES"] == fs.count, folder
            too_many = r"(?i)maximum number of connections"
            with user.connect(), pytest.raises(imaplib.IMAP4.error, match=too_many):
                user.connect()
        assert running(procs)
    assert running(procs) == [], "stop() left Dovecot processes behind"


@pytest.mark.dovecot
def test_start_failure_reports_the_cause_and_leaves_nothing_running(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        ports = iter([taken, dovecot_module.free_port()])
        monkeypatch.setattr(dovecot_module, "free_port", lambda: next(ports))
        server = Dovecot(tmp_path / "dc")
        with pytest.raises(RuntimeError) as failure:
            server.start()
    message = str(failure.value)
    assert "failed to start" in message and "Address already in use" in message
    pid_file = tmp_path / "dc" / "run" / "master.pid"
    assert not pid_file.exists() or not psutil.pid_exists(int(pid_file.read_text()))


# -- the generator alone ------------------------------------------------------------------------


def test_generator_is_deterministic_per_seed(tmp_path: Path) -> None:
    spec = CorpusSpec(messages=300, seed=5, size_mix="real", huge_count=1)
    trees = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        generate(tmp_path / name, spec)
        trees.append(snapshot(tmp_path / name))
    assert trees[0] == trees[1]
    (tmp_path / "c").mkdir()
    generate(tmp_path / "c", CorpusSpec(messages=300, seed=6, size_mix="real", huge_count=1))
    assert snapshot(tmp_path / "c") != trees[0]
    sizes = sorted(len(data) for path, (data, _m) in trees[0].items() if ",S=" in path)
    assert 10 * 1024 * 1024 <= sizes[-1] <= 16 * 1024 * 1024


def test_file_names_carry_the_sizes_dovecot_trusts(tmp_path: Path) -> None:
    generate(tmp_path, CorpusSpec(folders=["INBOX"], messages=200, seed=8))
    for sub in ("cur", "new"):
        for f in (tmp_path / sub).iterdir():
            data = f.read_bytes()
            fields = dict(kv.split("=") for kv in f.name.split(":")[0].split(",")[1:])
            assert int(fields["S"]) == len(data)
            assert int(fields["W"]) == len(crlf(data))


def test_twenty_thousand_small_messages_generate_quickly(tmp_path: Path) -> None:
    summary = generate(tmp_path, CorpusSpec(messages=20_000, seed=4, size_mix="small", weird=False))
    print(f"\ncorpus: 20,000 small messages in {summary.seconds:.2f}s "
          f"({summary.total_imap_bytes / 1e6:.0f} MB)")
    assert summary.total_messages == 20_000
    sizes = [int(name.split(",S=")[1].split(",")[0])
             for folder in summary.folders.values() for sub in ("cur", "new")
             for name in os.listdir(folder.path / sub)]
    assert len(sizes) == 20_000
    assert min(sizes) >= 1024 and max(sizes) <= 8 * 1024
    assert summary.seconds < 120, "far slower than the few seconds it should take"


def test_ensure_dovecot_refuses_clearly_when_install_is_not_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dovecot_module, "DOVECOT_BIN", Path("/nonexistent/sbin/dovecot"))
    with pytest.raises(RuntimeError, match="is missing and installing it was not allowed"):
        dovecot_module.ensure_dovecot(allow_apt=False)
