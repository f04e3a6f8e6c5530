"""OAuth2 access tokens for XOAUTH2 / OAUTHBEARER logins: given, re-read, or refreshed.

Contracts:
- ``TokenSource.token()`` returns a token to log in with now. A token this process got by a
  refresh is kept in memory (per account: request URL, client and refresh token) and reused
  until it is within ``margin`` of its expiry (60 s, or half its lifetime when shorter); then
  it is refreshed with ``grant_type=refresh_token`` POSTed, form-encoded, to
  ``oauth2_request_url``. Before any refresh, a given token (``oauth2_access_token``, or the
  first line of ``access_token_file``, read anew at every login) is used.
- ``expired()`` says the server refused or expired the token in use (a refused AUTHENTICATE,
  ``BYE ... AccessTokenExpired``): the next ``token()`` refreshes.
- A refresh the endpoint refuses (400/401: a bad refresh token or client) raises AuthError;
  an endpoint that cannot be reached or answers nonsense raises AccountError. Neither message,
  nor any log line, holds a token, the refresh token or the client secret.
- ``sasl_xoauth2`` / ``sasl_oauthbearer`` build the initial client responses (RFC 7628 for
  OAUTHBEARER; Google's XOAUTH2 format).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from fastsync.auth_options import OAuth2Settings
from fastsync.errors import AccountError, AuthError

log = logging.getLogger(__name__)

MARGIN = 60.0  # refresh a token this many seconds before it expires
DEFAULT_LIFETIME = 3600  # when the endpoint does not say (RFC 6749 leaves expires_in optional)
MAX_ANSWER = 1 << 20


@dataclass
class _Cached:
    token: str
    expires: float  # time.time() of expiry
    margin: float

    def fresh(self, now: float) -> bool:
        return self.expires - now > self.margin


# account key -> the token this process last got for it; None: the given token was refused
_cache: dict[tuple[str | None, str | None, str | None], _Cached | None] = {}


class TokenSource:
    """Access tokens of one account (see the module docstring)."""

    def __init__(self, settings: OAuth2Settings, where: str, timeout: float = 30.0) -> None:
        self.s = settings
        self.where = where
        self.timeout = timeout
        self._key = (settings.request_url, settings.client_id, settings.refresh_token)
        self.last_refreshed = False  # the token token() returned last came from a refresh just now

    @property
    def can_refresh(self) -> bool:
        return self.s.can_refresh

    def token(self) -> str:
        self.last_refreshed = False
        now = time.time()
        if self._key in _cache:
            cached = _cache[self._key]
            if cached is not None and cached.fresh(now):
                return cached.token
            if self.can_refresh:
                return self.refresh()
        given = self._given()
        if given is not None:
            return given
        if self.can_refresh:
            return self.refresh()
        raise AuthError(f"{self.where}: no OAuth2 access token (expected an access or a refresh token)")

    def expired(self) -> None:
        """The token in use was refused or expired by the server."""
        _cache[self._key] = None
        log.info("%s: the OAuth2 access token was refused or expired; it will be refreshed", self.where)

    def _given(self) -> str | None:
        if self.s.access_token_file is not None:
            return _first_line(self.s.access_token_file, self.where)
        return self.s.access_token

    def refresh(self) -> str:
        """A new access token from the token endpoint (and remembered in this process)."""
        url = self.s.request_url
        assert url is not None and self.s.refresh_token is not None
        form = {"grant_type": "refresh_token", "refresh_token": self.s.refresh_token}
        if self.s.client_id is not None:
            form["client_id"] = self.s.client_id
        if self.s.client_secret is not None:
            form["client_secret"] = self.s.client_secret
        answer = self._post(url, form)
        token = answer.get("access_token")
        if not isinstance(token, str) or not token:
            raise AccountError(f"{self.where}: the OAuth2 token endpoint {_site(url)} gave no access_token")
        lifetime = answer.get("expires_in", DEFAULT_LIFETIME)
        try:
            seconds = float(lifetime)
        except (TypeError, ValueError):
            seconds = float(DEFAULT_LIFETIME)
        _cache[self._key] = _Cached(token, time.time() + seconds, min(MARGIN, seconds / 2))
        self.last_refreshed = True
        log.debug(
            "%s: refreshed the OAuth2 access token at %s (valid %.0f s)",
            self.where, _site(url), seconds
        )
        return token

    def _post(self, url: str, form: dict[str, str]) -> dict[str, Any]:
        import urllib.error
        import urllib.request

        request = urllib.request.Request(
            url,
            data=urlencode(form).encode("ascii"),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "application/json"},
            method="POST",
        )
        site = _site(url)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                body = resp.read(MAX_ANSWER)
        except urllib.error.HTTPError as e:
            code = _error_code(e.read(MAX_ANSWER))
            if e.code in (400, 401, 403):
                raise AuthError(
                    f"{self.where}: OAuth2 token refresh refused by {site}: HTTP {e.code} {code} "
                    "(expected a valid oauth2_refresh_token, oauth2_client_id and oauth2_client_secret)"
                ) from None
            raise AccountError(f"{self.where}: OAuth2 token endpoint {site}: HTTP {e.code} {code}") from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise AccountError(f"{self.where}: cannot reach OAuth2 token endpoint {site}: {reason}") from None
        try:
            answer = json.loads(body)
        except ValueError:
            raise AccountError(f"{self.where}: OAuth2 token endpoint {site} did not answer JSON") from None
        if not isinstance(answer, dict):
            raise AccountError(f"{self.where}: the OAuth2 token endpoint {site} did not answer a JSON object")
        return answer


def _site(url: str) -> str:
    """scheme://host[:port]/path of a URL: what messages show (never its query or user info)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}{parts.path}"


def _error_code(body: bytes) -> str:
    """The ``error`` code of an OAuth2 error answer, if it is a short printable word."""
    try:
        error = json.loads(body).get("error")
    except (ValueError, AttributeError):
        return ""
    if isinstance(error, str) and len(error) <= 60 and error.replace("_", "").isalnum():
        return error
    return ""


def _first_line(path: str, where: str) -> str:
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        what = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise AccountError(f"{where}: cannot read the access token file {path!r}: {what}") from None
    first = text.split("\n", 1)[0].strip()
    if not first:
        raise AuthError(f"{where}: the access token file {path!r} is empty (expected the token)")
    return first


def sasl_xoauth2(user: str, token: str) -> bytes:
    return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def sasl_oauthbearer(user: str, token: str, host: str, port: int) -> bytes:
    """RFC 7628 section 3.1: GS2 header with the authorization identity, then key/value pairs."""
    saslname = user.replace("=", "=3D").replace(",", "=2C")
    return f"n,a={saslname},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01".encode()
