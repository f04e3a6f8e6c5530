"""Two-way IMAP <-> Maildir sync against the real private Dovecot, through the real command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from fastsync.model import FLAGGED, SEEN
from tests.syncenv import REPO_ROOT, SyncEnv, contents, lf
from tools.corpus import CorpusSpec, generate
from tools.delayproxy import DelayProxy

pytestmark = pytest.mark.dovecot

FOLDERS = ["INBOX", "Archive/2023", "Entwürfe", "Old Stuff", "Sent"]


@pytest.fixture
def env(dovecot, imap_user, tmp_path) -> SyncEnv:
    return SyncEnv(dovecot, imap_user, tmp_path)


def fill(env: SyncEnv, n: int = 120, folders: list[str] | None = None, seed: int = 7) -> None:
    generate(
        env.user.maildir, CorpusSpec(folders=folders or FOLDERS, messages=n, seed=seed, size_mix="small")
    )


def server_name(spec_name: str) -> str:
    return spec_name.replace("/", ".")  # corpus specs nest with "/", the test Dovecot uses "."


def assert_sides_equal(env: SyncEnv, folders: list[str]) -> None:
    for f in folders:
        far = env.server_folder(server_name(f))
        near = env.local_folder(server_name(f))  # the Maildir default sep is "." too
        assert contents(far) == contents(near), f"folder {f!r} differs"


def test_first_sync_mirrors_every_folder_byte_exact_with_lf_and_second_run_changes_nothing(env):
    fill(env)
    out = env.run().stdout
    assert "copied 120 far->near" in out
    assert_sides_equal(env, FOLDERS)
    # bytes: exactly the server's bytes with CRLF -> LF, nothing added
    far = env.server_folder("INBOX")
    near = env.local_folder("INBOX")
    assert sorted(lf(b) for _, b in far.values()) == sorted(b for _, b in near.values())
    again = env.run().stdout
    assert "copied 0 far->near and 0 near->far, flags changed 0, deleted 0, errors 0" in again


def test_changes_on_both_sides_converge_and_a_third_run_changes_nothing(env):
    fill(env, 60, ["INBOX", "Sent"])
    env.run()
    sent: list[bytes] = []
    proxy = DelayProxy((env.dovecot.host, env.dovecot.port), rtt_ms=0, tap=sent.append)
    proxy.__enter__()
    env.remote_opts["remoteport"] = str(proxy.port)
    env.write_config()
    inbox = env.maildir / "INBOX"
    # near: a new message from a mail reader, a flag change, a deletion
    (inbox / "new" / "1700000000.local.host").write_bytes(
        b"From: me\nSubject: local\nMessage-ID: <l1@x>\n\nhi\n"
    )
    cur = sorted((inbox / "cur").iterdir())
    cur[0].rename(cur[0].with_name(cur[0].name.split(":2,")[0] + ":2,FS"))
    cur[1].unlink()
    # far: a new message, a flag change, a deletion
    c = env.imap()
    c.select_folder("INBOX")
    uids = c.search("ALL")
    before = len(uids)
    c.append("INBOX", b"From: far\r\nSubject: remote\r\nMessage-ID: <r1@x>\r\n\r\nyo\r\n", [b"\\Seen"])
    c.add_flags([uids[-1]], [b"\\Answered"])
    c.delete_messages([uids[-2]])
    c.expunge()
    c.logout()
    try:
        env.run()
    finally:
        proxy.__exit__(None, None, None)
        del env.remote_opts["remoteport"]
        env.write_config()
    # the server side was listed by difference (CONDSTORE), not message by message
    commands = b"".join(sent)
    assert b"CHANGEDSINCE" in commands and b"UID FETCH 1:* (UID FLAGS)\r\n" not in commands, commands
    assert_sides_equal(env, ["INBOX", "Sent"])
    far = env.server_folder("INBOX")
    subjects = b"".join(b for _, b in far.values())
    assert b"Subject: local" in subjects and b"Subject: remote" in subjects
    assert any(fl == FLAGGED | SEEN for fl, _ in far.values())
    assert len(far) == before + 2 - 2  # two new (one per side), two deleted (one per side)
    third = env.run().stdout
    assert "copied 0 far->near and 0 near->far, flags changed 0, deleted 0" in third


def test_internaldate_kept_both_ways(env):
    c = env.imap()
    when = datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)
    c.append("INBOX", b"From: a\r\nMessage-ID: <d1@x>\r\n\r\nbody\r\n", [], when)
    c.logout()
    env.run()
    (f,) = (env.maildir / "INBOX" / "cur").iterdir()
    assert abs(f.stat().st_mtime - when.timestamp()) < 1
    # and upwards: a local file's mtime becomes the INTERNALDATE
    new = env.maildir / "INBOX" / "new" / "1600000000.x.host"
    new.write_bytes(b"From: b\nMessage-ID: <d2@x>\n\nup\n")
    past = datetime(2019, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    os.utime(new, (past, past))
    env.run()
    c = env.imap()
    c.select_folder("INBOX")
    c.normalise_times = False
    dates = [d[b"INTERNALDATE"].timestamp() for d in c.fetch(c.search("ALL"), [b"INTERNALDATE"]).values()]
    c.logout()
    assert any(abs(d - past) < 1 for d in dates)


def test_folders_created_on_either_side_are_created_on_the_other(env):
    c = env.imap()
    c.create_folder("FarOnly")
    c.append("FarOnly", b"From: x\r\nMessage-ID: <f1@x>\r\n\r\n1\r\n")
    c.logout()
    near = env.maildir / "NearOnly"
    for sub in ("cur", "new", "tmp"):
        (near / sub).mkdir(parents=True)
    (near / "new" / "1.2.host").write_bytes(b"From: y\nMessage-ID: <n1@x>\n\n2\n")
    env.run()
    assert "NearOnly" in env.server_folders()
    assert len(env.server_folder("NearOnly")) == 1
    assert len(env.local_folder("FarOnly")) == 1


def test_seed_folderfilter_and_nametrans_work_verbatim(env):
    fill(env, 40, ["INBOX", "Spam", "Junk", "Work"])
    env.remote_opts["folderfilter"] = "lambda foldername: foldername not in ['Spam', 'Junk']"
    env.remote_opts["nametrans"] = "lambda f: re.sub('^INBOX\\.', '', f)"
    env.write_config()
    env.run()
    names = sorted(p.name for p in env.maildir.iterdir() if p.is_dir())
    assert names == ["INBOX", "Work"]


def test_nametrans_collision_is_a_config_error_naming_both_and_writes_nothing(env):
    fill(env, 10, ["INBOX", "A", "B"])
    env.remote_opts["nametrans"] = "lambda f: 'Same' if f in ('A', 'B') else f"
    env.write_config()
    proc = env.run(expect=2)
    assert "'A'" in proc.stderr and "'B'" in proc.stderr and "nametrans" in proc.stderr
    assert not env.maildir.exists(), sorted(env.maildir.rglob("*"))
    assert not env.metadata.exists(), sorted(env.metadata.rglob("*"))  # no lock, no account dir
    assert env.server_folders() == ["A", "B", "INBOX"]  # and nothing created on the server


def test_wrong_password_is_one_clear_line_and_exit_3(env):
    env.remote_opts["remotepass"] = "wrong-password"
    env.write_config()
    proc = env.run(expect=3)
    errors = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln]
    assert len(errors) == 1 and "login refused" in errors[0]
    assert "wrong-password" not in proc.stderr + proc.stdout


def test_tls_verified_against_configured_ca_and_refused_with_another(env):
    fill(env, 5, ["INBOX"])
    env.remote_opts.update(
        ssl="yes",
        remoteport=str(env.dovecot.tls_port),
        sslcacertfile=str(env.dovecot.ca_cert),
        remotehost="localhost",
    )
    env.write_config()
    env.run()
    assert len(env.local_folder("INBOX")) == 5
    env.remote_opts["sslcacertfile"] = str(env.dovecot.other_ca_cert)
    env.write_config()
    proc = env.run(expect=3)
    assert "certificate" in proc.stderr.lower()


def test_starttls_when_asked_is_used(env):
    fill(env, 3, ["INBOX"])
    env.remote_opts.update(starttls="yes", sslcacertfile=str(env.dovecot.ca_cert), remotehost="localhost")
    env.write_config()
    env.run()
    assert len(env.local_folder("INBOX")) == 3


def test_dry_run_writes_nothing_and_says_what_it_would_do(env):
    fill(env, 30, ["INBOX", "Sent"])
    out = env.run("--dry-run").stdout
    assert "would copy" in out and "would create near folder" in out
    assert not env.maildir.exists() or not any(env.maildir.rglob("*:2,*"))
    assert not env.metadata.exists() or not any(env.metadata.rglob("*.state"))


def test_read_only_remote_is_never_written(env):
    fill(env, 10, ["INBOX"])
    env.remote_opts["readonly"] = "yes"
    env.write_config()
    env.run()
    before = env.server_folder("INBOX")
    cur = sorted((env.maildir / "INBOX" / "cur").iterdir())
    cur[0].unlink()
    (env.maildir / "INBOX" / "new" / "9.9.host").write_bytes(b"From: z\nMessage-ID: <ro@x>\n\nz\n")
    env.run()
    assert env.server_folder("INBOX") == before


def test_lost_state_pairs_by_content_deletes_nothing_and_copies_nothing(env):
    fill(env, 50, ["INBOX", "Sent"])
    env.run()
    import shutil

    shutil.rmtree(env.metadata)
    out = env.run().stdout
    assert "copied 0 far->near and 0 near->far" in out and "deleted 0" in out
    assert_sides_equal(env, ["INBOX", "Sent"])


def test_uidvalidity_change_on_server_re_pairs_without_duplicates_or_deletions(env):
    fill(env, 20, ["INBOX", "Work"])
    env.run()
    c = env.imap()
    c.select_folder("Work", readonly=True)
    msgs = c.fetch(c.search("ALL"), [b"BODY.PEEK[]", b"FLAGS"])
    c.close_folder()
    c.delete_folder("Work")
    c.create_folder("Work")
    for d in msgs.values():
        c.append("Work", d[b"BODY[]"], [f for f in d[b"FLAGS"] if f != b"\\Recent"])
    c.logout()
    out = env.run().stdout
    assert "copied 0 far->near and 0 near->far" in out and "deleted 0" in out
    assert_sides_equal(env, ["INBOX", "Work"])


def test_deletion_guard_keeps_a_full_server_folder_when_the_local_one_is_emptied(env):
    fill(env, 40, ["INBOX"])
    env.run()
    for f in (env.maildir / "INBOX" / "cur").iterdir():
        f.unlink()
    proc = env.run(expect=1)
    assert "would delete 40" in proc.stderr
    assert len(env.server_folder("INBOX")) == 40


def kill_when_copied(env: SyncEnv, count: int) -> None:
    """Start a sync and SIGKILL it (supervisor and workers, no chance to clean up) once
    ``count`` messages are in the local INBOX."""
    env.write_config()
    cmd = [sys.executable, "-m", "fastsync", "-c", str(env.config), "-o", "-u", "Noninteractive.Quiet"]
    proc = subprocess.Popen(
        cmd, env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)), start_new_session=True, stdin=subprocess.DEVNULL
    )
    cur = env.maildir / "INBOX" / "cur"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if cur.is_dir() and sum(1 for _ in cur.iterdir()) >= count:
            break
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def test_sync_killed_mid_way_then_resumed_has_no_duplicates_and_loses_nothing(env):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=1500, seed=3, size_mix="small"))
    kill_when_copied(env, 100)
    copied = sum(1 for _ in (env.maildir / "INBOX" / "cur").iterdir())
    assert copied < 1500, "the sync finished before it could be interrupted; make the corpus bigger"
    env.run()
    assert_sides_equal(env, ["INBOX"])
    assert len(env.local_folder("INBOX")) == 1500


def test_huge_folder_is_copied_in_uid_ranges_by_several_workers_and_merged_into_one_state(env):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX", "Small"], messages=640, seed=5, size_mix="small"))
    env.account_opts["splitthreshold"] = "100"
    env.remote_opts["maxconnections"] = "3"
    out = env.run("-u", "Noninteractive.Basic").stdout
    parts = [ln for ln in out.splitlines() if "'INBOX' (range copy" in ln]
    assert len(parts) >= 2, out
    assert_sides_equal(env, ["INBOX", "Small"])
    inbox = env.server_folder("INBOX")
    assert len(inbox) >= 300 and len(env.local_folder("INBOX")) == len(inbox)
    state_files = sorted(p.name for p in (env.metadata / "Account-Test").iterdir())
    assert not [n for n in state_files if ".part" in n], state_files
    again = env.run().stdout
    assert "copied 0 far->near and 0 near->far, flags changed 0, deleted 0, errors 0" in again


def test_range_copies_killed_mid_way_then_resumed_have_no_duplicates(env):
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=1500, seed=4, size_mix="small"))
    env.account_opts["splitthreshold"] = "200"
    env.remote_opts["maxconnections"] = "3"
    kill_when_copied(env, 300)
    assert sum(1 for _ in (env.maildir / "INBOX" / "cur").iterdir()) < 1500, (
        "finished before it was interrupted"
    )
    parts = [p.name for p in (env.metadata / "Account-Test").iterdir() if ".part" in p.name]
    assert parts, "the range copies left no part state to resume from"
    env.run()
    assert_sides_equal(env, ["INBOX"])
    assert len(env.local_folder("INBOX")) == 1500
    assert not [p for p in (env.metadata / "Account-Test").iterdir() if ".part" in p.name]
