"""Shared fixtures: one private Dovecot for the whole session, and a fresh user per test.

If Dovecot cannot be installed or started, the fixture fails with Dovecot's own error output
and log tail: integration tests are never skipped. Add other fixtures in their own modules.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Iterator

import pytest

from tests.oauthenv import oauth_dovecot, oauth_user, provider  # noqa: F401  (the OAuth2 fixtures)
from tests.serverfixtures import courier, courier_user, cyrus, cyrus_user  # noqa: F401  (fixtures)
from tools.dovecot import Dovecot, User, ensure_dovecot

_user_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A running private Dovecot (separator ".", TLS on) shared by every test of the session."""
    try:
        ensure_dovecot()
        server = Dovecot(tmp_path_factory.mktemp("dovecot"))
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"private Dovecot unavailable: {exc}", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def imap_user(dovecot: Dovecot) -> User:
    """A new user of the session Dovecot with a random password and an empty Maildir."""
    name = f"user{next(_user_numbers)}-{secrets.token_hex(3)}"
    return dovecot.add_user(name, secrets.token_urlsafe(16))


@pytest.fixture(scope="module")
def slash_dovecot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    """A second private Dovecot whose hierarchy separator is "/" (delimiter translation tests)."""
    from tests.imapenv import start_slash_dovecot

    server = start_slash_dovecot(tmp_path_factory.mktemp("dovecot-slash"))
    yield server
    server.stop()
