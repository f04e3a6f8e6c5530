"""A fastsync setup for integration tests: a config file for one server user (Dovecot, Cyrus or
Courier), a local Maildir, and helpers that run the real command (real processes) and look at both sides."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import imapclient

from fastsync.model import flags_from_imap, flags_from_maildir
from tools.mailserver import MailServer, MailUser

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class SyncEnv:
    dovecot: MailServer  # any private server; named for the one most tests use
    user: MailUser
    tmp: Path
    remote_opts: dict[str, str] = field(default_factory=dict)
    local_opts: dict[str, str] = field(default_factory=dict)
    account_opts: dict[str, str] = field(default_factory=dict)
    general_opts: dict[str, str] = field(default_factory=dict)
    password: bool = True  # False: no password source in the config (OAuth2 logins)

    @property
    def maildir(self) -> Path:
        return self.tmp / "Mail"

    @property
    def metadata(self) -> Path:
        return self.tmp / "meta"

    @property
    def config(self) -> Path:
        return self.tmp / "fastsyncrc"

    def write_config(self, extra: str = "") -> Path:
        remote = {
            "type": "IMAP",
            "remotehost": self.dovecot.host,
            "remoteport": str(self.dovecot.port),
            "remoteuser": self.user.name,
            "ssl": "no",
        }
        remote.update(self.remote_opts)
        local = {"type": "Maildir", "localfolders": str(self.maildir)}
        local.update(self.local_opts)
        account = {"localrepository": "Local", "remoterepository": "Remote"}
        account.update(self.account_opts)
        passfile = self.tmp / "pass"
        passfile.write_text(self.user.password + "\n")
        passfile.chmod(0o600)
        if self.password and "remotepass" not in remote and "remotepasseval" not in remote:
            remote.setdefault("remotepassfile", str(passfile))

        def section(name: str, opts: dict[str, str]) -> str:
            body = "\n".join(f"{k} = {v}" for k, v in opts.items())
            return f"[{name}]\n{body}\n"

        text = (
            section("general", {"accounts": "Test", "metadata": str(self.metadata)} | self.general_opts)
            + section("Account Test", account)
            + section("Repository Local", local)
            + section("Repository Remote", remote)
            + textwrap.dedent(extra)
        )
        self.config.write_text(text)
        self.config.chmod(0o600)
        return self.config

    def run(
        self, *args: str, expect: int | None = 0, timeout: float = 300, python: tuple[str, ...] = ()
    ) -> subprocess.CompletedProcess[str]:
        """fastsync with ``args``; ``python``: options for the interpreter (e.g. -X importtime)."""
        if not self.config.exists():
            self.write_config()
        cmd = [
            sys.executable,
            *python,
            "-m",
            "fastsync",
            "-c",
            str(self.config),
            "-o",
            "-u",
            "Noninteractive.Basic",
            *args,
        ]
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL
        )
        if expect is not None and proc.returncode != expect:
            raise AssertionError(
                f"fastsync exited {proc.returncode}, expected {expect}\n--- stdout\n{proc.stdout}\n"
                f"--- stderr\n{proc.stderr}"
            )
        return proc

    def imap(self) -> imapclient.IMAPClient:
        return self.user.connect()

    # -- looking at both sides -------------------------------------------------------------
    def server_folder(self, folder: str) -> dict[int, tuple[int, bytes]]:
        """UID -> (flags, bytes) of a server folder."""
        c = self.imap()
        try:
            c.select_folder(folder, readonly=True)
            uids = c.search("ALL")
            resp = c.fetch(uids, [b"FLAGS", b"BODY.PEEK[]"]) if uids else {}
            return {u: (flags_from_imap(d[b"FLAGS"]), d[b"BODY[]"]) for u, d in resp.items()}
        finally:
            c.logout()

    def server_folders(self) -> list[str]:
        c = self.imap()
        try:
            return sorted(name for _f, _d, name in c.list_folders())
        finally:
            c.logout()

    def local_folder(self, folder: str) -> dict[str, tuple[int, bytes]]:
        """Base file name -> (flags, bytes) of a local Maildir folder."""
        out = {}
        root = self.maildir / folder
        for sub in ("new", "cur"):
            d = root / sub
            if not d.is_dir():
                continue
            for f in d.iterdir():
                base, _, info = f.name.partition(":2,")
                out[base] = (flags_from_maildir(info), f.read_bytes())
        return out


def lf(data: bytes) -> bytes:
    return data.replace(b"\r\n", b"\n")


def contents(msgs: dict[object, tuple[int, bytes]], normalise: bool = True) -> list[tuple[int, bytes]]:
    """Sorted (flags, bytes) with LF line ends, to compare a server folder with a Maildir."""
    return sorted((fl, lf(b) if normalise else b) for fl, b in msgs.values())
