"""fastsync against a real Courier-IMAP 5.0 (tools/courier.py), beside the session Dovecot:
two-way sync with the INBOX. prefix, migrate both ways, and the \\Sent folder mapped by its
well-known name onto the one that exists (Courier has no SPECIAL-USE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.imapenv import append, folder_messages, folder_names, new_user
from tests.serverchecks import migrate_both_ways, two_way_sync_with_prefix
from tests.syncenv import SyncEnv
from tests.test_migrate import Mig, total_line
from tools.courier import Courier, CourierUser
from tools.dovecot import Dovecot

pytestmark = [pytest.mark.courier, pytest.mark.dovecot]


def test_courier_two_way_sync_with_inbox_prefix_and_dot_separator_converges(
    courier: Courier, courier_user: CourierUser, tmp_path: Path
) -> None:
    two_way_sync_with_prefix(SyncEnv(courier, courier_user, tmp_path))
    # Courier keeps folders as .Name Maildirs under the user's Maildir: what fastsync created
    assert (courier_user.maildir / ".Notes" / "cur").is_dir()


def test_migrate_dovecot_to_courier_and_back_maps_names_and_sent_onto_the_existing_folder(
    dovecot: Dovecot, courier_user: CourierUser, tmp_path: Path
) -> None:
    c = courier_user.connect()
    c.create_folder("INBOX.Sent Items")  # no SPECIAL-USE on Courier: found by its well-known name
    c.logout()
    migrate_both_ways(new_user(dovecot, "src"), courier_user, new_user(dovecot, "back"), tmp_path,
                      sent_on_other="INBOX.Sent Items")
    assert "INBOX.Sent" not in folder_names(courier_user)


def test_courier_keeps_8bit_headers_byte_exact_so_nothing_is_reported_altered(
    dovecot: Dovecot, courier_user: CourierUser, tmp_path: Path
) -> None:
    src = new_user(dovecot, "eight")
    data = "From: Jörg <j@example.org>\r\nSubject: Grüße\r\nMessage-ID: <c8@example.org>\r\n\r\nx\r\n"
    data_bytes = data.encode()
    append(src, "INBOX", data_bytes)
    proc = Mig(src, courier_user, tmp_path).run("--verify=body")
    assert total_line(proc.stdout)[:2] == [1, 1] and "altered" not in proc.stderr
    assert "verify: clean (by message bytes)" in proc.stdout
    assert [body for _f, body, _d in folder_messages(courier_user, "INBOX").values()] == [data_bytes]
