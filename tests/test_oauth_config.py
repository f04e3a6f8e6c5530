"""OAuth2 configuration: offlineimap3's option names, their ``_eval`` forms, the mechanism
list, contradictions refused as one line, secrets hidden, and who needs a password. Pure."""

from __future__ import annotations

import pickle
import textwrap
from pathlib import Path

import pytest

from fastsync.config import load_config
from fastsync.credentials import password_needed
from fastsync.errors import ConfigError
from fastsync.stores.imap_auth import choose_mechanism

BASE = """\
[general]
accounts = A
metadata = {tmp}/meta

[Account A]
localrepository = L
remoterepository = R

[Repository L]
type = Maildir
localfolders = {tmp}/Mail

[Repository R]
type = IMAP
remotehost = imap.example.org
remoteuser = someone@example.org
"""


def _load(tmp: Path, extra: str):
    path = tmp / "rc"
    path.write_text(BASE.format(tmp=tmp) + textwrap.dedent(extra))
    path.chmod(0o600)
    return load_config(path).accounts["A"].remote


def test_offlineimap3_oauth2_options_and_their_eval_forms_are_read(tmp_path):
    repo = _load(tmp_path, """\
        auth_mechanisms = xoauth2, PLAIN
        oauth2_request_url = https://oauth2.example.org/token
        oauth2_client_id_eval = "id-" + "42"
        oauth2_client_secret = s3cret-value
        oauth2_refresh_token_eval = "rt-" + "secret-refresh"
        """)
    assert repo.auth_mechanisms == ("XOAUTH2", "PLAIN")
    assert repo.oauth2 is not None
    assert repo.oauth2.client_id == "id-42" and repo.oauth2.refresh_token == "rt-secret-refresh"
    assert repo.oauth2.client_secret == "s3cret-value" and repo.oauth2.can_refresh
    shown = repr(repo)
    assert "s3cret-value" not in shown and "rt-secret-refresh" not in shown and "id-42" in shown
    assert pickle.loads(pickle.dumps(repo)) == repo  # travels to worker processes
    assert not password_needed(repo)  # OAuth2 and no password source: nobody is asked


def test_a_password_given_besides_oauth2_is_still_read(tmp_path):
    repo = _load(tmp_path, "oauth2_access_token = at-x\nremotepass = pw\n")
    assert password_needed(repo)
    assert password_needed(_load(tmp_path, "remotepass = pw\n"))


@pytest.mark.parametrize(
    "extra,option,words",
    [
        ("auth_mechanisms = GSSAPI, XOAUTH2\noauth2_access_token = t\n", "auth_mechanisms",
         "GSSAPI is not supported"),
        ("auth_mechanisms = XOAUTH3\n", "auth_mechanisms", "not a known mechanism"),
        ("auth_mechanisms = XOAUTH2\n", "auth_mechanisms", "without OAuth2 credentials"),
        ("oauth2_refresh_token = rt-zzz\n", "oauth2_refresh_token", "without oauth2_request_url"),
        ("oauth2_request_url = https://x/token\n", "oauth2_request_url", "without oauth2_refresh_token"),
        ("oauth2_access_token = at\noauth2_access_token_eval = 'at2'\n", "oauth2_access_token_eval",
         "set together"),
        ("oauth2_access_token_eval = 42\n", "oauth2_access_token_eval", "gives a int"),
    ],
)
def test_a_wrong_oauth2_setting_is_one_line_naming_the_option(tmp_path, extra, option, words):
    with pytest.raises(ConfigError) as e:
        _load(tmp_path, extra)
    text = str(e.value)
    assert "\n" not in text and "[Repository R]" in text and option in text and words in text, text
    assert "rt-zzz" not in text


def test_the_mechanism_is_the_first_of_the_order_the_server_offers_and_there_are_credentials_for():
    caps = frozenset({b"AUTH=PLAIN", b"AUTH=OAUTHBEARER", b"SASL-IR"})
    order = ("XOAUTH2", "OAUTHBEARER", "LOGIN", "PLAIN")
    assert choose_mechanism(caps, order, password=True, oauth=True) == "OAUTHBEARER"  # no AUTH=XOAUTH2
    assert choose_mechanism(caps, order, password=True, oauth=False) == "LOGIN"
    assert choose_mechanism(caps | {b"LOGINDISABLED"}, order, password=True, oauth=False) == "PLAIN"
    assert choose_mechanism(caps, ("XOAUTH2",), password=True, oauth=True) is None
    assert choose_mechanism(caps, ("PLAIN", "OAUTHBEARER"), password=False, oauth=True) == "OAUTHBEARER"
