"""``fastsync migrate``'s login options per side (1 = SRC, 2 = DST): mechanisms and OAuth2.

``--oauthaccesstoken1 FILE`` logs SRC in with XOAUTH2/OAUTHBEARER using the token in FILE,
read again at every login (an outside tool may renew it while the migration runs);
``--oauth2-request-url1`` with ``--oauth2-refresh-token1-file`` (and the client id and
secret file) lets fastsync refresh tokens itself. Secrets come from files, never the command
line. A side with OAuth2 needs no password; one given as well is still read (for PLAIN or
LOGIN in ``--authmech1``).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from fastsync.auth_options import OAuth2Settings, check, parse_mechanisms
from fastsync.errors import ConfigError
from fastsync.migrate.urls import read_password


class SideAuth:
    """What one side logs in with: password ("" for none), OAuth2 settings, mechanism order."""

    def __init__(self, password: str, oauth2: OAuth2Settings | None, mechanisms: tuple[str, ...]) -> None:
        self.password = password
        self.oauth2 = oauth2
        self.mechanisms = mechanisms


def add_arguments(p: argparse.ArgumentParser, n: str, side: str) -> None:
    p.add_argument(
        f"--oauthaccesstoken{n}", metavar="FILE",
        help=f"{side}: log in with this OAuth2 access token (first line of FILE, re-read at each login)",
    )
    p.add_argument(f"--oauth2-request-url{n}", metavar="URL", help=f"{side}: OAuth2 token endpoint")
    p.add_argument(f"--oauth2-client-id{n}", metavar="ID", help=f"{side}: OAuth2 client id")
    p.add_argument(f"--oauth2-client-secret{n}-file", metavar="FILE", help=f"{side}: OAuth2 client secret")
    p.add_argument(f"--oauth2-refresh-token{n}-file", metavar="FILE", help=f"{side}: OAuth2 refresh token")
    p.add_argument(
        f"--authmech{n}", metavar="LIST",
        help=f"{side}: login mechanisms in order (XOAUTH2, OAUTHBEARER, PLAIN, LOGIN)",
    )


def uses_oauth(args: argparse.Namespace) -> bool:
    options = ("oauthaccesstoken{}", "oauth2_request_url{}", "oauth2_refresh_token{}_file", "authmech{}")
    return any(getattr(args, opt.format(n), None) for n in "12" for opt in options)


def side_auth(args: argparse.Namespace, n: str, which: str) -> SideAuth:
    """The side's login settings from the command line; ConfigError naming the option."""
    oauth2 = _oauth2(args, n, which)
    raw = getattr(args, f"authmech{n}")
    try:
        mechanisms = parse_mechanisms(raw) if raw else ()
    except ValueError as e:
        raise ConfigError(f"{which}: --authmech{n}: {e}") from None
    wrong = check(oauth2, mechanisms)
    if wrong is not None:
        raise ConfigError(f"{which}: {_flag(wrong[0], n)}: {wrong[1]}")
    env = f"FASTSYNC_PASSWORD{n}"
    file, command = getattr(args, f"password{n}_file"), getattr(args, f"passcmd{n}")
    if oauth2 is not None and file is None and command is None and env not in os.environ:
        return SideAuth("", oauth2, mechanisms)
    return SideAuth(read_password(which, file=file, command=command, env=env), oauth2, mechanisms)


def _oauth2(args: argparse.Namespace, n: str, which: str) -> OAuth2Settings | None:
    token_file = getattr(args, f"oauthaccesstoken{n}")
    url = getattr(args, f"oauth2_request_url{n}")
    secret_file = getattr(args, f"oauth2_client_secret{n}_file")
    refresh_file = getattr(args, f"oauth2_refresh_token{n}_file")
    if token_file is None and url is None and refresh_file is None:
        if secret_file is not None or getattr(args, f"oauth2_client_id{n}") is not None:
            raise ConfigError(f"{which}: the OAuth2 client options need --oauth2-refresh-token{n}-file")
        return None
    if token_file is not None:  # read now to fail early; read again at every login
        _secret(token_file, which, f"--oauthaccesstoken{n}")
    return OAuth2Settings(
        request_url=url,
        client_id=getattr(args, f"oauth2_client_id{n}"),
        client_secret=_secret(secret_file, which, f"--oauth2-client-secret{n}-file"),
        refresh_token=_secret(refresh_file, which, f"--oauth2-refresh-token{n}-file"),
        access_token_file=os.path.abspath(os.path.expanduser(token_file)) if token_file else None,
    )


def _secret(path: str | None, which: str, flag: str) -> str | None:
    """The first line of ``path`` (never shown in a message)."""
    if path is None:
        return None
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        what = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
        raise ConfigError(f"{which}: {flag} {path!r}: cannot read: {what}") from None
    first = text.split("\n", 1)[0].strip()
    if not first:
        raise ConfigError(f"{which}: {flag} {path!r}: empty first line (expected the secret)")
    return first


def _flag(option: str, n: str) -> str:
    """The command-line flag of an offlineimap-style option name, for error messages."""
    flags = {
        "oauth2_refresh_token": f"--oauth2-refresh-token{n}-file",
        "oauth2_request_url": f"--oauth2-request-url{n}",
        "auth_mechanisms": f"--authmech{n}",
    }
    return flags.get(option, option)
