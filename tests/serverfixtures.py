"""Session fixtures for the other servers: a private Cyrus (and Courier), each run from its
unpacked Debian packages beside the session Dovecot. A server that cannot start fails the
tests that need it, with its own log tail: never skipped."""

from __future__ import annotations

import itertools
import secrets
import shutil
from collections.abc import Iterator

import pytest

from tools.courier import Courier, CourierUser, ensure_courier
from tools.cyrus import Cyrus, CyrusUser, ensure_cyrus
from tools.mailserver import make_base_dir

_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def cyrus() -> Iterator[Cyrus]:
    """A running private Cyrus (INBOX.x folders, separator ".") shared by the session."""
    base = make_base_dir("fastsync-cyrus-")
    server = Cyrus(base)
    try:
        ensure_cyrus()
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"private Cyrus unavailable: {exc}", pytrace=False)
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def cyrus_user(cyrus: Cyrus) -> CyrusUser:
    """A new Cyrus user with an empty INBOX."""
    return cyrus.add_user(f"cy{next(_numbers)}{secrets.token_hex(3)}", secrets.token_urlsafe(12))


@pytest.fixture(scope="session")
def courier() -> Iterator[Courier]:
    """A running private Courier-IMAP (INBOX.x folders, separator ".") shared by the session."""
    base = make_base_dir("fastsync-courier-")
    server = Courier(base)
    try:
        ensure_courier()
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"private Courier unavailable: {exc}", pytrace=False)
    yield server
    server.stop()
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def courier_user(courier: Courier) -> CourierUser:
    """A new Courier user with an empty Maildir."""
    return courier.add_user(f"co{next(_numbers)}{secrets.token_hex(3)}", secrets.token_urlsafe(12))
