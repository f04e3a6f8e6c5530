"""The run that finds nothing to do is answered in the first process (fastsync.nochange):
no worker, no imapclient; any change, or anything it cannot answer, takes the ordinary way."""

from __future__ import annotations

import pytest

from fastsync.model import FLAGGED
from tests.syncenv import SyncEnv
from tools.corpus import CorpusSpec, generate

QUICK = "decided without workers"
FOLDERS = ["INBOX", "Sent", "Lists/a"]


@pytest.fixture
def env(dovecot, imap_user, tmp_path) -> SyncEnv:
    e = SyncEnv(dovecot, imap_user, tmp_path)
    generate(e.user.maildir, CorpusSpec(folders=FOLDERS, messages=30, seed=3, size_mix="small"))
    return e


def test_unchanged_account_is_answered_without_workers_and_says_so(env):
    first = env.run("-d", "all")
    assert QUICK not in first.stderr and "copied 30 far->near" in first.stdout
    again = env.run("-d", "all")
    assert QUICK in again.stderr
    assert "fastsync-worker" not in again.stderr and "imapclient" not in again.stderr
    assert "account Test: ok: 0 folders, copied 0 far->near and 0 near->far" in again.stdout


def test_the_unchanged_run_loads_nothing_it_does_not_need(env):
    env.run()
    again = env.run("-d", "nochange", python=("-X", "importtime"))
    assert QUICK in again.stderr
    loaded = {
        line.rsplit("|", 1)[1].strip()
        for line in again.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }
    assert "fastsync.nochange" in loaded and "msgspec" in loaded  # the list is real
    heavy = {"imapclient", "asyncio", "multiprocessing", "uvloop", "fastsync.supervisor", "fastsync.engine"}
    assert not heavy & loaded, f"the no-change run imported {sorted(heavy & loaded)}"
    assert not {"secrets", "ctypes", "encodings.idna", "shutil", "dataclasses"} & loaded  # each a few ms


def test_a_flag_changed_on_the_server_takes_the_ordinary_way_and_is_synced(env):
    env.run()
    c = env.imap()
    try:
        c.select_folder("Sent")
        uid = c.search("ALL")[0]
        c.add_flags([uid], [b"\\Flagged"], silent=True)
    finally:
        c.logout()
    out = env.run("-d", "all")
    assert QUICK not in out.stderr and "flags changed 1" in out.stdout
    assert any(fl & FLAGGED for fl, _ in env.local_folder("Sent").values())
    assert QUICK in env.run("-d", "all").stderr  # and then nothing moved again


def test_a_message_added_to_the_maildir_takes_the_ordinary_way(env):
    env.run()
    new = env.maildir / "INBOX" / "new" / "1700000000.local1.host"
    new.write_bytes(b"From: a@example.org\nSubject: local\nMessage-ID: <local1@x>\n\nbody\n")
    out = env.run("-d", "all")
    assert QUICK not in out.stderr and "copied 0 far->near and 1 near->far" in out.stdout


def test_a_refused_login_is_reported_by_the_ordinary_run(env):
    env.run()
    (env.tmp / "pass").write_text("wrong\n")
    out = env.run("-d", "all", expect=None)
    assert out.returncode != 0 and QUICK not in out.stderr
    assert "login refused" in out.stderr + out.stdout


def test_a_folder_new_on_the_server_takes_the_ordinary_way(env):
    env.run()
    c = env.imap()
    try:
        c.create_folder("Fresh")
    finally:
        c.logout()
    out = env.run("-d", "all")
    assert QUICK not in out.stderr
    assert (env.maildir / "Fresh").is_dir()
