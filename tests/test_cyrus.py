"""fastsync against a real Cyrus IMAP 3.6 (tools/cyrus.py), beside the session Dovecot:
two-way sync with the INBOX. prefix, migrate both ways with special-use folders mapped onto
existing ones, and Cyrus's in-place rewriting of 8-bit header bytes (issue 11)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.imapenv import append, folder_messages, folder_names, message, new_user
from tests.serverchecks import migrate_both_ways, two_way_sync_with_prefix
from tests.syncenv import SyncEnv
from tests.test_migrate import Mig, total_line
from tools.cyrus import Cyrus, CyrusUser
from tools.dovecot import Dovecot

pytestmark = [pytest.mark.cyrus, pytest.mark.dovecot]


def test_cyrus_two_way_sync_with_inbox_prefix_and_dot_separator_converges(
    cyrus: Cyrus, cyrus_user: CyrusUser, tmp_path: Path
) -> None:
    two_way_sync_with_prefix(SyncEnv(cyrus, cyrus_user, tmp_path))


def test_migrate_dovecot_to_cyrus_and_back_maps_names_and_special_use_onto_existing_folders(
    dovecot: Dovecot, cyrus_user: CyrusUser, tmp_path: Path
) -> None:
    cyrus_user.create_special("INBOX.Sent Items", "\\Sent")
    migrate_both_ways(new_user(dovecot, "src"), cyrus_user, new_user(dovecot, "back"), tmp_path,
                      sent_on_other="INBOX.Sent Items")
    assert "INBOX.Sent" not in folder_names(cyrus_user)


def eight_bit(n: int) -> bytes:
    """A message with raw UTF-8 in its headers (as many mailers send), CRLF."""
    return (
        f"From: Jörg Müller <j{n}@example.org>\r\nSubject: Grüße {n} – café\r\n"
        f"Message-ID: <eight{n}@example.org>\r\n\r\nBody {n}, plain ASCII.\r\n"
    ).encode()


def test_cyrus_rewriting_8bit_headers_is_reported_verified_by_body_and_never_duplicated_back(
    dovecot: Dovecot, cyrus_user: CyrusUser, tmp_path: Path
) -> None:
    """The issue's scenario, small: Dovecot -> Cyrus alters the 8-bit messages in place (same
    size); each is reported and counted, --verify=body sees them (ids mode cannot), and
    migrating back, or again without state, copies nothing twice."""
    src = new_user(dovecot, "eight")
    for i in range(12):
        append(src, "INBOX", eight_bit(i))
    for i in range(6):
        append(src, "INBOX", message(i, tag="ascii"))
    for sub in ("there", "back", "again"):
        (tmp_path / sub).mkdir()
    there = Mig(src, cyrus_user, tmp_path / "there")
    report = tmp_path / "there.json"
    proc = there.run("--verify", "--report", str(report), expect=1)
    assert total_line(proc.stdout)[:5] == [18, 18, 0, 0, 0]
    assert "verify: clean (by Message-ID and size)" in proc.stdout  # blind to same-size rewrites
    altered = [ln for ln in proc.stderr.splitlines() if "altered by the destination server" in ln]
    assert len(altered) == 12, proc.stderr
    assert sorted(ln.split("Message-ID ")[1].split(":")[0] for ln in altered) == sorted(
        f"<eight{i}@example.org>" for i in range(12)
    )
    assert all("'INBOX' -> 'INBOX'" in ln and "header bytes differ (same size" in ln for ln in altered)
    assert all("UID " in ln and "stored as UID " in ln for ln in altered)
    assert "12 copied messages were altered by the destination server" in proc.stdout
    data = json.loads(report.read_text())
    assert data["total"]["altered"] == 12 and data["folders"][0]["altered"] == 12
    stored = folder_messages(cyrus_user, "INBOX")
    assert sum(b"Gr\xc3\xbc" in body for _f, body, _d in stored.values()) == 0  # Cyrus did rewrite

    body = there.run("--verify=body", expect=1)
    assert total_line(body.stdout)[:3] == [18, 0, 18]
    assert "verify: DIFFERENCES (by message bytes)" in body.stdout
    assert body.stdout.count("missing on dst: sha256:") == 12

    back = Mig(cyrus_user, src, tmp_path / "back").run()  # no state for this direction
    assert total_line(back.stdout)[:3] == [18, 0, 18], back.stdout
    assert len(folder_messages(src, "INBOX")) == 18
    again = Mig(src, cyrus_user, tmp_path / "again").run()  # state lost: content pairing only
    assert total_line(again.stdout)[:3] == [18, 0, 18], again.stdout
    assert len(folder_messages(cyrus_user, "INBOX")) == 18


def test_a_message_cyrus_keeps_unchanged_is_not_reported(
    dovecot: Dovecot, cyrus_user: CyrusUser, tmp_path: Path
) -> None:
    src = new_user(dovecot, "plain")
    for i in range(5):
        append(src, "INBOX", message(i, tag="plain"))
    proc = Mig(src, cyrus_user, tmp_path).run("--verify=body")
    assert "altered" not in proc.stderr + proc.stdout
    assert "verify: clean (by message bytes)" in proc.stdout


def test_two_way_sync_reports_what_cyrus_altered_and_lost_state_pairs_it_instead_of_copying(
    cyrus: Cyrus, cyrus_user: CyrusUser, tmp_path: Path
) -> None:
    env = SyncEnv(cyrus, cyrus_user, tmp_path)
    append(cyrus_user, "INBOX", message(1, tag="far"))
    env.write_config()
    env.run()
    new = env.maildir / "INBOX" / "new"
    for i in range(3):
        (new / f"170000000{i}.local.host").write_bytes(eight_bit(i).replace(b"\r\n", b"\n"))
    proc = env.run()
    assert "copied 0 far->near and 3 near->far" in proc.stdout
    altered = [ln for ln in proc.stdout.splitlines() + proc.stderr.splitlines() if "altered by" in ln]
    assert len(altered) == 3 and all("header bytes differ" in ln for ln in altered), proc.stdout + proc.stderr
    shutil.rmtree(env.metadata)  # state lost: the rewritten copies must pair by the second key
    again = env.run()
    assert "copied 0 far->near and 0 near->far" in again.stdout, again.stdout
    assert len(env.server_folder("INBOX")) == 4 and len(env.local_folder("INBOX")) == 4
