"""Hostile and bad input: folder names a server should never send, odd and huge messages, and a
server response with a wrong literal length. Nothing is written outside the Maildir root, and
a bad item is stored byte-exact or skipped with a report, never corrupting its neighbours."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from fastsync.errors import FolderError
from fastsync.stores.maildir import MaildirStore
from tests.syncenv import SyncEnv, contents
from tools.faultproxy import FaultProxy

pytestmark = pytest.mark.dovecot

HOSTILE = [
    b'"../../x"',
    b'"a/../../b"',
    b'"/etc/fastsync-evil"',
    b'"."',
    b'".."',
    b'"tab\there"',
    b"{7}\r\nnul\x00one",
    b"{8}\r\nnl\r\ntwo\x01",
    b'"' + b"L" * 300 + b'"',
    b'"..\\\\..\\\\win"',
]


@pytest.fixture
def env(dovecot, imap_user, tmp_path) -> SyncEnv:
    (tmp_path / "home").mkdir()
    return SyncEnv(dovecot, imap_user, tmp_path / "home")


def _files_outside(top: Path, allowed: list[Path]) -> set[str]:
    out = set()
    for dirpath, dirs, files in os.walk(top):
        for name in dirs + files:
            p = Path(dirpath) / name
            if not any(p == a or a in p.parents for a in allowed):
                out.add(str(p))
    return out


def test_hostile_folder_names_from_the_server_are_refused_and_nothing_lands_outside_the_root(
    env, dovecot, tmp_path
):
    c = env.imap()
    c.append("INBOX", b"From: a\r\nMessage-ID: <h1@x>\r\n\r\nhello\r\n")
    c.logout()

    def add_hostile(line: bytes) -> bytes:
        if line.startswith(b"* LIST ") and line.rstrip().endswith(b" INBOX"):
            extra = b"".join(b'* LIST (\\HasNoChildren) "." ' + name + b"\r\n" for name in HOSTILE)
            return line + extra
        return line

    before = _files_outside(tmp_path, [])
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        proxy.rewrite_down = add_hostile
        env.remote_opts["remoteport"] = str(proxy.port)
        env.write_config()
        proc = env.run(expect=None, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    # INBOX is synced; every hostile name was refused or failed, with a message
    assert len(env.local_folder("INBOX")) == 1
    said = proc.stdout + proc.stderr
    assert "../../x" in said and "a/../../b" in said, said
    new = _files_outside(tmp_path, [env.maildir, env.metadata]) - before
    assert new <= {str(env.config), str(env.tmp / "pass"), str(env.tmp)}, sorted(new)
    assert not Path("/etc/fastsync-evil").exists()
    for p in env.maildir.iterdir():
        assert p.name in ("INBOX",) or not p.name.startswith(".."), p


@pytest.mark.parametrize("sep", [".", "/"])
def test_maildir_store_refuses_every_unsafe_folder_name(tmp_path, sep):
    root = tmp_path / "root" / "Mail"
    root.mkdir(parents=True)  # an existing root: nothing may appear beside it or inside it
    store = MaildirStore(root, sep, fsync=False)
    store.connect()
    names = ["../../x", "a/../../b", "/abs", ".", "..", "a\x00b", "c\rd", "L" * 300, "", "x/../..",
             "cur", "new", "tmp"]
    for name in names:
        with pytest.raises(FolderError) as e:
            store.create_folder(name)
        assert "refused" in str(e.value) or "Maildir" in str(e.value)
    assert [p for p in (tmp_path / "root").rglob("*") if p != root] == []
    assert sorted(os.listdir(tmp_path)) == ["root"]
    assert list(root.iterdir()) == []


# -- messages -----------------------------------------------------------------------------

ODD = {
    "bare-lf": b"From: a\nMessage-ID: <lf@x>\nSubject: bare lf\n\nline\n",
    "bare-cr": b"From: a\r\nMessage-ID: <cr@x>\r\nSubject: bare cr\r\n\r\none\rtwo\r\n",
    "nul": b"From: a\r\nMessage-ID: <nul@x>\r\nSubject: nul\r\n\r\nbefore\x00after\r\n",
    "8bit-header": "From: Jörg <j@x>\r\nMessage-ID: <8@x>\r\nSubject: Grüße\r\n\r\nbody\r\n".encode(),
    "no-message-id": b"From: a\r\nSubject: no id\r\n\r\nnobody knows\r\n",
    "dup-id-1": b"From: a\r\nMessage-ID: <dup@x>\r\nSubject: one\r\n\r\nfirst\r\n",
    "dup-id-2": b"From: a\r\nMessage-ID: <dup@x>\r\nSubject: two\r\n\r\nsecond, longer\r\n",
    "header-only": b"From: a\r\nMessage-ID: <ho@x>\r\nSubject: header only\r\n",
}


def test_odd_messages_from_the_server_are_stored_or_reported_and_neighbours_intact(env):
    c = env.imap()
    refused = []
    for name, data in ODD.items():
        try:
            c.append("INBOX", data)
        except Exception as e:  # the server may refuse some; we record which
            refused.append((name, str(e)))
    c.logout()
    env.run()
    far, near = env.server_folder("INBOX"), env.local_folder("INBOX")
    assert contents(far) == contents(near)
    assert len(near) == len(ODD) - len(refused), refused
    again = env.run().stdout
    assert "copied 0 far->near and 0 near->far" in again


def test_odd_messages_from_the_maildir_are_uploaded_or_reported_and_neighbours_intact(env):
    inbox = env.maildir / "INBOX"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    files = dict(ODD, empty=b"")
    for i, (name, data) in enumerate(files.items()):
        (inbox / "new" / f"{1600000000 + i}.{name}.host").write_bytes(data.replace(b"\r\n", b"\n"))
    proc = env.run(expect=None)
    assert proc.returncode in (0, 1), proc.stderr
    assert "Traceback" not in proc.stderr
    far = env.server_folder("INBOX")
    stored = {b.replace(b"\r\n", b"\n") for _, b in far.values()}
    # fastsync sends bytes as they are (a bare CR included); Dovecot itself rewrites NUL to
    # 0x80. Every other message is on the server byte-exact (modulo CRLF).
    server_side = {"nul": lambda d: d.replace(b"\x00", b"\x80")}
    as_stored = {n: server_side.get(n, lambda d: d)(d.replace(b"\r\n", b"\n")) for n, d in files.items()}
    assert stored <= set(as_stored.values()), stored - set(as_stored.values())
    missing = sorted(n for n, d in as_stored.items() if d not in stored)
    assert missing == ["empty"], missing  # Dovecot refuses a zero-byte message, and only that
    # each message not uploaded is one ERROR line of its own, and counted in the summary
    refusals = [ln for ln in proc.stderr.splitlines() if ln.startswith("ERROR:") and "message UID" in ln]
    assert len(refusals) == len(missing) and "zero byte" in refusals[0], proc.stderr
    assert f"errors {len(missing)}," in proc.stdout and proc.returncode == 1, proc.stdout
    assert len(far) == len(stored), "a message was uploaded twice"
    second = env.run(expect=None)
    assert len(env.server_folder("INBOX")) == len(far), "the next run uploaded a duplicate"
    assert "Traceback" not in second.stderr


@pytest.mark.parametrize("delta", [7, -7, 1], ids=["too-long", "too-short", "one-too-long"])
def test_a_wrong_literal_length_in_a_fetch_never_stores_corrupt_bytes(env, dovecot, delta):
    c = env.imap()
    for i in range(6):
        c.append("INBOX", f"From: a\r\nMessage-ID: <w{i}@x>\r\nSubject: {i}\r\n\r\nbody {i}\r\n".encode())
    c.logout()
    fired = []

    def lie(line: bytes) -> bytes:
        if not fired and b"BODY[] {" in line:
            fired.append(line)
            head, _, rest = line.rpartition(b"{")
            n = int(rest.split(b"}")[0])
            return head + b"{" + str(n + delta).encode() + b"}\r\n"
        return line

    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        proxy.rewrite_down = lie
        env.remote_opts["remoteport"] = str(proxy.port)
        env.write_config()
        text = env.config.read_text().replace("[general]\n", "[general]\nsocktimeout = 2\n", 1)
        env.config.write_text(text)
        proc = env.run(expect=None, timeout=120)
    env.remote_opts["remoteport"] = str(dovecot.port)
    env.write_config()
    assert fired, "the FETCH was never rewritten"
    assert "Traceback" not in proc.stderr
    server = {b.replace(b"\r\n", b"\n") for _, b in env.server_folder("INBOX").values()}
    for _, data in env.local_folder("INBOX").values():
        assert data in server, f"a corrupt message was stored: {data!r}"
    env.run()  # without the fault: complete, no duplicates
    assert contents(env.server_folder("INBOX")) == contents(env.local_folder("INBOX"))
    assert len(env.local_folder("INBOX")) == 6


RSS_LIMIT_MB = 200  # measured: about 127 MB each way for a 50 MB message


def _peak_rss_mb(env: SyncEnv) -> float:
    """Run fastsync under a small wrapper that reports the peak RSS of its process tree."""
    import subprocess
    import sys

    from tests.syncenv import REPO_ROOT

    wrapper = (
        "import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)"
    )
    cmd = [sys.executable, "-c", wrapper, sys.executable, "-m", "fastsync", "-c", str(env.config), "-o",
           "-u", "Noninteractive.Quiet"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    return int(proc.stdout.split()[-1]) / 1024


def test_a_50_mb_message_is_synced_both_ways_byte_exact_with_bounded_memory(env, tmp_path):
    import shutil

    big = bytearray(b"From: big\nMessage-ID: <big@x>\nSubject: 50 MB\n\n")
    line = b"0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz01\n"
    while len(big) < 50 << 20:
        big += line
    data = bytes(big)
    inbox = env.maildir / "INBOX"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    (inbox / "new" / "1600000000.big.host").write_bytes(data)
    env.write_config()
    t0 = time.monotonic()
    up = _peak_rss_mb(env)
    shutil.rmtree(env.metadata)  # state and Maildir gone: the next run downloads it afresh
    shutil.rmtree(env.maildir)
    down = _peak_rss_mb(env)
    took = time.monotonic() - t0
    print(f"50 MB message up and down in {took:.1f} s; peak RSS up {up:.0f} MB, down {down:.0f} MB")
    (f,) = list((env.maildir / "INBOX" / "cur").iterdir())
    assert f.read_bytes() == data
    assert len(env.server_folder("INBOX")) == 1
    assert max(up, down) < RSS_LIMIT_MB, f"peak RSS up {up:.0f} / down {down:.0f} MB, limit {RSS_LIMIT_MB}"
