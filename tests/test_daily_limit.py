"""A server that says the account's daily allowance is used up (Gmail's "Account exceeded
command or bandwidth limits") stops that account at once with a clear message; what was
copied before stays recorded, and the next run resumes without duplicates. The limit is
injected by a proxy in front of the session Dovecot, mid-way through a body fetch."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.imapenv import append, folder_messages, folder_names, message, new_user
from tests.test_migrate import Mig, total_line
from tools.corpus import CorpusSpec, generate
from tools.dovecot import Dovecot, User
from tools.faultproxy import FaultProxy

pytestmark = pytest.mark.dovecot
LIMIT = b"NO [ALERT] Account exceeded command or bandwidth limits. (Failure)"
_TAGGED = re.compile(rb"^([A-Za-z0-9.]+) OK ")


class LimitAfter:
    """A rewrite_down: after ``count`` messages with a body, swallow the rest of that fetch and
    answer its tagged OK with Gmail's daily-limit NO. Off once ``armed`` is False."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.seen = 0
        self.armed = True
        self.swallowing = False

    def __call__(self, line: bytes) -> bytes:
        if not self.armed:
            return line
        if self.swallowing:
            m = _TAGGED.match(line)
            if not m:
                return b""
            self.swallowing = self.armed = False
            return m.group(1) + b" " + LIMIT + b"\r\n"
        if line.startswith(b"* ") and b" FETCH (" in line and b"BODY[]" in line:
            self.seen += 1
            if self.seen > self.count:
                self.swallowing = True
                return b""
        return line


class ProxiedMig(Mig):
    def __init__(self, src: User, dst: User, tmp: Path, port: int) -> None:
        super().__init__(src, dst, tmp)
        self.port = port

    def url(self, user: User) -> str:
        if user is self.src:
            return f"imap://{user.name}@{user.server.host}:{self.port}"
        return super().url(user)


def test_daily_limit_stops_the_account_clearly_and_the_next_run_resumes_without_duplicates(
    dovecot: Dovecot, slash_dovecot: Dovecot, tmp_path: Path
) -> None:
    src, dst = new_user(dovecot, "lim"), new_user(slash_dovecot, "limdst")
    generate(src.maildir, CorpusSpec(folders=["INBOX"], messages=40, seed=11, size_mix="small",
                                     weird=False))
    for i in range(5):  # a second, smaller folder: its job comes after INBOX's (largest first)
        append(src, "Lists", message(i, tag="list"))
    limit = LimitAfter(12)
    with FaultProxy(dovecot.host, dovecot.port) as proxy:
        proxy.rewrite_down = limit
        mig = ProxiedMig(src, dst, tmp_path, proxy.port)
        first = mig.run("--workers", "1", "--batch-messages", "5", expect=3)
        assert not limit.armed, "the limit never fired"
        said = first.stderr
        assert "daily limit is reached" in said and "next run" in said and "bandwidth limits" in said, said
        assert said.count("daily limit is reached") == 1  # stopped, not retried
        copied = len(folder_messages(dst, "INBOX"))
        assert 0 < copied < 40
        assert "Lists" not in folder_names(dst)  # the account stopped: no other folder was started
        second = mig.run("--verify")
    assert total_line(second.stdout)[:5] == [45, 45 - copied, copied, 0, 0], second.stdout
    assert "verify: clean" in second.stdout
    assert len(folder_messages(dst, "INBOX")) == 40 and len(folder_messages(dst, "Lists")) == 5
