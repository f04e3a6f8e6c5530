"""Logging in to an IMAP server: which mechanism, and the one write that carries it.

The mechanism is the first of the repository's order (``auth_mechanisms``, else
auth_options.DEFAULT_ORDER) that the server offers (``AUTH=`` capabilities before login;
LOGIN unless ``LOGINDISABLED``) and that there are credentials for (a password for PLAIN
and LOGIN, OAuth2 settings for XOAUTH2 and OAUTHBEARER). With SASL-IR the whole
AUTHENTICATE is one line, so it travels pipelined with the first command exactly as LOGIN
does (imap_conn.send_login); without SASL-IR imapclient's challenge-response methods are
used. Credentials never reach the protocol trace.
"""

from __future__ import annotations

import logging
from typing import Any

from fastsync.auth_options import DEFAULT_ORDER, OAUTH_MECHANISMS
from fastsync.config import ImapRepo
from fastsync.errors import AuthError
from fastsync.oauth import TokenSource, sasl_oauthbearer, sasl_xoauth2
from fastsync.stores.imap_conn import authenticate_ir, login_pipelined, quotable

log = logging.getLogger(__name__)


def choose_mechanism(
    caps: frozenset[bytes], order: tuple[str, ...], *, password: bool, oauth: bool
) -> str | None:
    """The first mechanism of ``order`` the server offers and there are credentials for."""
    for mech in order:
        if mech in OAUTH_MECHANISMS:
            usable = oauth and b"AUTH=" + mech.encode() in caps
        elif mech == "PLAIN":
            usable = password and b"AUTH=PLAIN" in caps
        else:  # LOGIN, the command
            usable = password and b"LOGINDISABLED" not in caps
        if usable:
            return mech
    return None


class Login:
    """The credentials of one store and how they are sent (see the module docstring)."""

    def __init__(self, repo: ImapRepo, password: str, where: str) -> None:
        self.repo = repo
        self.password = password
        self.where = where
        oauth = repo.oauth2 if repo.oauth2 is not None and repo.oauth2.usable else None
        self.tokens = TokenSource(oauth, where, repo.timeout) if oauth is not None else None
        self.mechanism = ""  # the one used by the last log_in()

    def pick(self, client: Any) -> str:
        """The mechanism to use on ``client``'s server; AuthError when there is none."""
        caps = frozenset(c.upper() for c in client.capabilities())
        order = self.repo.auth_mechanisms or DEFAULT_ORDER
        has_password = bool(self.password) or self.tokens is None
        mech = choose_mechanism(caps, order, password=has_password, oauth=self.tokens is not None)
        if mech is None:
            offered = " ".join(sorted(c.decode("ascii", "replace") for c in caps if c.startswith(b"AUTH=")))
            raise AuthError(
                f"{self.where}: no login mechanism to use: auth_mechanisms {', '.join(order)}; the server "
                f"offers {offered or 'no AUTH='}{'' if has_password else '; no password'}"
                f"{'' if self.tokens is not None else '; no OAuth2 credentials'}"
            )
        return mech

    def log_in(self, client: Any, command: str | None) -> bool:
        """Log in (LoginError when refused); with ``command`` pipelined after it where the
        mechanism allows: True when that command completed OK (see imap_conn.login_pipelined)."""
        mech = self.mechanism = self.pick(client)
        user = self.repo.remoteuser
        if mech == "LOGIN":
            if command is None or not (quotable(user) and quotable(self.password)):
                client.login(user, self.password)
                return False
            return login_pipelined(client, user, self.password, command)
        if b"SASL-IR" in {c.upper() for c in client.capabilities()}:
            return authenticate_ir(client, mech, self._response(mech, user), command) is True
        # challenge-response: one more round trip, and nothing may follow in the same write
        if mech == "PLAIN":
            client.plain_login(user, self.password)
        elif mech == "XOAUTH2":
            client.oauth2_login(user, self._token())
        else:
            client.oauthbearer_login(user, self._token())
        return False

    def _token(self) -> str:
        assert self.tokens is not None
        return self.tokens.token()

    def _response(self, mech: str, user: str) -> bytes:
        if mech == "PLAIN":
            return b"\0" + user.encode() + b"\0" + self.password.encode()
        if mech == "XOAUTH2":
            return sasl_xoauth2(user, self._token())
        return sasl_oauthbearer(user, self._token(), self.repo.remotehost, self.repo.port)

    def may_retry(self) -> bool:
        """After a refused OAuth2 login: whether a refreshed token may do better. Marks the
        token expired, so the next login refreshes it."""
        if self.tokens is None or self.mechanism not in OAUTH_MECHANISMS:
            return False
        if self.tokens.last_refreshed or not self.tokens.can_refresh:
            return False
        self.tokens.expired()
        return True

    def server_expired(self) -> None:
        """The server ended the session because the token expired (``BYE ... AccessTokenExpired``)."""
        if self.tokens is not None:
            self.tokens.expired()
