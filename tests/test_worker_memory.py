"""Workers over their memory limit (``maxworkermemory``, psutil RSS) are replaced between jobs,
and the sync still completes with every message once."""

from __future__ import annotations

import json

import pytest

from tests.syncenv import SyncEnv

pytestmark = pytest.mark.dovecot


def test_a_worker_over_its_memory_limit_is_replaced_between_jobs_and_the_sync_completes(
    dovecot, imap_user, tmp_path
):
    folders = ["INBOX", "A", "B", "C"]
    c = imap_user.connect()
    for name in folders[1:]:
        c.create_folder(name)
    for i, name in enumerate(folders):
        for k in range(3):
            c.append(name, f"From: a\r\nMessage-ID: <m{i}.{k}@x>\r\n\r\nbody {i} {k}\r\n".encode())
    c.logout()
    env = SyncEnv(dovecot, imap_user, tmp_path)
    env.remote_opts["maxconnections"] = "1"
    env.general_opts["maxworkermemory"] = "1"  # MB: every worker is over it after its first job
    env.write_config()
    proc = env.run("-u", "JSON")
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    ups = [r for r in records if r["type"] == "worker_up"]
    # one worker per job: the discovery and each of the four folders
    assert len(ups) == 1 + len(folders), [r["type"] for r in records]
    assert len({r["pid"] for r in ups}) == len(ups)
    for name in folders:
        assert len(env.local_folder(name)) == 3, name
    done = [r for r in records if r["type"] == "account_done"]
    assert done[-1]["state"] == "ok" and done[-1]["folders"] == len(folders), done

    env.general_opts["maxworkermemory"] = "0"  # no limit: one worker does everything
    env.write_config()
    c = imap_user.connect()
    for name in folders:
        c.append(name, b"From: a\r\nMessage-ID: <late@x>\r\n\r\nlate\r\n")
    c.logout()
    records = [json.loads(line) for line in env.run("-u", "JSON").stdout.splitlines()]
    assert len([r for r in records if r["type"] == "worker_up"]) == 1
    assert all(len(env.local_folder(name)) == 4 for name in folders)
