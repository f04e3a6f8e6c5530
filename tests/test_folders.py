"""Folder names: expressions, far<->near mapping, Maildir path confinement."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastsync.errors import ConfigError, FolderError
from fastsync.folders import (
    FolderPair,
    compile_expr,
    folder_name_from_path,
    imap_decode,
    imap_encode,
    load_pythonfile,
    maildir_path,
    map_folders,
)
from fastsync.stores.base import FolderEntry

WHERE = "~/.fastsyncrc: [Repository R]"

# The seed article's examples, as INI values reach us from configparser (continuation lines
# joined with "\n", their indentation stripped). The article's copy lost a few characters;
# the third list item and `re.search(` are restored from the article's original.
SEED_INCLUDE = "lambda foldername: foldername in\n['INBOX', 'Sent Mail',\n'Received Mail']"
SEED_EXCLUDE = "lambda foldername: foldername not in\n['Spam', 'Junk']"
SEED_REGEX = "lambda foldername:\nnot re.search('(^Trash$|Del)', foldername)"
SEED_NAMETRANS = "lambda foldername:\nre.sub('^INBOX\\.', '', foldername)"


# --- expressions -------------------------------------------------------------------------


def test_seed_folderfilter_include_list_spans_lines() -> None:
    keep = compile_expr(SEED_INCLUDE, WHERE + " folderfilter")
    assert [n for n in ["INBOX", "Sent Mail", "Received Mail", "Spam"] if keep(n)] == [
        "INBOX",
        "Sent Mail",
        "Received Mail",
    ]


def test_seed_folderfilter_exclude_list() -> None:
    keep = compile_expr(SEED_EXCLUDE, WHERE + " folderfilter")
    assert [n for n in ["INBOX", "Spam", "Junk", "Work"] if keep(n)] == ["INBOX", "Work"]


def test_seed_folderfilter_regex_sees_re_module() -> None:
    keep = compile_expr(SEED_REGEX, WHERE + " folderfilter")
    assert [n for n in ["Trash", "OldTrash", "Deleted", "INBOX"] if keep(n)] == ["OldTrash", "INBOX"]


def test_seed_nametrans_strips_courier_prefix() -> None:
    trans = compile_expr(SEED_NAMETRANS, WHERE + " nametrans")
    assert trans("INBOX.Sent") == "Sent"
    assert trans("INBOX") == "INBOX"


def test_expression_syntax_error_names_where() -> None:
    with pytest.raises(ConfigError) as e:
        compile_expr("lambda f: f in [", WHERE + " nametrans")
    msg = str(e.value)
    assert msg.startswith("~/.fastsyncrc: [Repository R] nametrans: ") and "syntax" in msg
    assert "\n" not in msg


def test_expression_that_is_not_callable_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"\[Repository R\] folderfilter: .*not a function"):
        compile_expr("['INBOX']", WHERE + " folderfilter")


def test_expression_raising_later_is_a_folder_error_naming_folder_and_option() -> None:
    trans = compile_expr("lambda f: f[10]", WHERE + " nametrans")
    with pytest.raises(FolderError) as e:
        trans("short")
    assert "[Repository R] nametrans" in str(e.value) and "'short'" in str(e.value)


def test_pythonfile_globals_are_visible_to_expressions(tmp_path: Path) -> None:
    pyfile = tmp_path / "helpers.py"
    pyfile.write_text("PREFIX = 'INBOX.'\ndef strip(name):\n    return name.removeprefix(PREFIX)\n")
    trans = compile_expr("strip", WHERE + " nametrans", load_pythonfile(pyfile))
    assert trans("INBOX.Work") == "Work"


def test_pythonfile_syntax_error_is_a_config_error_with_line(tmp_path: Path) -> None:
    pyfile = tmp_path / "bad.py"
    pyfile.write_text("x = 1\ndef f(:\n")
    with pytest.raises(ConfigError, match=r"pythonfile: .*line 2"):
        load_pythonfile(pyfile)


def test_imap_utf7_helpers_round_trip() -> None:
    assert imap_encode("Gäste & Co") == b"G&AOQ-ste &- Co"
    assert imap_decode(b"G&AOQ-ste &- Co") == "Gäste & Co"
    assert imap_decode("G&AOQ-ste") == "Gäste"
    assert imap_decode("Gäste") == "Gäste"  # already decoded (UTF8=ACCEPT)


# --- mapping -----------------------------------------------------------------------------


def entries(*names: str, noselect: tuple[str, ...] = ()) -> list[FolderEntry]:
    return [FolderEntry(n, selectable=n not in noselect) for n in names]


def run_map(
    far: list[FolderEntry], near: list[FolderEntry], far_sep: str = "/", near_sep: str = ".", **kw: object
) -> tuple[list[FolderPair], list[str]]:
    args: dict[str, object] = dict(
        far_filter=None,
        far_nametrans=None,
        near_filter=None,
        near_nametrans=None,
        create_on_far=True,
        create_on_near=True,
        where_far="rc: [Repository Far]",
        where_near="rc: [Repository Near]",
    )
    args.update(kw)
    return map_folders(far, far_sep, near, near_sep, **args)  # type: ignore[arg-type]


def test_separators_are_swapped_and_inbox_first() -> None:
    pairs, warnings = run_map(entries("Lists/dev", "Archive", "INBOX"), entries("INBOX", "Archive"))
    assert pairs == [
        FolderPair("INBOX", "INBOX", True, True),
        FolderPair("Archive", "Archive", True, True),
        FolderPair("Lists/dev", "Lists.dev", True, False),
    ]
    assert warnings == []


def test_lowercase_inbox_from_server_is_inbox() -> None:
    pairs, _ = run_map(entries("inbox"), entries("INBOX"))
    assert pairs == [FolderPair("INBOX", "INBOX", True, True)]


def test_non_selectable_far_folder_skipped_but_children_kept() -> None:
    pairs, _ = run_map(entries("Lists", "Lists/a", noselect=("Lists",)), [])
    assert [p.far for p in pairs] == ["Lists/a"]


def test_far_filter_sees_far_names_before_nametrans() -> None:
    seen: list[str] = []

    def far_filter(name: str) -> bool:
        seen.append(name)
        return name != "INBOX.Spam"

    trans = compile_expr(SEED_NAMETRANS, "rc: [Repository Far] nametrans")
    pairs, _ = run_map(
        entries("INBOX", "INBOX.Sent", "INBOX.Spam"),
        [],
        far_sep=".",
        far_filter=far_filter,
        far_nametrans=trans,
    )
    assert sorted(seen) == ["INBOX", "INBOX.Sent", "INBOX.Spam"]
    assert [(p.far, p.near) for p in pairs] == [("INBOX", "INBOX"), ("INBOX.Sent", "Sent")]


def test_near_filter_applies_to_near_names() -> None:
    pairs, _ = run_map(entries("INBOX", "Trash"), entries("Local"), near_filter=lambda n: n != "Trash")
    assert [p.near for p in pairs] == ["INBOX", "Local"]


def test_two_far_folders_on_one_near_name_is_a_config_error_naming_both() -> None:
    trans = compile_expr(SEED_NAMETRANS, "rc: [Repository Far] nametrans")
    with pytest.raises(ConfigError) as e:
        run_map(entries("INBOX.Sent", "Sent"), [], far_sep=".", far_nametrans=trans)
    msg = str(e.value)
    assert "rc: [Repository Far] nametrans:" in msg
    assert "'INBOX.Sent'" in msg and "'Sent'" in msg and "\n" not in msg


def test_separator_swap_collision_is_also_refused() -> None:
    with pytest.raises(ConfigError, match=r"far folders 'a\.b' and 'a/b' both map to near folder 'a\.b'"):
        run_map(entries("a.b", "a/b"), [])


def test_near_only_folder_with_reversible_nametrans_is_created_on_far() -> None:
    far_trans = compile_expr(SEED_NAMETRANS, "rc: [Repository Far] nametrans")
    near_trans = compile_expr(
        "lambda f: f if f == 'INBOX' else 'INBOX.' + f", "rc: [Repository Near] nametrans"
    )
    pairs, warnings = run_map(
        entries("INBOX", "INBOX.Sent"),
        entries("INBOX", "Sent", "Projects"),
        far_sep=".",
        far_nametrans=far_trans,
        near_nametrans=near_trans,
    )
    assert FolderPair("INBOX.Projects", "Projects", False, True) in pairs
    assert FolderPair("INBOX.Sent", "Sent", True, True) in pairs
    assert warnings == []


def test_near_only_folder_with_irreversible_nametrans_is_skipped_with_warning() -> None:
    far_trans = compile_expr(SEED_NAMETRANS, "rc: [Repository Far] nametrans")
    # No near nametrans: "Projects" would be created on far as "Projects", which far
    # nametrans maps back to "Projects" (fine), but "INBOX.x" maps back to "x": not reversible.
    pairs, warnings = run_map(
        entries("INBOX"), entries("INBOX", "Projects", "INBOX.x"), far_sep=".", far_nametrans=far_trans
    )
    assert [p.near for p in pairs] == ["INBOX", "Projects"]
    assert len(warnings) == 1
    assert warnings[0].startswith("local folder 'INBOX.x' skipped: nametrans is not reversible")


def test_near_only_folders_stay_local_without_create_on_far() -> None:
    pairs, _ = run_map(entries("INBOX"), entries("INBOX", "Local"), create_on_far=False)
    assert [p.near for p in pairs] == ["INBOX"]


def test_far_only_folders_are_skipped_without_create_on_near() -> None:
    pairs, _ = run_map(entries("INBOX", "Remote"), entries("INBOX"), create_on_near=False)
    assert pairs == [FolderPair("INBOX", "INBOX", True, True)]


def test_near_only_folder_excluded_by_far_filter_is_not_created() -> None:
    pairs, _ = run_map(entries("INBOX"), entries("INBOX", "Private"), far_filter=lambda n: n != "Private")
    assert [p.near for p in pairs] == ["INBOX"]


def test_nametrans_returning_non_text_is_a_folder_error() -> None:
    with pytest.raises(FolderError, match=r"\[Repository Far\] nametrans: gives NoneType for folder 'X'"):
        run_map(entries("X"), [], far_nametrans=lambda n: None)


def test_order_is_deterministic() -> None:
    far = entries("b", "INBOX", "a", "c")
    first, _ = run_map(far, entries("z"))
    second, _ = run_map(list(reversed(far)), entries("z"))
    assert first == second
    assert [p.near for p in first] == ["INBOX", "a", "b", "c", "z"]


# --- Maildir paths -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("maildir")


def test_flat_layout_keeps_the_name_as_one_directory(root: Path) -> None:
    assert maildir_path(root, "Lists.dev", ".") == root.resolve() / "Lists.dev"
    assert maildir_path(root, "INBOX", ".") == root.resolve() / "INBOX"


def test_slash_separator_nests_directories(root: Path) -> None:
    assert maildir_path(root, "Lists/dev", "/") == root.resolve() / "Lists" / "dev"


@pytest.mark.parametrize(
    ("name", "sep"),
    [
        ("", "."),
        ("..", "/"),
        ("a/../..", "/"),
        ("/etc", "/"),
        ("a/b", "."),
        ("a\x00b", "."),
        ("a\nb", "."),
        ("a\x7fb", "/"),
        ("x" * 256, "."),
        ("é" * 128, "."),
        (".hidden", "."),
        ("cur", "."),
        ("a/new", "/"),
        ("a.tmp", "."),
        ("a//b", "/"),
        ("a/", "/"),
        (".", "/"),
        ("a..b", "."),
        ("..", "|"),
    ],
)
def test_unsafe_names_are_refused_with_the_name_shown(root: Path, name: str, sep: str) -> None:
    with pytest.raises(FolderError) as e:
        maildir_path(root, name, sep)
    assert repr(name) in str(e.value)


def test_long_name_within_255_bytes_is_accepted(root: Path) -> None:
    assert maildir_path(root, "x" * 255, ".").name == "x" * 255


def test_symlink_leading_out_of_root_is_refused(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    link = root / "Escape"
    link.symlink_to(outside)
    try:
        with pytest.raises(FolderError, match="leaves the Maildir root"):
            maildir_path(root, "Escape", ".")
    finally:
        link.unlink()


_FRAGMENTS = st.sampled_from(["..", ".", "/", "a", "é", "cur", "\x00", "\n", "\x7f", "INBOX", " ", "-"])
_NAMES = st.one_of(st.text(), st.lists(_FRAGMENTS, max_size=8).map("".join))
_SEPS = st.sampled_from([".", "/", "|"])


@settings(max_examples=500)
@given(name=_NAMES, sep=_SEPS)
def test_maildir_path_never_leaves_root(root: Path, name: str, sep: str) -> None:
    real_root = os.path.realpath(root)
    try:
        path = maildir_path(root, name, sep)
    except FolderError:
        return
    assert os.path.commonpath([real_root, str(path)]) == real_root
    assert str(path) != real_root


@settings(max_examples=300)
@given(name=_NAMES, sep=_SEPS)
def test_valid_names_round_trip_through_the_path(root: Path, name: str, sep: str) -> None:
    try:
        path = maildir_path(root, name, sep)
    except FolderError:
        return
    assert folder_name_from_path(root, path, sep) == name


@given(
    parts=st.lists(
        st.text(
            alphabet=st.characters(exclude_categories=("Cc", "Cs"), exclude_characters="/."),
            min_size=1,
            max_size=20,
        ),
        min_size=1,
        max_size=4,
    )
)
def test_ordinary_nested_names_are_accepted(root: Path, parts: list[str]) -> None:
    if any(p in ("cur", "new", "tmp") for p in parts):
        return
    name = "/".join(parts)
    assert folder_name_from_path(root, maildir_path(root, name, "/"), "/") == name


def test_folder_name_from_path_refuses_directories_outside_root_or_nested(root: Path, tmp_path: Path) -> None:
    with pytest.raises(FolderError, match="not a folder under the Maildir root"):
        folder_name_from_path(root, tmp_path, ".")
    with pytest.raises(FolderError, match="nested"):
        folder_name_from_path(root, root / "a" / "b", ".")
