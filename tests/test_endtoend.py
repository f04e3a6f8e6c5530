"""End-to-end behaviours of the real command against the real Dovecot that no other module
covers: stopping by signal mid-batch, several accounts picked with -a / folders with -f, a
near-side UIDVALIDITY change, and the per-repository options maxsize, expunge = no,
createfolders = no and a read-only Maildir."""

from __future__ import annotations

import os
import re
import secrets
import signal
import time
from pathlib import Path

import pytest

from fastsync.stores.maildir_uids import UIDVALIDITY_FILE
from tests.faultkit import count_files, popen_fastsync
from tests.syncenv import SyncEnv, contents
from tools.corpus import CorpusSpec, generate
from tools.dovecot import Dovecot, User

pytestmark = pytest.mark.dovecot

NOTHING = "copied 0 far->near and 0 near->far, flags changed 0, deleted 0"


@pytest.fixture
def env(dovecot, imap_user, tmp_path) -> SyncEnv:
    return SyncEnv(dovecot, imap_user, tmp_path)


def copied_far_to_near(out: str) -> int:
    m = re.search(r"copied (\d+) far->near", out)
    assert m, out
    return int(m.group(1))


def assert_mirror(env: SyncEnv, folder: str, n: int) -> None:
    far, near = contents(env.server_folder(folder)), contents(env.local_folder(folder))
    assert far == near, f"{folder!r} differs"
    assert len(near) == n and len(set(near)) == n, f"{folder!r}: {len(near)} messages, expected {n}"


# -- signals ---------------------------------------------------------------------------------


def _start_and_wait_for(env: SyncEnv, count: int):
    env.write_config()
    proc = popen_fastsync(env)
    deadline = time.monotonic() + 60
    while count_files(env.maildir) < count and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.002)
    assert proc.poll() is None, "the sync ended before it could be signalled; make the corpus bigger"
    return proc


def test_sigterm_mid_batch_commits_and_the_resume_copies_only_the_rest(env):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=1500, seed=21, size_mix="small"))
    proc = _start_and_wait_for(env, 100)
    proc.send_signal(signal.SIGTERM)  # the supervisor only: it tells the workers
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err.decode()
    have = len(env.local_folder("INBOX"))
    assert 100 <= have < 1500, have
    # everything stored before the stop was committed to the state: the resume copies the rest,
    # and nothing a second time
    out = env.run().stdout
    assert copied_far_to_near(out) == 1500 - have, (have, out)
    assert_mirror(env, "INBOX", 1500)
    assert NOTHING in env.run().stdout


def test_a_second_sigterm_aborts_with_exit_130_and_the_next_run_completes(env):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=1500, seed=22, size_mix="small"))
    proc = _start_and_wait_for(env, 100)
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    # 130: the second signal aborted the stop; 0: the first stop had already committed and the
    # process was leaving when the second came. Never -15 (killed by the signal itself: the
    # loop's handlers were gone and SIGTERM was back at its default while the process left).
    assert proc.returncode in (130, 0), (proc.returncode, (out + err).decode())
    assert "Traceback" not in err.decode(), err.decode()
    assert len(env.local_folder("INBOX")) < 1500
    env.run()
    assert_mirror(env, "INBOX", 1500)


# -- several accounts, -a and -f ---------------------------------------------------------------


def _second_account(env: SyncEnv, other: User) -> None:
    """Add account "Second" (another Dovecot user, its own Maildir) to env's config."""
    passfile = env.tmp / "pass2"
    passfile.write_text(other.password + "\n")
    passfile.chmod(0o600)
    env.write_config(
        extra=f"""
        [Account Second]
        localrepository = Local2
        remoterepository = Remote2

        [Repository Local2]
        type = Maildir
        localfolders = {env.tmp / "Mail2"}

        [Repository Remote2]
        type = IMAP
        remotehost = {env.dovecot.host}
        remoteport = {env.dovecot.port}
        remoteuser = {other.name}
        remotepassfile = {passfile}
        ssl = no
        """
    )
    text = env.config.read_text().replace("accounts = Test\n", "accounts = Test, Second\n", 1)
    env.config.write_text(text)


def test_several_accounts_are_synced_and_a_and_f_pick_accounts_and_folders(env, dovecot: Dovecot):
    other = dovecot.add_user(f"second-{secrets.token_hex(3)}", secrets.token_urlsafe(12))
    generate(env.user.maildir, CorpusSpec(folders=["INBOX", "Work"], messages=20, seed=23, size_mix="small"))
    generate(other.maildir, CorpusSpec(folders=["INBOX"], messages=7, seed=24, size_mix="small"))
    _second_account(env, other)
    mail2 = env.tmp / "Mail2"
    out = env.run("-a", "Second").stdout
    assert "account Second" in out and "account Test" not in out, out
    assert not env.maildir.exists() and count_files(mail2) == 7
    out = env.run("-a", "Test", "-f", "Work").stdout
    assert (env.maildir / "Work").is_dir() and not (env.maildir / "INBOX").exists(), out
    assert_mirror(env, "Work", len(env.server_folder("Work")))
    out = env.run().stdout  # both accounts: only Test's INBOX is left to copy
    assert "account Second" in out and "account Test" in out
    assert copied_far_to_near(out) == len(env.server_folder("INBOX")), out
    assert_mirror(env, "INBOX", len(env.server_folder("INBOX")))
    proc = env.run("-a", "Nobody", expect=2)
    assert "'Nobody' is not configured" in proc.stderr


# -- the near side's UIDVALIDITY ---------------------------------------------------------------


def test_near_uidvalidity_change_re_pairs_by_content_without_copies_or_deletions(env):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=25, seed=25, size_mix="small"))
    env.run()
    marker = env.maildir / "INBOX" / UIDVALIDITY_FILE
    before = marker.read_bytes()
    marker.unlink()  # as if the Maildir had been restored from a backup by another tool
    out = env.run().stdout
    assert marker.read_bytes() != before, "the near folder did not get a new UIDVALIDITY"
    assert NOTHING in out, out
    assert_mirror(env, "INBOX", 25)
    assert NOTHING in env.run().stdout


# -- per-repository options --------------------------------------------------------------------


def _maildir_message(folder: Path, i: int, size: int = 200) -> None:
    for sub in ("cur", "new", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "new" / f"{1700000000 + i}.opt{i}.host").write_bytes(
        f"From: near\nMessage-ID: <opt{i}@near>\nSubject: {i}\n\n{'o' * size}\n".encode()
    )


def test_maxsize_leaves_larger_messages_on_both_sides(env):
    c = env.imap()
    c.append("INBOX", b"Message-ID: <small@far>\r\n\r\nsmall\r\n")
    c.append("INBOX", b"Message-ID: <big@far>\r\n\r\n" + b"b" * 20_000 + b"\r\n")
    c.logout()
    _maildir_message(env.maildir / "INBOX", 1, size=20_000)
    _maildir_message(env.maildir / "INBOX", 2, size=10)
    env.account_opts["maxsize"] = "10000"
    env.run()
    far = b"".join(b for _f, b in env.server_folder("INBOX").values())
    near = b"".join(b for _f, b in env.local_folder("INBOX").values())
    assert b"<small@far>" in near and b"<big@far>" not in near
    assert b"<opt2@near>" in far and b"<opt1@near>" not in far
    assert len(env.server_folder("INBOX")) == 3 and len(env.local_folder("INBOX")) == 3


def test_expunge_no_marks_deleted_on_the_server_without_expunging(env):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=6, seed=26, size_mix="small"))
    env.remote_opts["expunge"] = "no"
    env.run()
    victim = sorted((env.maildir / "INBOX" / "cur").iterdir())[0]
    data = victim.read_bytes()
    victim.unlink()
    env.run()
    far = env.server_folder("INBOX")
    assert len(far) == 6, "expunge = no: the message must stay on the server"
    deleted = [b for fl, b in far.values() if b.replace(b"\r\n", b"\n") == data]
    c = env.imap()
    c.select_folder("INBOX", readonly=True)
    flagged = c.search(["DELETED"])
    c.logout()
    assert len(deleted) == 1 and len(flagged) == 1, (deleted, flagged)
    assert NOTHING in env.run().stdout  # and it is not copied back
    assert len(env.local_folder("INBOX")) == 5


def test_createfolders_no_creates_no_folder_on_that_side(env):
    c = env.imap()
    c.create_folder("FarOnly")
    c.append("FarOnly", b"Message-ID: <f@far>\r\n\r\nf\r\n")
    c.logout()
    _maildir_message(env.maildir / "NearOnly", 1)
    _maildir_message(env.maildir / "INBOX", 2)
    env.remote_opts["createfolders"] = "no"
    env.local_opts["createfolders"] = "no"
    env.run()
    assert "NearOnly" not in env.server_folders()
    assert not (env.maildir / "FarOnly").exists()
    assert len(env.server_folder("INBOX")) == 1  # folders both sides have still sync


def test_readonly_local_repository_is_never_written(env):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=5, seed=27, size_mix="small"))
    _maildir_message(env.maildir / "INBOX", 1)
    before = {p: p.stat().st_mtime_ns for p in env.maildir.rglob("*")}
    names_before = sorted(os.listdir(env.maildir / "INBOX" / "new"))
    env.local_opts["readonly"] = "yes"
    env.run()
    after = {p: p.stat().st_mtime_ns for p in env.maildir.rglob("*")}
    assert after == before, "a read-only Maildir was written"
    assert sorted(os.listdir(env.maildir / "INBOX" / "new")) == names_before
    assert b"<opt1@near>" in b"".join(b for _f, b in env.server_folder("INBOX").values())
