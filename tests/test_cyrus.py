"""fastsync against a real Cyrus IMAP 3.6 (tools/cyrus.py), beside the session Dovecot:
two-way sync with the INBOX. prefix, migrate both ways with special-use folders mapped onto
existing ones, and Cyrus's in-place rewriting of 8-bit header bytes (issue 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.imapenv import folder_names, new_user
from tests.serverchecks import migrate_both_ways, two_way_sync_with_prefix
from tests.syncenv import SyncEnv
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
