"""Migrating from Gmail: labels are folders, and `[Gmail]/All Mail` holds every message again.

The source is the slash Dovecot seen through a proxy that makes it look like Gmail: it adds
X-GM-EXT-1 to every capability list and answers X-GM-MSGID with Dovecot's X-GUID, which for
Maildir is the file's base name. A message filed under several labels is one file name in
several folders, as Gmail's own IMAP shows it. Through the real `fastsync migrate`."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
from imapclient.exceptions import IMAPClientError

from tests.imapenv import folder_messages, folder_names, new_user
from tests.test_daily_limit import ProxiedMig
from tests.test_migrate import total_line
from tools.corpus import _make_folder, _Owner, _write_file, folder_path
from tools.dovecot import Dovecot, User
from tools.faultproxy import FaultProxy

pytestmark = pytest.mark.dovecot
ALL = "[Gmail]/All Mail"
LABELS = {"INBOX": "ab", "Work": "bc", "Travel": "cd", ALL: "abcde", "[Gmail]/Trash": "f"}
_GUID = re.compile(rb"X-GUID ([^ )]+)")
_KEY = re.compile(rb"<gm-(\w)@")


def _message(key: str) -> bytes:
    return (
        f"From: a@example.org\nTo: b@example.org\nSubject: message {key}\n"
        f"Message-ID: <gm-{key}@example.org>\nDate: Mon, 1 Jan 2024 10:00:00 +0000\n\nbody {key}\n"
    ).encode()


def _fill(user: User) -> None:
    """Each message is one file name in every folder that has its label (Gmail's view)."""
    owner = _Owner(user.maildir)
    for folder, keys in LABELS.items():
        path = _make_folder(user.maildir, folder, "/", owner)
        for key in keys:
            name = f"1700000{ord(key)}.M1P1.gmail:2,S"
            _write_file(path / "cur" / name, _message(key), 1_700_000_000, owner)
    assert folder_path(user.maildir, ALL, "/").is_dir()


def _as_gmail_down(line: bytes) -> bytes:
    if b"CAPABILITY" in line.upper():
        line = re.sub(rb"CAPABILITY", b"CAPABILITY X-GM-EXT-1", line, count=1, flags=re.I)
    return _GUID.sub(lambda m: b"X-GM-MSGID %d" % int(hashlib.sha1(m.group(1)).hexdigest()[:15], 16), line)


def _as_gmail_up(line: bytes) -> bytes:
    return line.replace(b"X-GM-MSGID", b"X-GUID") if b" FETCH " in line.upper() else line


def _where(dst: User) -> dict[str, str]:
    """Destination folder -> the keys of the messages it holds (by Message-ID), sorted; only
    folders that hold any."""
    out = {}
    for folder in folder_names(dst):
        try:
            held = folder_messages(dst, folder).values()
        except IMAPClientError:  # a \Noselect parent such as "[Gmail]"
            continue
        keys = "".join(sorted(m.group(1).decode() for _, data, _ in held if (m := _KEY.search(data))))
        if keys:
            out[folder] = keys
    return out


@pytest.fixture
def gmail_src(slash_dovecot: Dovecot) -> User:
    user = new_user(slash_dovecot, "gm")
    _fill(user)
    return user


@pytest.mark.parametrize("split", [False, True], ids=["whole", "in-uid-ranges"])
def test_each_label_gets_its_messages_and_all_mail_only_the_rest_copied_last(
    gmail_src: User, dovecot: Dovecot, tmp_path: Path, split: bool
) -> None:
    dst = new_user(dovecot, "gmdst")
    opts = ("--workers", "2", "--splitthreshold", "4" if split else "0")
    with FaultProxy(gmail_src.server.host, gmail_src.server.port) as proxy:
        proxy.rewrite_down, proxy.rewrite_up = _as_gmail_down, _as_gmail_up
        mig = ProxiedMig(gmail_src, dst, tmp_path, proxy.port)
        first = mig.run(*opts)
        assert bool(re.search(rf"{re.escape(ALL)}: copied in \d+ UID ranges", first.stdout)) == split
        assert b"X-GUID" in bytes(proxy.up_log), "the proxy never saw an X-GM-MSGID fetch"
        where = _where(dst)
        trash = next(f for f, keys in where.items() if keys == "f")
        assert where == {
            "INBOX": "ab", "Work": "bc", "Travel": "cd", "[Gmail].All Mail": "e", trash: "f"
        }, where
        assert "4 Gmail duplicates left out" in first.stdout, first.stdout
        # All Mail went last: its one body crossed after every other folder's bodies
        down = bytes(proxy.down_log)
        assert down.find(b"<gm-e@") > max(down.rfind(f"<gm-{k}@".encode()) for k in "abcdf")
        again = mig.run(*opts)
    assert total_line(again.stdout)[1] == 0, again.stdout  # nothing copied twice
    assert _where(dst) == where


def test_gmail_once_copies_every_message_once_in_all(
    gmail_src: User, dovecot: Dovecot, tmp_path: Path
) -> None:
    dst = new_user(dovecot, "gmonce")
    with FaultProxy(gmail_src.server.host, gmail_src.server.port) as proxy:
        proxy.rewrite_down, proxy.rewrite_up = _as_gmail_down, _as_gmail_up
        mig = ProxiedMig(gmail_src, dst, tmp_path, proxy.port)
        mig.run("--gmail-once")
        where = _where(dst)
        assert "".join(sorted("".join(where.values()))) == "abcdef", where  # each message once
        assert where["INBOX"] == "ab" and where["Travel"] == "cd" and "Work" not in where, where
        again = mig.run("--gmail-once")
    assert total_line(again.stdout)[1] == 0, again.stdout


def test_without_x_gm_ext_1_nothing_is_left_out(gmail_src: User, dovecot: Dovecot, tmp_path: Path) -> None:
    dst = new_user(dovecot, "gmplain")
    ProxiedMig(gmail_src, dst, tmp_path, gmail_src.server.port).run()
    assert _where(dst)["[Gmail].All Mail"] == "abcde"
