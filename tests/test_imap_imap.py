"""IMAP <-> IMAP two-way sync from a config: the local repository is an IMAP server (a second
private Dovecot whose separator is "/"), through the real command."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.imapenv import (
    append,
    contents,
    folder_messages,
    folder_names,
    message,
    new_user,
)
from tools.dovecot import Dovecot, User

pytestmark = pytest.mark.dovecot
REPO_ROOT = Path(__file__).resolve().parent.parent




@dataclass
class Pair:
    far: User
    near: User
    tmp: Path

    def write_config(self, far_extra: str = "", near_extra: str = "") -> Path:
        cfg = self.tmp / "fastsyncrc"
        for side, user in (("far", self.far), ("near", self.near)):
            (self.tmp / f"{side}.pass").write_text(user.password + "\n")
        cfg.write_text(
            f"[general]\naccounts = T\nmetadata = {self.tmp / 'meta'}\n"
            "[Account T]\nlocalrepository = Near\nremoterepository = Far\n"
            f"[Repository Far]\ntype = IMAP\nremotehost = {self.far.server.host}\n"
            f"remoteport = {self.far.server.port}\nremoteuser = {self.far.name}\nssl = no\n"
            f"remotepassfile = {self.tmp / 'far.pass'}\n{far_extra}\n"
            f"[Repository Near]\ntype = IMAP\nremotehost = {self.near.server.host}\n"
            f"remoteport = {self.near.server.port}\nremoteuser = {self.near.name}\nssl = no\n"
            f"remotepassfile = {self.tmp / 'near.pass'}\n{near_extra}\n"
        )
        cfg.chmod(0o600)
        return cfg

    def run(self, *args: str, expect: int = 0) -> str:
        cfg = self.tmp / "fastsyncrc"
        if not cfg.exists():
            self.write_config()
        proc = subprocess.run(
            [sys.executable, "-m", "fastsync", "-c", str(cfg), "-o", "-u", "Noninteractive.Basic", *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)),
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == expect, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc.stdout + proc.stderr if expect else proc.stdout


@pytest.fixture
def pair(dovecot: Dovecot, slash_dovecot: Dovecot, tmp_path: Path) -> Pair:
    return Pair(new_user(dovecot, "far"), new_user(slash_dovecot, "near"), tmp_path)


def test_first_sync_copies_every_folder_both_ways_translating_the_separator_byte_exact(pair: Pair) -> None:
    for i in range(5):
        append(pair.far, "INBOX", message(i, tag="f"), (b"\\Seen",) if i % 2 else ())
        append(pair.far, "Work.Projects", message(i, tag="wp"))
    append(pair.near, "Lists/Python", message(1, tag="lp"), (b"\\Flagged",))
    out = pair.run()
    assert "copied 10 far->near and 1 near->far" in out
    assert folder_names(pair.near) == ["INBOX", "Lists/Python", "Work/Projects"]
    assert "Lists.Python" in folder_names(pair.far)
    for far_name, near_name in (
        ("INBOX", "INBOX"),
        ("Work.Projects", "Work/Projects"),
        ("Lists.Python", "Lists/Python"),
    ):
        assert contents(folder_messages(pair.far, far_name)) == contents(
            folder_messages(pair.near, near_name)
        )
    assert "copied 0 far->near and 0 near->far, flags changed 0, deleted 0" in pair.run()


def test_changes_on_both_servers_converge_new_flags_deletions_folders(pair: Pair) -> None:
    for i in range(6):
        append(pair.far, "INBOX", message(i, tag="c"))
    pair.run()
    far, near = pair.far.connect(), pair.near.connect()
    try:
        far.select_folder("INBOX")
        near.select_folder("INBOX")
        fu, nu = far.search("ALL"), near.search("ALL")
        far.add_flags([fu[0]], [b"\\Flagged"])
        near.add_flags([nu[1]], [b"\\Answered", b"\\Seen"])
        far.delete_messages([fu[2]])
        far.expunge()
        near.delete_messages([nu[3]])
        near.expunge()
        far.append("INBOX", message(100, tag="farnew"))
        near.append("INBOX", message(200, tag="nearnew"))
        near.create_folder("Made/Here")
        near.append("Made/Here", message(300, tag="made"))
    finally:
        far.logout()
        near.logout()
    pair.run()
    f, n = folder_messages(pair.far, "INBOX"), folder_messages(pair.near, "INBOX")
    assert contents(f) == contents(n)
    assert len(f) == 6 - 2 + 2
    flags = [fl for fl, _, _ in f.values()]
    assert frozenset({b"\\Flagged"}) in flags and frozenset({b"\\Answered", b"\\Seen"}) in flags
    assert contents(folder_messages(pair.far, "Made.Here")) == contents(
        folder_messages(pair.near, "Made/Here")
    )
    assert "copied 0 far->near and 0 near->far, flags changed 0, deleted 0" in pair.run()


def test_folderfilter_and_nametrans_apply_to_an_imap_local_repository(pair: Pair) -> None:
    for name in ("INBOX", "Keep", "Skip"):
        append(pair.far, name, message(1, tag=name))
    append(pair.near, "Local/Only", message(2, tag="lo"))
    pair.write_config(
        far_extra="folderfilter = lambda f: f != 'Skip'\n"
        "nametrans = lambda f: f if f == 'INBOX' else 'Mirror.' + f",
        near_extra="folderfilter = lambda f: f != 'Local/Only'\n"
        "nametrans = lambda f: re.sub('^Mirror/', '', f)",
    )
    pair.run()
    assert folder_names(pair.near) == ["INBOX", "Local/Only", "Mirror/Keep"]
    assert "Local.Only" not in folder_names(pair.far)
    assert contents(folder_messages(pair.far, "Keep")) == contents(folder_messages(pair.near, "Mirror/Keep"))


def test_lost_state_pairs_by_content_and_the_deletion_guard_holds_between_two_servers(pair: Pair) -> None:
    import shutil

    for i in range(10):
        append(pair.far, "INBOX", message(i, tag="far"))
    for i in range(5):
        append(pair.near, "INBOX", message(i, tag="near"))
    pair.run()
    assert len(folder_messages(pair.near, "INBOX")) == 15
    shutil.rmtree(pair.tmp / "meta")  # the state is lost: union, pairing by content, no deletions
    assert "copied 0 far->near and 0 near->far, flags changed 0, deleted 0" in pair.run()
    f, n = folder_messages(pair.far, "INBOX"), folder_messages(pair.near, "INBOX")
    assert contents(f) == contents(n) and len(f) == 15
    near = pair.near.connect()
    try:  # the near server's INBOX emptied: a run must not empty the far one to match
        near.select_folder("INBOX")
        near.delete_messages(near.search("ALL"))
        near.expunge()
    finally:
        near.logout()
    said = pair.run(expect=1)
    assert "would delete 15 of 15" in said, said
    assert len(folder_messages(pair.far, "INBOX")) == 15
    pair.run("--force-deletes")
    assert len(folder_messages(pair.far, "INBOX")) == 0
