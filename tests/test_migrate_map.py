"""Pure parts of `fastsync migrate`: endpoints, password sources, folder mapping."""

from __future__ import annotations

from pathlib import Path

import pytest

from fastsync.errors import ConfigError
from fastsync.folders import map_special_use
from fastsync.migrate.map import Selection, Side, map_folders, parse_renames, translate
from fastsync.migrate.urls import parse_endpoint, read_password
from fastsync.stores.base import FolderEntry


def entries(*names: str, special: dict[str, str] | None = None) -> list[FolderEntry]:
    special = special or {}
    return [FolderEntry(name=n, special_use=special.get(n)) for n in names]


def test_endpoints_parse_user_host_port_and_tls_mode() -> None:
    e = parse_endpoint("imaps://john%40example.org@mail.example.org", "SRC")
    assert (e.user, e.host, e.port, e.tls) == ("john@example.org", "mail.example.org", 993, "ssl")
    e = parse_endpoint("imap://u@[::1]:1143", "DST")
    assert (e.host, e.port, e.tls) == ("::1", 1143, "starttls")
    assert parse_endpoint("imap://u@h", "DST", plain=True).tls == "none"


@pytest.mark.parametrize("url", ["pop3://u@h", "imap://h", "imap://u@h:99999", "imap://u@h/INBOX"])
def test_bad_endpoints_are_one_line_config_errors(url: str) -> None:
    with pytest.raises(ConfigError, match="SRC"):
        parse_endpoint(url, "SRC")


def test_a_password_in_the_url_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as e:
        parse_endpoint("imap://u:s3cret@h", "SRC")
    assert "s3cret" not in str(e.value)


def test_password_sources_file_command_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "p").write_text("from-file\nsecond line\n")
    assert read_password("SRC", file=str(tmp_path / "p"), command=None, env=None) == "from-file"
    assert read_password("SRC", file=None, command="printf 'from-cmd\\n'", env=None) == "from-cmd"
    monkeypatch.setenv("PW_TEST", "from-env")
    assert read_password("SRC", file=None, command=None, env="PW_TEST") == "from-env"
    with pytest.raises(ConfigError, match="exited 3") as e:
        read_password("DST", file=None, command="echo leaked; exit 3", env=None)
    assert "leaked" not in str(e.value)


def test_translate_swaps_separators_and_namespace_prefixes() -> None:
    courier = Side(entries=[], sep=".", prefix="INBOX.")
    slash = Side(entries=[], sep="/", prefix="")
    assert translate("INBOX.Archive.2023", courier, slash) == "Archive/2023"
    assert translate("INBOX", courier, slash) == "INBOX"
    assert translate("Archive/2023", slash, courier) == "INBOX.Archive.2023"
    assert translate("v1.2", slash, courier) == "INBOX.v1_2"  # a separator inside a name is not a level


def test_special_use_maps_by_attribute_first_then_by_well_known_name() -> None:
    src = entries("INBOX", "Sent", "Trash", "Spam", special={"Sent": "\\Sent"})
    dst = entries(
        "INBOX",
        "Sent Items",
        "Deleted Items",
        "Junk E-mail",
        "Sent Messages",
        special={"Sent Messages": "\\Sent"},
    )
    assert map_special_use(src, "/", dst, "/") == {
        "Sent": "Sent Messages",
        "Trash": "Deleted Items",
        "Spam": "Junk E-mail",
    }


def test_map_folders_applies_map_then_automap_then_translation_with_selection() -> None:
    src = Side(
        entries=entries("INBOX", "Sent", "Work.A", "Work.B", "Junk", special={"Sent": "\\Sent"}), sep="."
    )
    dst = Side(entries=entries("INBOX", "Gesendet", special={"Gesendet": "\\Sent"}), sep="/")
    got = map_folders(src, dst, Selection(exclude=("^Junk$",), renames=parse_renames(["Work.B=Projects/B"])))
    assert [(m.src, m.dst, m.dst_exists, m.how) for m in got] == [
        ("INBOX", "INBOX", True, "name"),
        ("Sent", "Gesendet", True, "special-use"),
        ("Work.A", "Work/A", False, "name"),
        ("Work.B", "Projects/B", False, "map"),
    ]
    plain = map_folders(src, dst, Selection(automap=False, folders=("Sent",)))
    assert [(m.src, m.dst) for m in plain] == [("Sent", "Sent")]


def test_two_source_folders_landing_in_one_destination_folder_is_an_error() -> None:
    src = Side(entries=entries("A", "B"), sep=".")
    dst = Side(entries=[], sep="/")
    with pytest.raises(ConfigError, match="'A' and 'B'"):
        map_folders(src, dst, Selection(renames=(("A", "X"), ("B", "X"))))
    with pytest.raises(ConfigError, match="no such"):
        map_folders(src, dst, Selection(folders=("C",)))
