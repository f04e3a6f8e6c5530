"""Continuous sync with real processes against the private Dovecot: autorefresh, quick mode,
signals, the account lock, hooks, held connections with keepalive, IDLE, SIGHUP."""

from __future__ import annotations

import signal
import time

import pytest

from fastsync.supervisor import quick_due
from tests.continuous import Running, append_far, local_subjects, until
from tests.syncenv import SyncEnv

pytestmark = pytest.mark.dovecot

DONE = r"account Test: ok:"


@pytest.fixture
def env(dovecot, imap_user, tmp_path) -> SyncEnv:
    return SyncEnv(dovecot, imap_user, tmp_path)


def arrives(env: SyncEnv, subject: str, timeout: float) -> None:
    until(lambda: subject in local_subjects(env.maildir, "INBOX"), timeout, f"{subject!r} in the Maildir")


def test_quick_rule_follows_offlineimap():
    assert [quick_due(2, False, i) for i in range(6)] == [False, True, True, False, True, True]
    assert not any(quick_due(0, False, i) for i in range(3))
    assert all(quick_due(-1, False, i) for i in range(3))
    assert all(quick_due(0, True, i) for i in range(3))


def test_autorefresh_syncs_every_period_and_sigterm_exits_zero(env):
    env.account_opts["autorefresh"] = "0.02"  # 1.2 s
    run = Running(env)
    try:
        run.wait_for(DONE)
        append_far(env, "INBOX", "during-refresh")
        arrives(env, "during-refresh", 15)
        run.wait_for(DONE, times=3, timeout=15)
        assert "next sync in" in run.output
        run.signal(signal.SIGTERM)
        assert run.wait_exit() == 0, run.output
    finally:
        run.kill()


def test_sigusr1_syncs_now_and_sigusr2_finishes_and_exits(env):
    env.account_opts["autorefresh"] = "30"
    run = Running(env)
    try:
        run.wait_for(DONE)
        append_far(env, "INBOX", "on-usr1")
        run.signal(signal.SIGUSR1)
        arrives(env, "on-usr1", 15)
        run.signal(signal.SIGUSR2)
        assert run.wait_exit() == 0, run.output
        assert run.count(DONE) == 2
    finally:
        run.kill()


def test_second_fastsync_on_a_locked_account_says_so_and_a_killed_holder_frees_it(env):
    env.account_opts["autorefresh"] = "30"
    holder = Running(env)
    try:
        holder.wait_for(DONE)
        second = env.run(expect=4)
        assert "locked by another fastsync" in second.stderr
        assert f"pid {holder.proc.pid}" in second.stderr
    finally:
        holder.kill()  # SIGKILL: nothing is cleaned up, the lock file stays
    assert (env.metadata / "Account-Test" / "lock").exists()
    env.run(expect=0)


def folders_visited(out: str) -> int:
    import re

    m = re.search(r"account Test: ok: (\d+) folders", out)
    assert m, out
    return int(m.group(1))


def settle(env: SyncEnv) -> None:
    """After a sync, the next one visits nothing: the marks recorded after fastsync's own
    writes are those read after them (engine._settled_marks), so its own writes do not look
    like a change. Both a quick and a full (strict) run skip every folder."""
    assert folders_visited(env.run("-q").stdout) == 0
    assert folders_visited(env.run().stdout) == 0


def test_quick_sync_visits_only_folders_whose_status_moved(env):
    c = env.imap()
    for f in ("A", "B", "C"):
        c.create_folder(f)
    c.logout()
    for f in ("A", "B", "C"):
        append_far(env, f, f"first-{f}")
    assert folders_visited(env.run().stdout) == 4  # full: INBOX, A, B, C
    settle(env)
    append_far(env, "A", "second-A")
    assert folders_visited(env.run("-q").stdout) == 1
    assert "second-A" in local_subjects(env.maildir, "A")
    settle(env)
    # a local change (a new file in B) is seen through the Maildir mtimes
    (env.maildir / "B" / "new" / "1700000000.local.host").write_bytes(b"Subject: local-B\n\nx\n")
    quick = env.run("-q").stdout
    assert folders_visited(quick) == 1
    assert "copied 0 far->near and 1 near->far" in quick
    settle(env)


def test_hooks_run_with_account_and_counts_and_newmail_only_when_mail_came(env, tmp_path):
    log = tmp_path / "hooks.log"
    env.account_opts.update(
        presynchook=f"echo pre $FASTSYNC_ACCOUNT >> {log}",
        postsynchook=f"echo post $FASTSYNC_ACCOUNT $FASTSYNC_COPIED_TO_NEAR $FASTSYNC_STATUS >> {log}",
        newmail_hook=f"echo new $FASTSYNC_NEW_MESSAGES >> {log}; echo hook-said-hello",
    )
    append_far(env, "INBOX", "m1")
    append_far(env, "INBOX", "m2")
    out = env.run().stdout
    assert "newmail_hook: hook-said-hello" in out
    env.run()
    assert log.read_text().splitlines() == [
        "pre Test",
        "post Test 2 ok",
        "new 2",
        "pre Test",
        "post Test 0 ok",
    ]


def test_failing_hook_is_reported_and_does_not_stop_the_sync(env):
    env.account_opts["presynchook"] = "exit 3"
    append_far(env, "INBOX", "despite-hook")
    proc = env.run()
    assert "presynchook exited 3" in proc.stderr
    assert "despite-hook" in local_subjects(env.maildir, "INBOX")


def test_held_workers_survive_between_syncs_and_a_dropped_connection_is_reopened(env, dovecot):
    env.account_opts["autorefresh"] = "30"
    env.remote_opts.update(holdconnectionopen="yes", keepalive="1")
    run = Running(env)
    try:
        run.wait_for(DONE)
        before = run.descendants()
        time.sleep(1.5)  # at least one keepalive NOOP goes out
        dovecot.doveadm("kick", env.user.name)  # the server drops every connection of the user
        append_far(env, "INBOX", "after-kick")
        run.signal(signal.SIGUSR1)
        arrives(env, "after-kick", 20)
        run.wait_for(DONE, times=2)
        assert before and before <= run.descendants(), "the held worker was replaced"
        assert "ERROR" not in run.output
        run.signal(signal.SIGTERM)
        assert run.wait_exit() == 0, run.output
    finally:
        run.kill()


def test_idle_brings_new_mail_within_seconds(env):
    env.account_opts["autorefresh"] = "30"
    env.remote_opts.update(holdconnectionopen="yes", idlefolders="['INBOX']")
    run = Running(env)
    try:
        run.wait_for(DONE)
        time.sleep(1.0)  # the watcher is in IDLE
        started = time.monotonic()
        append_far(env, "INBOX", "pushed")
        arrives(env, "pushed", 10)
        assert time.monotonic() - started < 10
        assert "changed on the server (IDLE)" in run.output
        run.signal(signal.SIGINT)
        assert run.wait_exit() == 0, run.output
    finally:
        run.kill()


def test_sighup_rereads_the_config_for_the_next_sync(env, tmp_path):
    env.account_opts["autorefresh"] = "30"
    run = Running(env)
    marker = tmp_path / "posthook-ran"
    try:
        run.wait_for(DONE)
        env.account_opts["postsynchook"] = f"touch {marker}"
        env.write_config()
        run.signal(signal.SIGHUP)
        run.wait_for("configuration re-read")
        run.signal(signal.SIGUSR1)
        until(marker.exists, 15, "the postsynchook added by SIGHUP")
        run.signal(signal.SIGTERM)
        assert run.wait_exit() == 0
    finally:
        run.kill()
