"""A tiny OAuth2 provider on 127.0.0.1 for tests: a token endpoint and an introspection endpoint.

Contract:
- ``POST /token`` (form-encoded, ``grant_type=refresh_token``, ``refresh_token``,
  ``client_id``, ``client_secret``) answers ``{"access_token", "expires_in", "token_type"}``
  with a new random access token for the user the refresh token belongs to, or 400
  ``{"error": "invalid_grant"}`` / 401 ``{"error": "invalid_client"}``.
- ``POST /introspect`` (form ``token=...``, what Dovecot's oauth2 passdb sends with
  ``introspection_mode = post``) answers ``{"active": true, "username": USER}`` for a live
  token, ``{"active": false}`` for an unknown, revoked or expired one.
- Counters (``refreshes``, ``introspections``, ``rejected``) and every token issued, for
  assertions; ``issue()`` mints an access token directly, ``revoke()`` kills one,
  ``expire_all()`` every live one.
- It listens on a random port of 127.0.0.1 only, in a daemon thread; ``stop()`` closes it.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

HOST = "127.0.0.1"


@dataclass
class _Token:
    user: str
    expires: float
    revoked: bool = False


@dataclass
class OAuthServer:
    """Start with ``start()`` (or as a context manager)."""

    client_id: str = "fastsync-test-client"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    expires_in: int = 3600  # lifetime of the access tokens it issues, in seconds
    refreshes: int = 0
    introspections: int = 0
    rejected: int = 0  # introspections answered "not active"
    issued: list[str] = field(default_factory=list)
    _refresh_tokens: dict[str, str] = field(default_factory=dict)  # refresh token -> user
    _tokens: dict[str, _Token] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _httpd: ThreadingHTTPServer | None = None

    @property
    def port(self) -> int:
        assert self._httpd is not None, "not started"
        return int(self._httpd.server_address[1])

    @property
    def token_url(self) -> str:
        return f"http://{HOST}:{self.port}/token"

    @property
    def introspection_url(self) -> str:
        return f"http://{HOST}:{self.port}/introspect"

    def start(self) -> OAuthServer:
        handler = type("Handler", (_Handler,), {"provider": self})
        self._httpd = ThreadingHTTPServer((HOST, 0), handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, name="oauthserver", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> OAuthServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the test's side ---------------------------------------------------------------------
    def add_refresh_token(self, user: str) -> str:
        """A new refresh token for ``user``."""
        token = "rt-" + secrets.token_urlsafe(18)
        with self._lock:
            self._refresh_tokens[token] = user
        return token

    def issue(self, user: str, expires_in: int | None = None) -> str:
        """A new access token for ``user`` (as a refresh would give, without counting one)."""
        token = "at-" + secrets.token_urlsafe(24)
        life = self.expires_in if expires_in is None else expires_in
        with self._lock:
            self._tokens[token] = _Token(user, time.time() + life)
            self.issued.append(token)
        return token

    def revoke(self, token: str) -> None:
        with self._lock:
            self._tokens[token].revoked = True

    def expire_all(self) -> None:
        with self._lock:
            for t in self._tokens.values():
                t.revoked = True

    # -- the endpoints ---------------------------------------------------------------------------
    def refresh(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return 401, {"error": "invalid_client"}
        if form.get("grant_type") != "refresh_token":
            return 400, {"error": "unsupported_grant_type"}
        with self._lock:
            user = self._refresh_tokens.get(form.get("refresh_token", ""))
        if user is None:
            return 400, {"error": "invalid_grant", "error_description": "refresh token unknown"}
        token = self.issue(user)
        with self._lock:
            self.refreshes += 1
        return 200, {"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"}

    def introspect(self, token: str) -> dict[str, Any]:
        with self._lock:
            self.introspections += 1
            t = self._tokens.get(token)
            if t is None or t.revoked or t.expires <= time.time():
                self.rejected += 1
                return {"active": False}
            return {"active": True, "username": t.user}


class _Handler(BaseHTTPRequestHandler):
    provider: OAuthServer

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        form = {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}
        if self.path == "/token":
            status, answer = self.provider.refresh(form)
        elif self.path == "/introspect":
            status, answer = 200, self.provider.introspect(form.get("token", ""))
        else:
            status, answer = 404, {"error": "not_found"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tokens travel in bodies only
        pass
