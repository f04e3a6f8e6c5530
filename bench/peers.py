"""The contestants: fastsync, mbsync, OfflineIMAP and the limit client (1 and 4 connections each).

Each writes its own config for one account (plain IMAP on 127.0.0.1, a given port) into its
own work directory, keeps its mail in ``<work>/Mail`` and its state in ``<work>/state``, so
``wipe()`` returns it to an empty destination.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Account:
    host: str
    port: int
    user: str
    password: str


def python_env() -> dict[str, str]:
    """Environment for the Python contestants: the repo on the path and byte-code caching on.
    With PYTHONDONTWRITEBYTECODE set, as on some CI machines, every process would compile
    fastsync from source on every run, which no installed copy does (pip and Debian compile
    at install time). The caches land in __pycache__ (git-ignored)."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def warm_up() -> None:
    """Compile fastsync and the bench once, so no timed run pays for it."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO_ROOT / "fastsync"),
                    str(REPO_ROOT / "bench")], env=python_env(), check=True, stdout=subprocess.DEVNULL)


@dataclass
class Peer:
    name: str
    work: Path
    has_state: bool = True  # False: a re-sync is meaningless (the limit client copies everything)

    @property
    def mail(self) -> Path:
        return self.work / "Mail"

    @property
    def state(self) -> Path:
        return self.work / "state"

    def wipe(self) -> None:
        shutil.rmtree(self.work, ignore_errors=True)
        self.mail.mkdir(parents=True)
        self.state.mkdir(parents=True)

    def command(self, acct: Account) -> list[str]:
        raise NotImplementedError

    def env(self) -> dict[str, str]:
        return dict(os.environ)

    def _passfile(self, acct: Account) -> Path:
        path = self.work / "pass"
        path.write_text(acct.password + "\n")
        path.chmod(0o600)
        return path


class Fastsync(Peer):
    def __init__(self, name: str, work: Path, connections: int = 4) -> None:
        super().__init__(name, work)
        self.connections = connections

    def command(self, acct: Account) -> list[str]:
        cfg = self.work / "fastsyncrc"
        cfg.write_text(
            "[general]\naccounts = Bench\n"
            f"metadata = {self.state}\n"
            "[Account Bench]\nlocalrepository = Local\nremoterepository = Remote\n"
            f"[Repository Local]\ntype = Maildir\nlocalfolders = {self.mail}\n"
            "[Repository Remote]\ntype = IMAP\n"
            f"remotehost = {acct.host}\nremoteport = {acct.port}\nremoteuser = {acct.user}\n"
            f"remotepassfile = {self._passfile(acct)}\nssl = no\n"
            f"maxconnections = {self.connections}\n"
        )
        cfg.chmod(0o600)
        return [*fastsync_command(), "-c", str(cfg), "-o", "-u", "Noninteractive.Quiet"]

    def env(self) -> dict[str, str]:
        return python_env() if fastsync_command()[0] == sys.executable else dict(os.environ)


INSTALLED = REPO_ROOT / "bench" / "work" / "venv" / "bin" / "fastsync"


def fastsync_command() -> list[str]:
    """fastsync as installed by ``tools/setup.sh --bench`` (``make bench``), as users run it;
    the repository's copy through this Python when that install is missing."""
    if INSTALLED.exists():
        return [str(INSTALLED)]
    return [sys.executable, "-m", "fastsync"]


class Mbsync(Peer):
    def command(self, acct: Account) -> list[str]:
        cfg = self.work / "mbsyncrc"
        # Default settings otherwise (FSync yes, Sync All, no expunge); AuthMechs LOGIN because
        # mbsync will not send a password over plain IMAP unless told to.
        cfg.write_text(
            f"IMAPAccount bench\nHost {acct.host}\nPort {acct.port}\nUser {acct.user}\n"
            f"PassCmd \"cat {self._passfile(acct)}\"\nSSLType None\nAuthMechs LOGIN\n\n"
            "IMAPStore far\nAccount bench\n\n"
            f"MaildirStore near\nPath {self.mail}/\nInbox {self.mail}/INBOX\nSubFolders Verbatim\n\n"
            "Channel bench\nFar :far:\nNear :near:\nPatterns *\nCreate Both\n"
            f"SyncState {self.state}/\n"
        )
        return ["mbsync", "-q", "-c", str(cfg), "bench"]


class Offlineimap(Peer):
    def __init__(self, name: str, work: Path, connections: int) -> None:
        super().__init__(name, work)
        self.connections = connections

    def command(self, acct: Account) -> list[str]:
        cfg = self.work / "offlineimaprc"
        cfg.write_text(
            "[general]\naccounts = Bench\n"
            f"metadata = {self.state}\nui = Quiet\n"
            "[Account Bench]\nlocalrepository = Local\nremoterepository = Remote\n"
            f"[Repository Local]\ntype = Maildir\nlocalfolders = {self.mail}\n"
            "[Repository Remote]\ntype = IMAP\n"
            f"remotehost = {acct.host}\nremoteport = {acct.port}\nremoteuser = {acct.user}\n"
            f"remotepass = {acct.password}\nssl = no\nstarttls = no\n"
            f"maxconnections = {self.connections}\n"
        )
        cfg.chmod(0o600)
        return ["offlineimap", "-c", str(cfg), "-o", "-u", "Quiet"]


class LimitClient(Peer):
    def __init__(self, name: str, work: Path, connections: int) -> None:
        super().__init__(name, work, has_state=False)
        self.connections = connections

    def command(self, acct: Account) -> list[str]:
        return [sys.executable, "-m", "bench.limit_client", "--host", acct.host, "--port", str(acct.port),
                "--user", acct.user, "--passfile", str(self._passfile(acct)),
                "--connections", str(self.connections), str(self.mail)]

    def env(self) -> dict[str, str]:
        return python_env()


def make_peers(root: Path, names: list[str]) -> list[Peer]:
    known: dict[str, Peer] = {
        "fastsync": Fastsync("fastsync", root / "fastsync"),
        "fastsync-1": Fastsync("fastsync-1", root / "fastsync-1", 1),
        "mbsync": Mbsync("mbsync", root / "mbsync"),
        "offlineimap-1": Offlineimap("offlineimap-1", root / "offlineimap-1", 1),
        "offlineimap-4": Offlineimap("offlineimap-4", root / "offlineimap-4", 4),
        "limit": LimitClient("limit", root / "limit", 1),
        "limit-4": LimitClient("limit-4", root / "limit-4", 4),
    }
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"bench: unknown peers {unknown}; known: {list(known)}")
    return [known[n] for n in names]


def versions() -> dict[str, str]:
    """Versions of everything measured, one line each ('missing' when not installed)."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))

    def first_line(cmd: list[str]) -> str:
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False, env=env)
        except OSError:
            return "missing"
        text = (done.stdout or done.stderr).strip().splitlines()
        return text[0] if text else "unknown"

    return {
        "python": sys.version.split()[0],
        "dovecot": first_line(["/usr/sbin/dovecot", "--version"]),
        "mbsync": first_line(["mbsync", "--version"]),
        "offlineimap": first_line(["offlineimap", "--version"]),
        "fastsync": first_line([sys.executable, "-c", "import fastsync; print(fastsync.__version__)"]),
    }
