"""Configuration reading (OfflineIMAP-style INI) and password sources."""

from __future__ import annotations

import logging
import os
import pickle
import textwrap
from pathlib import Path

import pytest

from fastsync import folders
from fastsync.config import ImapRepo, MaildirRepo, default_config_path, expr_globals, load_config
from fastsync.credentials import get_password
from fastsync.errors import ConfigError

# The seed article's basic example, with the [general] header and a host filled in (the
# article's copy lost both), plus its autorefresh and performance settings.
SEED = """\
[general]
accounts = MyMail
maxsyncaccounts = 5
ui = Tk.Blinkenlights, Curses.Blinkenlights,

[Account MyMail]
localrepository = MyMailLocal
remoterepository = MyMailRemote
autorefresh = 5

[Repository MyMailLocal]
type = Maildir
localfolders = ~/MyMail

[Repository MyMailRemote]
type = IMAP
remotehost = imap.example.org
remoteuser = my-username-goes-here
ssl = yes
maxconnections = 3
holdconnectionopen = true
keepalive = 60
folderfilter = lambda foldername: foldername in
      ['INBOX', 'Sent Mail',
       'Received Mail']
nametrans = lambda foldername:
   re.sub('^INBOX\\.', '', foldername)
"""


def write(tmp_path: Path, text: str, name: str = "rc", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def load_error(path: Path) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert "\n" not in msg, msg
    assert msg.startswith(f"{path}: "), msg
    return msg


def with_repo(extra: str, kind: str = "IMAP") -> str:
    """A minimal valid file whose remote repository gets ``extra`` lines."""
    return f"""\
[general]
accounts = A

[Account A]
localrepository = L
remoterepository = R

[Repository L]
type = Maildir
localfolders = /tmp/fastsync-test-mail

[Repository R]
type = {kind}
remotehost = imap.example.org
remoteuser = u
{extra}
"""


# --- what loads ----------------------------------------------------------------------------


def test_seed_config_loads_with_types_and_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, SEED))
    assert cfg.general.accounts == ("MyMail",)
    assert cfg.general.maxsyncaccounts == 5
    assert cfg.general.ui == ("Tk.Blinkenlights", "Curses.Blinkenlights")
    assert cfg.general.metadata == os.path.expanduser("~/.fastsync")
    account = cfg.accounts["MyMail"]
    assert account.autorefresh == 5.0 and account.quick == 0 and account.max_delete_percent == 50
    assert isinstance(account.local, MaildirRepo)
    assert account.local.localfolders == os.path.expanduser("~/MyMail") and account.local.sep == "."
    remote = account.remote
    assert (remote.remotehost, remote.port, remote.maxconnections, remote.keepalive) == (
        "imap.example.org",
        993,
        3,
        60,
    )
    assert remote.holdconnectionopen is True and remote.timeout == 60.0


def test_seed_multiline_expressions_work_verbatim(tmp_path: Path) -> None:
    remote = load_config(write(tmp_path, SEED)).accounts["MyMail"].remote
    assert remote.folderfilter is not None and remote.nametrans is not None
    keep = folders.compile_expr(remote.folderfilter, "x")
    trans = folders.compile_expr(remote.nametrans, "x")
    assert [n for n in ["INBOX", "Sent Mail", "Received Mail", "Spam"] if keep(n)] == [
        "INBOX",
        "Sent Mail",
        "Received Mail",
    ]
    assert trans("INBOX.Drafts") == "Drafts"


def test_config_is_frozen_and_survives_pickling(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, SEED))
    assert pickle.loads(pickle.dumps(cfg)) == cfg
    with pytest.raises(AttributeError):
        cfg.general.fsync = False  # type: ignore[misc]


def test_accounts_keep_the_order_of_general_accounts(tmp_path: Path) -> None:
    text = "[general]\naccounts = B, A\n"
    for name in "AB":
        text += (
            f"[Account {name}]\nlocalrepository = L{name}\nremoterepository = R\n"
            f"[Repository L{name}]\ntype = Maildir\nlocalfolders = /tmp/m{name}\n"
        )
    text += "[Repository R]\ntype = imap\nremotehost = h\nremoteuser = u\nssl = no\nstarttls = yes\n"
    cfg = load_config(write(tmp_path, text))
    assert list(cfg.accounts) == ["B", "A"]
    assert cfg.accounts["A"].remote == cfg.accounts["B"].remote
    assert cfg.accounts["A"].remote.port == 143


@pytest.mark.parametrize(
    "word,value",
    [
        ("Yes", True),
        ("on", True),
        ("1", True),
        ("TRUE", True),
        ("no", False),
        ("Off", False),
        ("0", False),
        ("false", False),
    ],
)
def test_booleans_accept_the_usual_words(tmp_path: Path, word: str, value: bool) -> None:
    cfg = load_config(write(tmp_path, with_repo(f"expunge = {word}")))
    assert cfg.accounts["A"].remote.expunge is value


def test_imap_to_imap_account_is_accepted(tmp_path: Path) -> None:
    text = with_repo("").replace(
        "type = Maildir\nlocalfolders = /tmp/fastsync-test-mail",
        "type = IMAP\nremotehost = localhost\nremoteuser = me\nssl = no",
    )
    cfg = load_config(write(tmp_path, text))
    assert isinstance(cfg.accounts["A"].local, ImapRepo) and cfg.accounts["A"].local.port == 143


def test_socktimeout_becomes_the_imap_timeout(tmp_path: Path) -> None:
    text = with_repo("").replace("accounts = A", "accounts = A\nsocktimeout = 30")
    assert load_config(write(tmp_path, text)).accounts["A"].remote.timeout == 30.0


def test_fingerprints_are_normalised(tmp_path: Path) -> None:
    fp = ":".join(["AB"] * 32)
    cfg = load_config(write(tmp_path, with_repo(f"cert_fingerprint = {fp}, {'c' * 128}")))
    assert cfg.accounts["A"].remote.cert_fingerprint == ("ab" * 32, "c" * 128)


def test_sslcacertfile_os_default_means_system_store(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, with_repo("sslcacertfile = OS-DEFAULT")))
    assert cfg.accounts["A"].remote.sslcacertfile is None


def test_default_section_fills_missing_options(tmp_path: Path) -> None:
    text = "[DEFAULT]\nmaxconnections = 4\n" + with_repo("")
    assert load_config(write(tmp_path, text)).accounts["A"].remote.maxconnections == 4


def test_pythonfile_feeds_eval_options_and_expressions(tmp_path: Path) -> None:
    (tmp_path / "h.py").write_text("def user(host):\n    return 'u@' + host\nKEEP = ['INBOX']\n")
    text = (
        with_repo("folderfilter = lambda f: f in KEEP")
        .replace("accounts = A", f"accounts = A\npythonfile = {tmp_path / 'h.py'}")
        .replace("remoteuser = u", "remoteusereval = user('example.org')")
    )
    cfg = load_config(write(tmp_path, text))
    assert cfg.accounts["A"].remote.remoteuser == "u@example.org"
    keep = folders.compile_expr(cfg.accounts["A"].remote.folderfilter or "", "x", expr_globals(cfg))
    assert keep("INBOX") and not keep("Spam")


def test_default_config_path_is_fastsyncrc_in_home() -> None:
    assert default_config_path() == Path.home() / ".fastsyncrc"


def test_imap_repr_hides_the_password(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, with_repo("remotepass = hunter2")))
    assert "hunter2" not in repr(cfg.accounts["A"].remote)
    assert "hunter2" not in repr(cfg)


# --- errors: one line naming file, section and option ----------------------------------------


def test_missing_file(tmp_path: Path) -> None:
    assert "no such file" in load_error(tmp_path / "absent")


def test_unreadable_path(tmp_path: Path) -> None:
    # We run as root, so permission bits cannot make a file unreadable; a directory can't be read.
    (tmp_path / "dir").mkdir()
    assert "is a directory" in load_error(tmp_path / "dir")


def test_seed_verbatim_without_general_header_names_line_1(tmp_path: Path) -> None:
    assert "line 1: option outside any section" in load_error(write(tmp_path, "accounts = MyMail\n"))


def test_ini_syntax_error_names_the_line_but_not_its_text(tmp_path: Path) -> None:
    msg = load_error(write(tmp_path, "[general]\naccounts = A\nsecretpassword\n"))
    assert "line 3" in msg and "secretpassword" not in msg


def test_duplicate_option_names_section_and_option(tmp_path: Path) -> None:
    assert "[general] accounts: set twice" in load_error(
        write(tmp_path, "[general]\naccounts = A\naccounts = B\n")
    )


def test_missing_general(tmp_path: Path) -> None:
    assert "[general]: section missing" in load_error(write(tmp_path, "[Account A]\n"))


def test_missing_accounts(tmp_path: Path) -> None:
    assert "[general] accounts: missing" in load_error(write(tmp_path, "[general]\nui = Basic\n"))


def test_account_without_section(tmp_path: Path) -> None:
    assert "[Account Nope]: section missing" in load_error(write(tmp_path, "[general]\naccounts = Nope\n"))


def test_unsafe_account_name(tmp_path: Path) -> None:
    assert "[general] accounts: '../x'" in load_error(write(tmp_path, "[general]\naccounts = ../x\n"))


def test_referenced_repository_missing(tmp_path: Path) -> None:
    text = with_repo("").replace("remoterepository = R", "remoterepository = Gone")
    assert "[Account A] remoterepository: no section [Repository Gone]" in load_error(write(tmp_path, text))


def test_remote_must_be_imap(tmp_path: Path) -> None:
    text = (
        with_repo("")
        .replace("remoterepository = R", "remoterepository = L")
        .replace("localrepository = L", "localrepository = R")
    )
    assert "[Account A] remoterepository: [Repository L] is a Maildir" in load_error(write(tmp_path, text))


def test_same_repository_on_both_sides(tmp_path: Path) -> None:
    text = with_repo("").replace("localrepository = L", "localrepository = R")
    assert "[Account A] remoterepository: same repository" in load_error(write(tmp_path, text))


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ("maxconnections = many", "[Repository R] maxconnections: 'many' is not a whole number"),
        ("maxconnections = 0", "[Repository R] maxconnections: 0 is out of range"),
        ("remoteport = 70000", "[Repository R] remoteport: 70000 is out of range"),
        ("ssl = maybe", "[Repository R] ssl: 'maybe' is not a boolean"),
        ("cert_fingerprint = " + "a" * 40, "[Repository R] cert_fingerprint: "),
        ("cert_fingerprint = xyz", "[Repository R] cert_fingerprint: 'xyz' is not hexadecimal"),
        (
            "sslcacertfile = /nonexistent/ca.pem",
            "[Repository R] sslcacertfile: '/nonexistent/ca.pem' does not",
        ),
        ("nametrans = lambda f: re.sub('(', '', f", "[Repository R] nametrans: Python syntax error"),
        ("folderfilter = ['INBOX']", "[Repository R] folderfilter: the expression gives a list"),
        ("folderfilter = undefined_helper", "[Repository R] folderfilter: evaluating the expression failed"),
        ("remotepasseval = get(", "[Repository R] remotepasseval: Python syntax error"),
        ("reference = Mail", "[Repository R] reference: not supported yet"),
        ("remotehosteval = 'x'", "[Repository R] remotehosteval: set together with remotehost"),
    ],
)
def test_bad_repository_values(tmp_path: Path, extra: str, expected: str) -> None:
    assert expected in load_error(write(tmp_path, with_repo(extra)))


def test_sha1_fingerprint_is_refused_with_expected_lengths(tmp_path: Path) -> None:
    msg = load_error(write(tmp_path, with_repo("cert_fingerprint = " + "a" * 40)))
    assert "40 hex digits (expected 64 for SHA-256 or 128 for SHA-512" in msg


def test_bad_float_in_account(tmp_path: Path) -> None:
    text = with_repo("").replace("remoterepository = R", "remoterepository = R\nautorefresh = soon")
    assert "[Account A] autorefresh: 'soon' is not a number" in load_error(write(tmp_path, text))


def test_max_delete_percent_range(tmp_path: Path) -> None:
    text = with_repo("").replace("remoterepository = R", "remoterepository = R\nmax_delete_percent = 101")
    assert "[Account A] max_delete_percent: 101 is out of range (expected a whole number from 0 to 100)" in (
        load_error(write(tmp_path, text))
    )


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("Gmail", "[Repository R] type: 'Gmail' is not supported yet"),
        ("GmailMaildir", "[Repository R] type: 'GmailMaildir' is not supported yet"),
        ("mbox", "[Repository R] type: unknown type 'mbox'"),
    ],
)
def test_repository_types(tmp_path: Path, kind: str, expected: str) -> None:
    assert expected in load_error(write(tmp_path, with_repo("", kind=kind)))


def test_missing_type_and_required_options(tmp_path: Path) -> None:
    assert "[Repository R] type: missing" in load_error(
        write(tmp_path, with_repo("").replace("type = IMAP\n", ""))
    )
    no_host = with_repo("").replace("remotehost = imap.example.org\n", "")
    assert "[Repository R] remotehost: missing" in load_error(write(tmp_path, no_host))
    no_dir = with_repo("").replace("localfolders = /tmp/fastsync-test-mail\n", "")
    assert "[Repository L] localfolders: missing" in load_error(write(tmp_path, no_dir))


def test_missing_pythonfile(tmp_path: Path) -> None:
    text = with_repo("").replace("accounts = A", "accounts = A\npythonfile = /nonexistent/x.py")
    assert "[general] pythonfile: '/nonexistent/x.py' does not exist" in load_error(write(tmp_path, text))


def test_invalid_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "rc"
    path.write_bytes(b"[general]\naccounts = \xff\n")
    assert "line 2: not valid UTF-8" in load_error(path)


# --- warnings ------------------------------------------------------------------------------


def test_unknown_option_warns_once_even_if_repository_is_shared(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = with_repo("frobnicate = 1").replace("accounts = A", "accounts = A, B") + (
        "[Account B]\nlocalrepository = L2\nremoterepository = R\n"
        "[Repository L2]\ntype = Maildir\nlocalfolders = /tmp/other\n"
    )
    with caplog.at_level(logging.WARNING, logger="fastsync.config"):
        load_config(write(tmp_path, text))
    hits = [r.getMessage() for r in caplog.records if "frobnicate" in r.getMessage()]
    assert hits == [f"{tmp_path / 'rc'}: [Repository R] frobnicate: unknown option, ignored"]


def test_a_misspelt_option_is_named_with_the_one_meant(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    text = with_repo("maxconnection = 2").replace(
        "remoterepository = R\n", "remoterepository = R\nmaxdelete_percent = 10\n"
    )
    with caplog.at_level(logging.WARNING, logger="fastsync.config"):
        load_config(write(tmp_path, text))
    rc = tmp_path / "rc"
    said = [r.getMessage() for r in caplog.records]
    unknown = "unknown option, ignored"
    assert f"{rc}: [Account A] maxdelete_percent: {unknown} (did you mean max_delete_percent?)" in said
    assert f"{rc}: [Repository R] maxconnection: {unknown} (did you mean maxconnections?)" in said


def test_offlineimap_options_we_ignore_just_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = with_repo("ssl_version = tls1_2\nusecompression = yes\nsubscribedonly = no\nfoldersort = x") + (
        "[mbnames]\nenabled = no\n"
    )
    text = text.replace("remoterepository = R", "remoterepository = R\nutf8foldernames = yes")
    with caplog.at_level(logging.WARNING, logger="fastsync.config"):
        load_config(write(tmp_path, text))
    messages = " | ".join(r.getMessage() for r in caplog.records)
    for option in ("ssl_version", "usecompression", "subscribedonly", "foldersort", "utf8foldernames"):
        assert f"{option}: ignored" in messages
    assert "[mbnames]: ignored" in messages


def test_world_readable_file_with_password_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path, with_repo("remotepass = hunter2"), mode=0o644)
    with caplog.at_level(logging.WARNING, logger="fastsync.config"):
        load_config(path)
    messages = [r.getMessage() for r in caplog.records]
    assert any(str(path) in m and "readable by other users" in m for m in messages)
    assert not any("hunter2" in m for m in messages)


def test_private_file_with_password_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fastsync.config"):
        load_config(write(tmp_path, with_repo("remotepass = hunter2"), mode=0o600))
    assert not any("readable" in r.getMessage() for r in caplog.records)


def test_percent_escapes_from_offlineimap_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="fastsync.config"):
        cfg = load_config(write(tmp_path, with_repo("remotepass = p%%ss")))
    assert cfg.accounts["A"].remote.remotepass == "p%%ss"  # no interpolation
    assert any("remotepass: contains '%%'" in r.getMessage() for r in caplog.records)
    assert not any("p%%ss" in r.getMessage() for r in caplog.records)


# --- passwords -----------------------------------------------------------------------------


def repo(**kw: str) -> ImapRepo:
    return ImapRepo(name="R", remotehost="imap.example.org", remoteuser="alice", **kw)  # type: ignore[arg-type]


def no_prompt(text: str) -> str:
    raise AssertionError("must not prompt")


def test_remotepass_comes_first(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("from-file\n")
    r = repo(remotepass="inline", remotepassfile=str(tmp_path / "pw"), remotepasseval="'evaluated'")
    assert get_password(r, {}, no_prompt) == "inline"


def test_password_file_first_line_without_newline(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret\r\nsecond line\n")
    r = repo(remotepassfile=str(tmp_path / "pw"), remotepasseval="'evaluated'")
    assert get_password(r, {}, no_prompt) == "s3cret"


def test_missing_password_file_names_the_file(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope")
    with pytest.raises(ConfigError) as e:
        get_password(repo(remotepassfile=missing), {}, no_prompt)
    assert missing in str(e.value) and "[Repository R] remotepassfile" in str(e.value)


def test_password_file_errors_never_show_the_password(tmp_path: Path) -> None:
    pw = tmp_path / "pw"
    pw.write_bytes(b"hunter2\xff\n")
    with pytest.raises(ConfigError) as e:
        get_password(repo(remotepassfile=str(pw)), {}, no_prompt)
    assert "hunter2" not in str(e.value) and "UTF-8" in str(e.value)
    assert e.value.__cause__ is None and e.value.__suppress_context__


def test_remotepasseval_uses_pythonfile_globals() -> None:
    r = repo(remotepasseval="lookup('imap.example.org')")
    assert get_password(r, {"lookup": lambda host: "pw-for-" + host}, no_prompt) == "pw-for-imap.example.org"


def test_remotepasseval_must_give_text_and_not_show_it() -> None:
    with pytest.raises(ConfigError) as e:
        get_password(repo(remotepasseval="b'hunter2'"), {}, no_prompt)
    assert "gives a bytes (expected a str)" in str(e.value) and "hunter2" not in str(e.value)


def test_prompt_names_repository_and_user() -> None:
    asked: list[str] = []

    def prompt(text: str) -> str:
        asked.append(text)
        return "typed"

    assert get_password(repo(), {}, prompt) == "typed"
    assert "alice" in asked[0] and "[Repository R]" in asked[0]


def test_no_source_and_no_terminal_is_a_config_error() -> None:
    with pytest.raises(
        ConfigError, match=r"no password configured for \[Repository R\] and no terminal to ask"
    ):
        get_password(repo(), {}, None)
