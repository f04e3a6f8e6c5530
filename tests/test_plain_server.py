"""A server that offers none of UIDPLUS, LITERAL+, MULTIAPPEND, CONDSTORE (nor LIST-STATUS):
Dovecot with ``imap_capability`` cut down to IMAP4rev1. fastsync must fall back (one APPEND
per message with synchronising literals, UIDs found by search, EXPUNGE, full flag listings)
and still sync both ways to the same result."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from fastsync.stores.imap import ImapStore
from tests.faultkit import imap_repo
from tests.syncenv import SyncEnv, contents
from tools.corpus import CorpusSpec, generate
from tools.dovecot import Dovecot

pytestmark = pytest.mark.dovecot

MISSING = (b"UIDPLUS", b"LITERAL+", b"MULTIAPPEND", b"CONDSTORE", b"LIST-STATUS", b"QRESYNC")
NOTHING = "copied 0 far->near and 0 near->far, flags changed 0, deleted 0"


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dovecot]:
    server = Dovecot(tmp_path_factory.mktemp("plain"), extra_config="imap_capability = IMAP4rev1 IDLE\n")
    try:
        server.start()
    except RuntimeError as exc:
        pytest.fail(f"plain Dovecot unavailable: {exc}", pytrace=False)
    yield server
    server.stop()


def test_sync_both_ways_without_uidplus_literal_plus_multiappend_or_condstore(plain, tmp_path):
    user = plain.add_user(f"plain-{secrets.token_hex(3)}", secrets.token_urlsafe(12))
    store = ImapStore(imap_repo(plain, user), user.password)
    store.connect()
    try:
        caps = {c.upper() for c in store.client.capabilities()}
        offered = [cap for cap in MISSING if cap in caps]
    finally:
        store.close()
    assert offered == [], f"the server still offers {offered}"

    generate(user.maildir, CorpusSpec(folders=["INBOX", "Work"], messages=30, seed=31, size_mix="small"))
    env = SyncEnv(plain, user, tmp_path)
    up = env.maildir / "Outbox"
    for sub in ("cur", "new", "tmp"):
        (up / sub).mkdir(parents=True)
    for i in range(12):
        (up / "new" / f"{1600000000 + i}.p{i}.host").write_bytes(
            f"From: near\nMessage-ID: <p{i}@near>\nSubject: up {i}\n\n{'p' * 300}\n".encode()
        )
    trace = tmp_path / "trace.log"
    env.write_config()
    env.run("-d", "imap", "-l", str(trace))
    sent = trace.read_text(errors="replace")
    assert "APPEND" in sent, "no APPEND in the protocol trace: the trace does not show commands"
    assert "+}" not in sent, "a LITERAL+ literal was sent to a server without LITERAL+"
    assert "UID EXPUNGE" not in sent and "CHANGEDSINCE" not in sent

    # changes on both sides: a flag and a deletion each way, then a new message each way
    c = user.connect()
    c.select_folder("INBOX")
    uids = sorted(c.search("ALL"))
    c.add_flags([uids[0]], [b"\\Flagged"])
    c.delete_messages([uids[1]])
    c.expunge()
    c.append("INBOX", b"Message-ID: <late@far>\r\nSubject: late\r\n\r\nlate\r\n")
    c.logout()
    outbox = sorted(p for sub in ("new", "cur") for p in (env.maildir / "Outbox" / sub).iterdir())
    outbox[0].unlink()
    outbox[1].rename(env.maildir / "Outbox" / "cur" / (outbox[1].name.split(":2,")[0] + ":2,S"))
    env.run("-d", "imap", "-l", str(trace))
    assert "UID EXPUNGE" not in trace.read_text(errors="replace")
    for folder in ("INBOX", "Work", "Outbox"):
        far, near = contents(env.server_folder(folder)), contents(env.local_folder(folder))
        assert far == near, f"{folder!r} differs"
        assert len(far) == len(set(far))
    assert len(env.server_folder("Outbox")) == 11
    assert any(b"<late@far>" in b for _f, b in env.local_folder("INBOX").values())
    assert NOTHING in env.run().stdout
