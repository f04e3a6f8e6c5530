"""Fixtures of the OAuth2 tests: the token/introspection server (tools.oauthserver) and a
private Dovecot whose oauth2 passdb asks it about every XOAUTH2 / OAUTHBEARER token."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.syncenv import SyncEnv
from tools.dovecot import Dovecot, User
from tools.oauthserver import OAuthServer


@pytest.fixture(scope="module")
def provider() -> Iterator[OAuthServer]:
    with OAuthServer() as server:
        yield server


@pytest.fixture(scope="module")
def oauth_dovecot(tmp_path_factory: pytest.TempPathFactory, provider: OAuthServer) -> Iterator[Dovecot]:
    base = tmp_path_factory.mktemp("dovecot-oauth")
    server = Dovecot(base, oauth2_introspection_url=provider.introspection_url)
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"private Dovecot with oauth2 passdb unavailable: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def oauth_user(oauth_dovecot: Dovecot) -> User:
    return oauth_dovecot.add_user(f"oauth-{secrets.token_hex(3)}", secrets.token_urlsafe(12))


def oauth_env(dovecot: Dovecot, user: User, tmp: Path, provider: OAuthServer, **opts: str) -> SyncEnv:
    """A SyncEnv with no password at all: the account logs in with OAuth2 only."""
    env = SyncEnv(dovecot, user, tmp, password=False)
    env.remote_opts.update(opts)
    env.write_config()
    return env


def refresh_opts(provider: OAuthServer, refresh_token: str) -> dict[str, str]:
    return {
        "oauth2_request_url": provider.token_url,
        "oauth2_client_id": provider.client_id,
        "oauth2_client_secret": provider.client_secret,
        "oauth2_refresh_token": refresh_token,
    }


def logins(dovecot: Dovecot, user: User) -> list[str]:
    """The mechanisms of the user's successful logins, from Dovecot's log, in order."""
    pattern = re.compile(rf"Login: user=<{re.escape(user.name)}>, method=([A-Z0-9-]+)")
    return pattern.findall(dovecot.log_path.read_text(errors="replace"))
