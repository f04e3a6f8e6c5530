"""The password of an IMAP repository, from the first source the configuration gives.

Order (as OfflineIMAP): ``remotepass``, ``remotepassfile`` (its first line), ``remotepasseval``
(a Python expression evaluated with the pythonfile's globals), then the interactive prompt.
The password is never logged and never appears in an exception message or its chain.
"""

from __future__ import annotations

import getpass
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastsync import folders
from fastsync.config import ImapRepo
from fastsync.errors import ConfigError

log = logging.getLogger(__name__)

Prompt = Callable[[str], str]


def password_needed(repo: ImapRepo) -> bool:
    """False for a repository that logs in with OAuth2 and names no password source: it is
    then not asked for one (a password given as well is still read, for PLAIN or LOGIN)."""
    sources = (repo.remotepass, repo.remotepassfile, repo.remotepasseval)
    oauth = repo.oauth2 is not None and repo.oauth2.usable
    return not oauth or any(source is not None for source in sources)


def get_password(repo: ImapRepo, pyglobals: dict[str, Any], prompt: Prompt | None) -> str:
    """The password for ``repo``; ConfigError when no configured source gives one."""
    section = f"[Repository {repo.name}]"
    if repo.remotepass is not None:
        return repo.remotepass
    if repo.remotepassfile is not None:
        return _read_passfile(repo.remotepassfile, section)
    if repo.remotepasseval is not None:
        return _eval_password(repo.remotepasseval, section, pyglobals)
    if prompt is None:
        raise ConfigError(
            f"no password configured for {section} and no terminal to ask "
            "(expected remotepass, remotepassfile or remotepasseval)"
        )
    log.debug("asking for the password of %s", section)
    return prompt(f"Password for {repo.remoteuser} at {repo.remotehost} {section}: ")


def _read_passfile(path: str, section: str) -> str:
    where = f"{section} remotepassfile"
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(
            f"{where}: cannot read {path!r}: {e.strerror or type(e).__name__} "
            "(expected a readable file whose first line is the password)"
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        # `from None`: the decode error holds the file's bytes.
        raise ConfigError(f"{where}: {path!r} is not valid UTF-8 (expected UTF-8 text)") from None
    first = text.split("\n", 1)[0].removesuffix("\r")
    if not first:
        raise ConfigError(f"{where}: the first line of {path!r} is empty (expected the password there)")
    return first


def _eval_password(source: str, section: str, pyglobals: dict[str, Any]) -> str:
    where = f"{section} remotepasseval"
    value = folders.eval_value(source, where, pyglobals)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: gives a {type(value).__name__} (expected a str)")
    return value


def terminal_prompt() -> Prompt | None:
    """A prompt that reads without echo from the terminal, or None when there is no terminal."""
    if not sys.stdin.isatty():
        return None
    return getpass.getpass
