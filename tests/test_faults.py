"""Faults against the real Dovecot: a crash after every journal step, kill -9 of a worker and of
the supervisor at seeded random points, and state that is lost, garbled or torn. Every test
ends by comparing both sides: nothing lost, nothing duplicated, nothing wrongly deleted."""

from __future__ import annotations

import os
import random
import signal
import time
from pathlib import Path

import psutil
import pytest

from fastsync.errors import FolderError
from fastsync.events import Info
from fastsync.model import FLAGGED, REPLIED, SEEN, Outgoing
from fastsync.state import StateFile
from fastsync.stores.maildir import MaildirStore
from tests.faultkit import (
    JsonRun,
    count_files,
    engine_run,
    imap_repo,
    maildir_snapshot,
    popen_fastsync,
    seed_for,
    server_snapshot,
    tree_of,
    workers_of,
)
from tests.syncenv import SyncEnv, contents
from tests.test_engine import Crash, CrashingStateFile
from tools.corpus import CorpusSpec, generate
from tools.dovecot import Dovecot
from tools.faultproxy import FaultProxy

pytestmark = pytest.mark.dovecot


@pytest.fixture
def env(dovecot, imap_user, tmp_path) -> SyncEnv:
    return SyncEnv(dovecot, imap_user, tmp_path)


# -- crash after every journal step, IMAP far side (the isync run-tests technique) ----------


def _msg(i: int, side: str) -> bytes:
    return f"From: {side}\r\nMessage-ID: <{side}{i}@t>\r\nSubject: {side} {i}\r\n\r\nbody {i}\r\n".encode()


def _three_way(dovecot, tmp: Path, crash_at: int | None, before: bool) -> tuple[list, list, int]:
    """First sync, then new mail, flag changes and deletions on both sides; then a run that
    crashes at journal record ``crash_at`` (None: never), a resume and a check run.
    Returns both sides and the number of records the changing run journalled."""
    import secrets

    user = dovecot.add_user(f"crash{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    repo = imap_repo(dovecot, user)
    c = user.connect()
    for i in range(10):
        c.append("INBOX", _msg(i, "far"), [b"\\Seen"] if i % 3 == 0 else [])
    c.logout()
    near_root = tmp / "near"
    state_path = tmp / "state" / "INBOX.state"
    engine_run(repo, user.password, near_root, StateFile(state_path, fsync=False))
    # far: two new, \Flagged on the first, the last deleted
    c = user.connect()
    c.select_folder("INBOX")
    uids = sorted(c.search("ALL"))
    for i in range(2):
        c.append("INBOX", _msg(100 + i, "farnew"))
    c.add_flags([uids[0]], [b"\\Flagged"])
    c.delete_messages([uids[-1]])
    c.expunge()
    c.logout()
    # near: five new, \Answered on the second, the second-to-last deleted
    near = MaildirStore(near_root, fsync=False)
    near.connect()
    near.select("INBOX")
    nuids = sorted(near.list_messages(0).flags)
    near.set_flags([nuids[1]], REPLIED, 0)
    near.delete([nuids[-2]])
    near.append([Outgoing(0, SEEN if i == 0 else 0, 2e9 + i, _msg(200 + i, "nearnew")) for i in range(5)])
    near.close()
    changing = CrashingStateFile(state_path, crash_at, before)
    if crash_at is not None:
        with pytest.raises(Crash):
            engine_run(repo, user.password, near_root, changing)
    else:
        engine_run(repo, user.password, near_root, changing)
    engine_run(repo, user.password, near_root, StateFile(state_path, fsync=False))
    again = engine_run(repo, user.password, near_root, StateFile(state_path, fsync=False))
    assert not again.changed(), f"a further run still changed something: {again}"
    return server_snapshot(user), maildir_snapshot(near_root), changing.records


def test_three_way_scenario_against_dovecot_converges(dovecot, tmp_path):
    far, near, _ = _three_way(dovecot, tmp_path, None, False)
    assert far == near
    assert len(far) == 10 - 2 + 2 + 5
    assert any(fl & FLAGGED for fl, _ in far) and any(fl & REPLIED for fl, _ in far)


@pytest.mark.parametrize("before", [False, True], ids=["after-record", "before-record"])
def test_crash_at_every_journal_step_against_dovecot_resumes_to_the_uninterrupted_result(
    dovecot, tmp_path, before
):
    far, near, steps = _three_way(dovecot, tmp_path / "plain", None, False)
    assert far == near
    assert steps >= 5, f"only {steps} journal records; the scenario does not exercise the journal"
    for k in range(1, steps + 1):
        got_far, got_near, _ = _three_way(dovecot, tmp_path / f"crash{k}", k, before)
        assert (got_far, got_near) == (far, near), f"crash at record {k} of {steps} (before={before}) differs"
    when = "before" if before else "after"
    print(f"crash-at-every-step ({when} record): {steps} cases, lost 0, duplicated 0")


# -- kill -9 of one worker, and of the supervisor, at seeded random points -------------------

KILL_FOLDERS = ["INBOX", "Work", "Lists"]


def _kill_env(dovecot, tmp: Path, rng: random.Random) -> SyncEnv:
    import secrets

    user = dovecot.add_user(f"kill{secrets.token_hex(4)}", secrets.token_urlsafe(12))
    env = SyncEnv(dovecot, user, tmp)
    generate(user.maildir, CorpusSpec(folders=KILL_FOLDERS, messages=300, seed=rng.randrange(1000),
                                      size_mix="small"))
    up = env.maildir / "Outbox"
    for sub in ("cur", "new", "tmp"):
        (up / sub).mkdir(parents=True)
    for i in range(80):
        (up / "new" / f"{1600000000 + i}.up{i}.host").write_bytes(
            f"From: near\nMessage-ID: <up{i}@near>\nSubject: up {i}\n\n{'x' * 200}\n".encode()
        )
    env.remote_opts["maxconnections"] = "2"
    env.write_config()
    return env


def _assert_complete(env: SyncEnv) -> None:
    for folder in [*KILL_FOLDERS, "Outbox"]:
        far, near = contents(env.server_folder(folder)), contents(env.local_folder(folder))
        assert far == near, f"folder {folder!r} differs after the resume"
        assert len(far) == len(set(far)), f"folder {folder!r} holds duplicates"
    assert len(env.server_folder("Outbox")) == 80
    assert sum(len(env.server_folder(f)) for f in KILL_FOLDERS) == 300


def _wait_for_progress(env: SyncEnv, proc, target: int, deadline: float) -> bool:
    while time.monotonic() < deadline and proc.poll() is None:
        if count_files(env.maildir) >= target:
            return True
        time.sleep(0.002)
    return False


def test_kill_9_of_the_supervisor_at_seeded_random_points_then_resume_loses_and_duplicates_nothing(
    dovecot, tmp_path
):
    seed = seed_for("kill -9 supervisor")
    rng = random.Random(seed)
    budget = time.monotonic() + 8
    cases = 0
    while cases < 2 or (time.monotonic() < budget and cases < 4):
        env = _kill_env(dovecot, tmp_path / f"case{cases}", rng)
        target = rng.randrange(10, 300)
        proc = popen_fastsync(env)
        try:
            if _wait_for_progress(env, proc, target, time.monotonic() + 60):
                tree = tree_of(proc.pid)
                os.kill(proc.pid, signal.SIGKILL)
                # no orphan worker may go on syncing without the lock beside the next run
                _gone, alive = psutil.wait_procs(tree[1:], timeout=5)
                assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], (
                    f"case {cases} (seed {seed}): processes outlived the killed supervisor: {alive}"
                )
            proc.communicate(timeout=120)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        env.run()  # resume (after a killed supervisor) or a check run
        _assert_complete(env)
        again = env.run().stdout
        assert "copied 0 far->near and 0 near->far, flags changed 0, deleted 0" in again, again
        cases += 1
    print(f"kill -9 supervisor: {cases} cases (seed {seed}), lost 0, duplicated 0")


def _stop_a_busy_worker(run: JsonRun, rng: random.Random, deadline: float) -> tuple[psutil.Process, str]:
    """SIGSTOP a worker that is syncing a folder, once its events say it still is after the
    stop (a worker that finished meanwhile is let go and another one tried)."""
    while time.monotonic() < deadline and run.proc.poll() is None:
        busy = run.busy()
        if busy:
            pid = rng.choice(sorted(busy))
            victim = psutil.Process(pid)
            victim.suspend()
            time.sleep(0.3)  # what it sent before the stop reaches the supervisor and us
            folder = run.busy().get(pid)
            if folder is not None:
                return victim, folder
            victim.resume()
        time.sleep(0.005)
    raise AssertionError(f"no worker was seen syncing a folder: {run.seen()}")


def test_kill_9_of_a_busy_worker_requeues_its_folder_which_completes_losing_and_duplicating_nothing(
    dovecot, tmp_path
):
    seed = seed_for("kill -9 worker")
    rng = random.Random(seed)
    for case in range(2):
        env = _kill_env(dovecot, tmp_path / f"case{case}", rng)
        run = JsonRun(env)
        try:
            assert _wait_for_progress(env, run.proc, rng.randrange(10, 150), time.monotonic() + 60)
            victim, folder = _stop_a_busy_worker(run, rng, time.monotonic() + 60)
            assert victim.pid in [p.pid for p in workers_of(run.proc.pid)], "workers_of misses a worker"
            victim.kill()
            gone, _alive = psutil.wait_procs([victim], timeout=10)
            assert gone, f"case {case} (seed {seed}): the kill did not land on pid {victim.pid}"
        finally:
            code, err = run.finish()
        assert code == 0, f"case {case} (seed {seed}): exit {code}\n{err}"
        events = run.seen()
        warnings = [e["text"] for e in events if e["type"] == "warning"]
        died = [i for i, e in enumerate(events) if e["type"] == "warning" and
                e["text"].endswith(f"worker died (exit -9) on {folder!r}; trying again")]
        assert died, f"case {case} (seed {seed}): no re-queue of {folder!r} reported: {warnings}"
        later = events[died[0]:]
        assert any(e["type"] == "job_started" and e["folder"] == folder for e in later), later
        assert any(e["type"] == "job_done" and e["folder"] == folder for e in later), later
        (done,) = [e for e in events if e["type"] == "account_done"]
        assert (done["state"], done["folders_failed"]) == ("ok", 0), done
        _assert_complete(env)
        again = env.run().stdout
        assert "copied 0 far->near and 0 near->far, flags changed 0, deleted 0" in again, again
    print(f"kill -9 worker: 2 cases (seed {seed}), killed mid-folder, re-queued, lost 0, duplicated 0")


def test_a_retried_job_for_a_folder_its_first_attempt_created_pairs_by_content(dovecot, imap_user, tmp_path):
    """The supervisor re-queues a dead worker's job with the pair as discovered (near folder
    missing); the copies the first attempt stored without recording must be paired, not
    copied both ways again (found by the kill -9 test: every message of INBOX doubled)."""
    repo = imap_repo(dovecot, imap_user)
    c = imap_user.connect()
    for i in range(6):
        c.append("INBOX", _msg(i, "far"))
    c.logout()
    near_root, state_path = tmp_path / "near", tmp_path / "state" / "INBOX.state"
    with pytest.raises(Crash):  # all six stored in the Maildir, the record that pairs them lost
        engine_run(repo, imap_user.password, near_root, CrashingStateFile(state_path, 1, before=True),
                   near_exists=False, batch_count=100)
    assert len(maildir_snapshot(near_root)) == 6
    stats = engine_run(repo, imap_user.password, near_root, StateFile(state_path, fsync=False),
                       near_exists=False)
    assert (stats.to_near, stats.to_far) == (0, 0)
    assert server_snapshot(imap_user) == maildir_snapshot(near_root)
    assert len(server_snapshot(imap_user)) == 6


# -- network faults through the fault-injecting proxy -------------------------------------


@pytest.fixture
def proxy(dovecot):
    with FaultProxy(dovecot.host, dovecot.port) as p:
        yield p


def _proxied(env: SyncEnv, proxy: FaultProxy, n_far: int = 40, n_near: int = 30) -> SyncEnv:
    """Server INBOX with n_far messages, a local Outbox with n_near to upload, via the proxy."""
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=n_far, seed=5, size_mix="small"))
    up = env.maildir / "Outbox"
    for sub in ("cur", "new", "tmp"):
        (up / sub).mkdir(parents=True)
    for i in range(n_near):
        (up / "new" / f"{1600000000 + i}.n{i}.host").write_bytes(
            f"From: near\nMessage-ID: <o{i}@near>\nSubject: out {i}\n\n{'y' * 3000}\n".encode()
        )
    env.remote_opts["remoteport"] = str(proxy.port)
    env.write_config(extra="")
    text = env.config.read_text().replace("[general]\n", "[general]\nsocktimeout = 2\n", 1)
    env.config.write_text(text)
    return env


def _assert_mirrored(env: SyncEnv, n_far: int = 40, n_near: int = 30) -> None:
    for folder, n in (("INBOX", n_far), ("Outbox", n_near)):
        far = contents(env.server_folder(folder))
        assert far == contents(env.local_folder(folder)), f"{folder!r} differs"
        assert len(far) == n, f"{folder!r}: {len(far)} messages, expected {n} (lost or duplicated)"


@pytest.mark.parametrize(
    "direction,pattern,after,action",
    [
        ("down", b"BODY[] {", 500, "close"),  # mid-FETCH literal
        ("up", b"APPEND", 2000, "close"),  # mid-APPEND literal
        ("down", b"BODY[] {", 500, "stall"),  # no bytes for longer than socktimeout
    ],
    ids=["drop-mid-fetch", "drop-mid-append", "stall-mid-fetch"],
)
def test_connection_fault_mid_transfer_reconnects_and_completes(
    env, proxy, direction, pattern, after, action
):
    _proxied(env, proxy)
    proxy.cut(direction, pattern, after, action)
    started = time.monotonic()
    proc = env.run(timeout=90)
    assert any(action in e for e in proxy.events), f"the fault never fired: {proxy.events}"
    assert "reconnecting" in proc.stdout + proc.stderr
    assert time.monotonic() - started < 45, "a stall must be cut short by socktimeout"
    _assert_mirrored(env)
    again = env.run().stdout
    assert "copied 0 far->near and 0 near->far, flags changed 0, deleted 0" in again


def test_reconnect_that_gets_only_a_greeting_backs_off_and_completes(env, proxy):
    _proxied(env, proxy)
    proxy.cut("down", b"BODY[] {", 100, "close")
    proxy.greeting_then_close = {1}  # the first reconnect: greeting, then the line drops
    env.run(timeout=90)
    assert "conn 1: greeting then close" in proxy.events, proxy.events
    assert proxy.connections >= 3
    _assert_mirrored(env)


def test_server_that_closes_after_its_greeting_is_one_clear_error_and_the_next_run_completes(env, proxy):
    _proxied(env, proxy)
    # Both logins of the discovery (a single dropped login is retried: test_login_drops.py)
    proxy.greeting_then_close = {0, 1}
    proc = env.run(expect=None, timeout=90)
    assert proc.returncode != 0
    errors = [ln for ln in proc.stderr.splitlines() if "ERROR" in ln or "error" in ln.lower()]
    assert errors and any("127.0.0.1" in ln for ln in errors), proc.stderr
    assert "Traceback" not in proc.stderr
    env.run()
    _assert_mirrored(env)


def test_delayed_link_completes(env, proxy):
    _proxied(env, proxy, 20, 10)
    proxy.delay = 0.005
    env.run(timeout=90)
    _assert_mirrored(env, 20, 10)


def test_append_whose_ok_is_lost_is_found_again_and_not_uploaded_twice(env, proxy):
    _proxied(env, proxy, 10, 30)
    proxy.swallow_append_ok = True
    env.run(timeout=90)
    assert any("swallowed" in e for e in proxy.events), proxy.events
    _assert_mirrored(env, 10, 30)
    again = env.run().stdout
    assert "copied 0 far->near and 0 near->far" in again


# -- disk full on the Maildir side, a server NO for one message -------------------------------


def test_disk_full_on_the_maildir_is_a_clear_error_leaves_no_partial_file_and_the_next_run_completes(
    dovecot, imap_user, tmp_path, monkeypatch
):
    import errno

    import fastsync.stores.maildir_io as maildir_mod

    c = imap_user.connect()
    for i in range(12):
        c.append("INBOX", _msg(i, "far") + b"x" * 2000 + b"\r\n")
    c.logout()
    repo = imap_repo(dovecot, imap_user)
    near_root, state_path = tmp_path / "near", tmp_path / "state" / "INBOX.state"
    real_write_all = maildir_mod.write_all
    budget = [5 * 2100]  # room for about five messages

    def full_disk(fd: int, data: bytes) -> None:
        if len(data) < 64:  # the small uidvalidity file still fits
            return real_write_all(fd, data)
        if budget[0] < len(data):
            os.write(fd, data[: max(budget[0], 0) // 2])  # a partial write, then the disk is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        budget[0] -= len(data)
        return real_write_all(fd, data)

    monkeypatch.setattr(maildir_mod, "write_all", full_disk)
    reports: list[str] = []

    def emit(e: object) -> None:
        if isinstance(e, Info):
            reports.append(f"{e.level}: {e.text}")

    try:
        engine_run(repo, imap_user.password, near_root, StateFile(state_path, fsync=False), emit=emit)
        failure = ""
    except FolderError as e:
        failure = str(e)
    print(failure, reports)
    # one folder-level error, not one per message
    assert "No space left on device" in failure, (failure, reports)
    assert not [r for r in reports if r.startswith("error")], reports
    inbox = near_root / "INBOX"
    assert list((inbox / "tmp").iterdir()) == [], "a partial file was left in tmp/"
    stored = maildir_snapshot(near_root)
    server = server_snapshot(imap_user)
    assert 0 < len(stored) < 12 and set(stored) <= set(server), "partial or foreign content in cur/new"
    monkeypatch.setattr(maildir_mod, "write_all", real_write_all)  # space freed
    engine_run(repo, imap_user.password, near_root, StateFile(state_path, fsync=False))
    assert maildir_snapshot(near_root) == server_snapshot(imap_user)
    assert len(server_snapshot(imap_user)) == 12, "a message was uploaded back (duplicate)"
    print(f"disk full: 1 case, {len(stored)} of 12 stored before ENOSPC, lost 0, duplicated 0")


# -- server limits: too many connections, a message the server refuses -----------------------


class LimitedDovecot(Dovecot):
    """Two connections per user and IP, and messages over 64 kB refused (quota plugin)."""

    def _render_config(self) -> str:
        return super()._render_config() + (
            "mail_plugins = $mail_plugins quota\n"
            "plugin {\n  quota = maildir:User quota\n  quota_max_mail_size = 64k\n}\n"
        )


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    server = LimitedDovecot(tmp_path_factory.mktemp("limited"), max_userip_connections=2)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"limited Dovecot unavailable: {exc}", pytrace=False)
    yield server
    server.stop()


def test_too_many_connections_degrades_to_the_connections_the_server_allows(limited, tmp_path):
    import secrets

    user = limited.add_user(f"lim{secrets.token_hex(3)}", secrets.token_urlsafe(12))
    folders = ["INBOX", "A", "B", "C", "D", "E"]
    generate(user.maildir, CorpusSpec(folders=folders, messages=120, seed=9, size_mix="small"))
    env = SyncEnv(limited, user, tmp_path)
    env.remote_opts["maxconnections"] = "4"
    env.write_config()
    proc = env.run(expect=None, timeout=120)
    assert "Traceback" not in proc.stderr
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for f in folders:
        assert contents(env.server_folder(f)) == contents(env.local_folder(f)), f
    assert sum(len(env.local_folder(f)) for f in folders) == 120


def test_a_message_the_server_refuses_is_skipped_with_a_report_and_the_rest_uploaded(limited, tmp_path):
    import secrets

    user = limited.add_user(f"no{secrets.token_hex(3)}", secrets.token_urlsafe(12))
    env = SyncEnv(limited, user, tmp_path)
    inbox = env.maildir / "INBOX"
    for sub in ("cur", "new", "tmp"):
        (inbox / sub).mkdir(parents=True)
    for i in range(8):
        body = "z" * (100_000 if i == 3 else 100)
        (inbox / "new" / f"{1600000000 + i}.m{i}.host").write_text(
            f"From: near\nMessage-ID: <big{i}@near>\nSubject: {i}\n\n{body}\n"
        )
    env.write_config()
    proc = env.run(expect=1, timeout=120)
    said = proc.stdout + proc.stderr
    assert "<big3@near>" in said and "Traceback" not in said, said
    far = env.server_folder("INBOX")
    assert len(far) == 7 and not any(b"<big3@near>" in b for _, b in far.values())
    again = env.run(expect=1)  # retried, refused again, reported again; nothing duplicated
    assert "<big3@near>" in again.stdout + again.stderr
    assert len(env.server_folder("INBOX")) == 7
    assert len(env.local_folder("INBOX")) == 8, "the refused message must stay in the Maildir"


# -- lost, garbled and torn state; the deletion guard the other way ---------------------------


def _synced(env: SyncEnv, n: int = 30) -> None:
    generate(env.user.maildir, CorpusSpec(folders=["INBOX"], messages=n, seed=11, size_mix="small"))
    env.run()


@pytest.mark.parametrize("damage", ["garble", "truncate", "empty"])
def test_a_damaged_state_file_is_named_and_the_next_sync_pairs_by_content_deleting_nothing(env, damage):
    _synced(env)
    (state,) = [p for p in env.metadata.rglob("*.state")]
    data = state.read_bytes()
    if damage == "garble":
        state.write_bytes(data[:12] + bytes(b ^ 0x5A for b in data[12:40]) + data[40:])
    elif damage == "truncate":
        state.write_bytes(data[: len(data) // 2])
    else:
        state.write_bytes(b"")
    proc = env.run()
    said = proc.stdout + proc.stderr
    assert str(state) in said, said
    assert "copied 0 far->near and 0 near->far" in said and "deleted 0" in said
    assert contents(env.server_folder("INBOX")) == contents(env.local_folder("INBOX"))
    assert len(env.local_folder("INBOX")) == 30


def test_a_torn_journal_tail_is_ignored_safely(dovecot, imap_user, tmp_path):
    far_expected: tuple[list, list] | None = None
    for torn in (False, True):
        import secrets

        user = dovecot.add_user(f"torn{secrets.token_hex(3)}", secrets.token_urlsafe(12))
        repo = imap_repo(dovecot, user)
        c = user.connect()
        for i in range(12):
            c.append("INBOX", _msg(i, "far"))
        c.logout()
        root, state_path = tmp_path / f"n{torn}", tmp_path / f"s{torn}" / "INBOX.state"
        if torn:
            with pytest.raises(Crash):
                engine_run(repo, user.password, root, CrashingStateFile(state_path, 3))
            journal = state_path.with_name("INBOX.state.journal")
            journal.write_bytes(journal.read_bytes()[:-3])  # the last record torn mid-write
        engine_run(repo, user.password, root, StateFile(state_path, fsync=False))
        again = engine_run(repo, user.password, root, StateFile(state_path, fsync=False))
        assert not again.changed()
        got = (server_snapshot(user), maildir_snapshot(root))
        assert got[0] == got[1] and len(got[0]) == 12
        if torn:  # the same twelve messages, as the run with an intact journal left them
            assert got == far_expected, "a torn journal tail changed the outcome"
        else:
            far_expected = got


def test_deletion_guard_keeps_a_full_maildir_when_the_server_folder_is_emptied_unless_forced(env):
    _synced(env, 40)
    c = env.imap()
    c.select_folder("INBOX")
    c.delete_messages(c.search("ALL"))
    c.expunge()
    c.logout()
    proc = env.run(expect=1)
    assert "would delete 40" in proc.stderr + proc.stdout
    assert len(env.local_folder("INBOX")) == 40
    env.run("--force-deletes")
    assert len(env.local_folder("INBOX")) == 0
