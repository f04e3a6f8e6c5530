"""Scenarios every server of the suite must pass, written once for any private server whose
folders are ``INBOX.x`` with separator ``.`` (Cyrus, Courier): two-way sync with a Maildir
through OfflineIMAP-style nametrans, and `fastsync migrate` to and from the session Dovecot."""

from __future__ import annotations

from pathlib import Path

from tests.imapenv import append, contents, folder_messages, folder_names, message
from tests.syncenv import SyncEnv
from tests.syncenv import contents as sync_contents
from tests.test_migrate import Mig, total_line
from tools.mailserver import MailUser

# The usual OfflineIMAP recipe for INBOX.-prefixed servers: local names without the prefix.
STRIP_PREFIX = "lambda f: re.sub(r'^INBOX\\.', '', f)"
ADD_PREFIX = "lambda f: f if f == 'INBOX' else 'INBOX.' + f"
QUIET_RUN = "copied 0 far->near and 0 near->far, flags changed 0, deleted 0, errors 0"


def _delete_and_flag(user: MailUser, folder: str) -> None:
    """On the server: expunge the first message of ``folder``, flag the second one."""
    c = user.connect()
    try:
        c.select_folder(folder)
        uids = sorted(c.search("ALL"))
        c.add_flags([uids[1]], [b"\\Flagged"])
        c.delete_messages([uids[0]])
        c.expunge()
    finally:
        c.logout()


def _sides_equal(env: SyncEnv, pairs: dict[str, str]) -> None:
    for far, near in pairs.items():
        assert sync_contents(env.server_folder(far)) == sync_contents(env.local_folder(near)), far


def two_way_sync_with_prefix(env: SyncEnv) -> None:
    """Mirror INBOX, INBOX.Work and INBOX.Work.2024 into a Maildir named without the prefix;
    changes on both sides converge (new messages, a new local folder, flags, a deletion); a
    third run changes nothing."""
    env.remote_opts["nametrans"] = STRIP_PREFIX
    env.local_opts["nametrans"] = ADD_PREFIX
    for i in range(4):
        append(env.user, "INBOX", message(i, tag="in"))
    for i in range(3):
        append(env.user, "INBOX.Work", message(i, tag="work"), flags=(b"\\Seen",))
    append(env.user, "INBOX.Work.2024", message(1, tag="deep"), flags=(b"\\Answered",))
    env.write_config()
    assert "copied 8 far->near" in env.run().stdout
    pairs = {"INBOX": "INBOX", "INBOX.Work": "Work", "INBOX.Work.2024": "Work.2024"}
    _sides_equal(env, pairs)

    (env.maildir / "Work" / "new" / "1700000000.local.host").write_bytes(
        b"From: me@example.org\nSubject: local\nMessage-ID: <local1@example.org>\n\nhi\n"
    )
    notes = env.maildir / "Notes"
    for sub in ("cur", "new", "tmp"):
        (notes / sub).mkdir(parents=True)
    (notes / "cur" / "1700000001.local.host:2,S").write_bytes(
        b"From: me@example.org\nSubject: note\nMessage-ID: <note1@example.org>\n\nremember\n"
    )
    cur = sorted((env.maildir / "INBOX" / "cur").iterdir())
    cur[-1].rename(cur[-1].with_name(cur[-1].name.split(":2,")[0] + ":2,S"))
    _delete_and_flag(env.user, "INBOX.Work")
    out = env.run().stdout
    assert "copied 0 far->near and 2 near->far" in out and "deleted 1" in out, out
    assert "INBOX.Notes" in env.server_folders()
    _sides_equal(env, {**pairs, "INBOX.Notes": "Notes"})
    assert len(env.server_folder("INBOX.Work")) == 3 and len(env.local_folder("Work")) == 3
    assert QUIET_RUN in env.run().stdout


def fill_dovecot_source(user: MailUser) -> dict[str, int]:
    """A small source mailbox on the Dovecot (separator "."): folder -> messages."""
    for i in range(5):
        append(user, "INBOX", message(i, tag="mi"))
    for i in range(3):
        append(user, "Archive.2023", message(i, tag="ma"), flags=(b"\\Seen", b"$Work"))
    for i in range(2):
        append(user, "Sent", message(i, tag="ms"), flags=(b"\\Seen",))
    return {"INBOX": 5, "Archive.2023": 3, "Sent": 2}


def migrate_both_ways(dovecot_src: MailUser, other: MailUser, dovecot_back: MailUser, tmp: Path,
                      sent_on_other: str) -> None:
    """Dovecot -> other: names get the ``INBOX.`` prefix, \\Sent lands in the other server's
    existing \\Sent folder ``sent_on_other``, bytes, flags, keywords and dates are kept, verify
    is clean, a re-run copies nothing. Then other -> a fresh Dovecot user: the same, back."""
    fill_dovecot_source(dovecot_src)
    for sub in ("there", "back"):
        (tmp / sub).mkdir()
    there = Mig(dovecot_src, other, tmp / "there")
    out = there.run("--verify").stdout
    assert total_line(out)[:5] == [10, 10, 0, 0, 0], out
    assert "verify: clean" in out
    expected = {"INBOX": "INBOX", "Archive.2023": "INBOX.Archive.2023", "Sent": sent_on_other}
    assert set(expected.values()) <= set(folder_names(other)), folder_names(other)
    assert "INBOX.Sent" not in folder_names(other) or sent_on_other == "INBOX.Sent"
    for src, dst in expected.items():
        a, b = folder_messages(dovecot_src, src), folder_messages(other, dst)
        assert contents(a) == contents(b), (src, dst)
        assert sorted(d for *_, d in a.values()) == sorted(d for *_, d in b.values()), (src, dst)
    assert total_line(there.run().stdout)[:3] == [10, 0, 10]

    c = dovecot_back.connect()
    c.create_folder("Sent")  # exists, marked \Sent: the other server's \Sent folder lands there
    c.logout()
    back = Mig(other, dovecot_back, tmp / "back")
    out = back.run("--verify").stdout
    assert total_line(out)[:5] == [10, 10, 0, 0, 0] and "verify: clean" in out, out
    returned = {"INBOX": "INBOX", "INBOX.Archive.2023": "Archive.2023", sent_on_other: "Sent"}
    for src, dst in returned.items():
        assert contents(folder_messages(other, src)) == contents(folder_messages(dovecot_back, dst)), src
    assert total_line(back.run().stdout)[:3] == [10, 0, 10]
