"""Folder names: user expressions (folderfilter, nametrans), far <-> near mapping, Maildir paths.

Contracts:
- ``compile_expr`` turns an OfflineIMAP-style Python expression (usually a lambda) into a
  callable; a broken expression is a ConfigError naming where it was configured, and a
  call that raises later is a FolderError naming the folder and the option.
- ``map_folders`` pairs far and near folders the way OfflineIMAP users expect, refusing
  ambiguous mappings before anything is written.
- ``maildir_path`` maps a folder name to a directory strictly inside the Maildir root, or
  raises FolderError: a name from a server never chooses where we write.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from fastsync import mutf7
from fastsync.errors import ConfigError, FolderError
from fastsync.stores.base import FolderEntry

log = logging.getLogger(__name__)

INBOX = "INBOX"
Expr = Callable[[str], Any]

# --- user expressions ------------------------------------------------------------------


def _eval_source(source: str, filename: str, pyglobals: dict[str, Any] | None) -> Any:
    """Evaluate an expression written over continuation lines of an INI value.

    The value is wrapped in parentheses so that its line breaks are implicit line joins:
    OfflineIMAP users write ``lambda f: f in`` and the list on the next, indented line.
    """
    namespace: dict[str, Any] = dict(pyglobals or {})
    namespace["re"] = re
    return eval(_compile(source, filename), namespace)


def _compile(source: str, filename: str) -> Any:
    with warnings.catch_warnings():
        # OfflineIMAP's documented nametrans writes '^INBOX\.' in a plain string; the
        # invalid-escape warning would only confuse users copying it.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", SyntaxWarning)
        return compile("(" + source + "\n)", filename, "eval")


def eval_value(source: str, where: str, pyglobals: dict[str, Any] | None = None) -> Any:
    """Evaluate a configured expression (e.g. ``remoteusereval``) once; ConfigError on failure.

    The message names ``where`` and the kind of failure, never the resulting value.
    """
    try:
        return _eval_source(source, where, pyglobals)
    except SyntaxError as e:
        raise ConfigError(f"{where}: Python syntax error: {e.msg} (expected a Python expression)") from None
    except Exception as e:  # user code: any failure is reported as a config error, not hidden
        raise ConfigError(f"{where}: evaluating the expression failed: {type(e).__name__}: {e}") from None


def check_syntax(source: str, where: str) -> None:
    """Raise ConfigError if ``source`` is not a Python expression (nothing is evaluated)."""
    try:
        _compile(source, where)
    except SyntaxError as e:
        raise ConfigError(f"{where}: Python syntax error: {e.msg} (expected a Python expression)") from None


def compile_expr(source: str, where: str, pyglobals: dict[str, Any] | None = None) -> Expr:
    """Compile a folderfilter/nametrans expression into a function of one folder name.

    ``where`` names the option, e.g. ``"~/.fastsyncrc: [Repository R] nametrans"``. The
    expression sees ``re`` and the globals of the configured ``pythonfile``.
    """
    fn = eval_value(source, where, pyglobals)
    if not callable(fn):
        raise ConfigError(
            f"{where}: the expression gives a {type(fn).__name__}, not a function "
            "(expected e.g. lambda foldername: ...)"
        )

    def call(name: str) -> Any:
        try:
            return fn(name)
        except Exception as e:  # user code: turned into a FolderError naming folder and option
            raise FolderError(f"{where}: failed on folder {name!r}: {type(e).__name__}: {e}") from e

    return call


def load_pythonfile(path: str | Path, where: str = "[general] pythonfile") -> dict[str, Any]:
    """Run the user's ``pythonfile`` and return its globals, for use by config expressions."""
    try:
        source = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(
            f"{where}: cannot read {str(path)!r}: {_reason(e)} (expected a Python file)"
        ) from None
    namespace: dict[str, Any] = {"__name__": "fastsync_pythonfile", "__file__": str(path)}
    try:
        exec(compile(source, str(path), "exec"), namespace)
    except SyntaxError as e:
        raise ConfigError(f"{where}: {str(path)!r} line {e.lineno}: Python syntax error: {e.msg}") from None
    except Exception as e:  # user code: reported as a config error naming the file
        raise ConfigError(f"{where}: running {str(path)!r} failed: {type(e).__name__}: {e}") from None
    return namespace


def _reason(e: BaseException) -> str:
    if isinstance(e, OSError):
        return e.strerror or type(e).__name__
    if isinstance(e, UnicodeDecodeError):
        return "not valid UTF-8"
    return type(e).__name__


# --- IMAP names --------------------------------------------------------------------------


def imap_decode(raw: bytes | str) -> str:
    """A folder name as the server sent it (modified UTF-7) -> text.

    A str that is not pure ASCII is taken as already decoded (servers with UTF8=ACCEPT).
    """
    if isinstance(raw, str):
        if not raw.isascii():
            return raw
        raw = raw.encode("ascii")
    return mutf7.decode(raw)


def imap_encode(name: str) -> bytes:
    """Text -> modified UTF-7 bytes for the wire."""
    return mutf7.encode(name)


# --- far <-> near mapping ----------------------------------------------------------------


class FolderPair(msgspec.Struct, frozen=True):
    """One far folder and its near twin; a side that does not exist yet is to be created."""

    far: str
    near: str
    far_exists: bool
    near_exists: bool


def _canon_inbox(name: str) -> str:
    # IMAP's INBOX is case-insensitive (RFC 3501 5.1); we always spell it INBOX.
    return INBOX if name.upper() == INBOX else name


def _translate(name: str, nametrans: Expr | None, sep_from: str, sep_to: str, where: str) -> str:
    """OfflineIMAP's rule: nametrans on the source name first, then swap the separators."""
    out = name
    if nametrans is not None:
        out = nametrans(name)
        if not isinstance(out, str):
            raise FolderError(
                f"{where} nametrans: gives {type(out).__name__} for folder {name!r} (expected a str)"
            )
    return out.replace(sep_from, sep_to) if sep_from != sep_to else out


def _keep(name: str, folderfilter: Expr | None) -> bool:
    return folderfilter is None or bool(folderfilter(name))


def _sort_key(pair: FolderPair) -> tuple[int, str, str]:
    return (0 if INBOX in (pair.far, pair.near) else 1, pair.near, pair.far)


def map_folders(
    far: list[FolderEntry],
    far_sep: str,
    near: list[FolderEntry],
    near_sep: str,
    *,
    far_filter: Expr | None,
    far_nametrans: Expr | None,
    near_filter: Expr | None,
    near_nametrans: Expr | None,
    create_on_far: bool,
    create_on_near: bool,
    where_far: str,
    where_near: str,
) -> tuple[list[FolderPair], list[str]]:
    """Pair far and near folders; return (pairs, warnings).

    ``where_far``/``where_near`` name the repository sections (``"FILE: [Repository R]"``);
    messages add the option name. Rules:
    - far names pass the far folderfilter (on far names) before far nametrans; the near
      name is nametrans(far name) with far_sep replaced by near_sep; non-selectable far
      folders are skipped. Near names (existing or derived) must pass the near folderfilter.
    - two far folders giving one near name: ConfigError naming both and the option.
    - near-only folders, when ``create_on_far``: far name = near nametrans(near name) with
      the separators swapped; kept only if mapping that far name back gives the same near
      name (otherwise a warning, no pair), and if the far folderfilter accepts it.
    - far-only folders get a pair only when ``create_on_near``.
    Order: pairs touching INBOX first, then by near name.
    """
    # A non-selectable near entry (a hierarchy parent, \Noselect) holds no messages: it is
    # neither a folder to pair on its own nor one that exists for a far folder of that name.
    near_names = {e.name for e in near if e.selectable}
    far_entries = {_canon_inbox(e.name): e for e in far}
    warnings: list[str] = []
    by_near: dict[str, str] = {}
    pairs: list[FolderPair] = []

    for far_name in sorted(far_entries):
        if not far_entries[far_name].selectable or not _keep(far_name, far_filter):
            continue
        near_name = _translate(far_name, far_nametrans, far_sep, near_sep, where_far)
        if not near_name:
            warnings.append(f"far folder {far_name!r} skipped: {where_far} nametrans gives an empty name")
            continue
        if near_name in by_near:
            other = by_near[near_name]
            raise ConfigError(
                f"{where_far} nametrans: far folders {other!r} and {far_name!r} both map to near folder "
                f"{near_name!r} (expected a distinct near name for each far folder)"
            )
        by_near[near_name] = far_name
        if not _keep(near_name, near_filter):
            log.debug("far folder %r skipped: near folderfilter excludes %r", far_name, near_name)
            continue
        exists = near_name in near_names
        if exists or create_on_near:
            pairs.append(FolderPair(far_name, near_name, True, exists))

    if create_on_far:
        for near_name in sorted(near_names - by_near.keys()):
            pair = _near_only(
                near_name,
                far_entries,
                far_sep,
                near_sep,
                far_filter,
                far_nametrans,
                near_filter,
                near_nametrans,
                where_far,
                where_near,
                warnings,
            )
            if pair is not None:
                pairs.append(pair)
    pairs.sort(key=_sort_key)
    return pairs, warnings


def _near_only(
    near_name: str,
    far_entries: dict[str, FolderEntry],
    far_sep: str,
    near_sep: str,
    far_filter: Expr | None,
    far_nametrans: Expr | None,
    near_filter: Expr | None,
    near_nametrans: Expr | None,
    where_far: str,
    where_near: str,
    warnings: list[str],
) -> FolderPair | None:
    """The pair for a folder that exists only on the near side, or None (see map_folders)."""
    if not _keep(near_name, near_filter):
        return None
    far_name = _canon_inbox(_translate(near_name, near_nametrans, near_sep, far_sep, where_near))
    back = _translate(far_name, far_nametrans, far_sep, near_sep, where_far) if far_name else ""
    if back != near_name:
        warnings.append(
            f"local folder {near_name!r} skipped: nametrans is not reversible "
            f"({where_near} nametrans gives far {far_name!r}, which {where_far} nametrans maps to {back!r})"
        )
        return None
    if not _keep(far_name, far_filter):
        log.debug("near folder %r not created on far: far folderfilter excludes %r", near_name, far_name)
        return None
    entry = far_entries.get(far_name)
    if entry is not None:  # listed but not paired above, so it cannot hold messages
        warnings.append(
            f"local folder {near_name!r} skipped: far folder {far_name!r} exists but cannot hold messages"
        )
        return None
    return FolderPair(far_name, near_name, False, True)


# --- Maildir paths -----------------------------------------------------------------------

_RESERVED = frozenset({"cur", "new", "tmp", ".", ".."})
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1


def _refuse(name: str, why: str) -> FolderError:
    return FolderError(f"folder name {name!r} refused as a Maildir folder: {why}")


def _components(name: str, sep: str) -> list[str]:
    """Validated hierarchy components of ``name``; FolderError when unsafe (see maildir_path)."""
    if not name:
        raise _refuse(name, "empty name")
    if _CONTROL.search(name):
        raise _refuse(name, "contains a control character")
    if sep != "/" and "/" in name:
        raise _refuse(name, "contains '/' but the separator is " + repr(sep))
    if sep == "." and name.startswith("."):
        raise _refuse(name, "starts with '.' (clashes with Maildir++ folder names)")
    parts = name.split(sep)
    for part in parts:
        if not part:
            raise _refuse(name, "empty hierarchy component (leading, trailing or doubled separator)")
        if part in _RESERVED:
            raise _refuse(name, f"component {part!r} is reserved")
    # In the flat layout the whole name is one directory name; nested, each part is one.
    for dirname in parts if sep == "/" else [name]:
        try:
            size = len(dirname.encode("utf-8"))
        except UnicodeEncodeError:
            raise _refuse(name, "not encodable as UTF-8") from None
        if size > 255:
            raise _refuse(name, f"a directory name would be {size} bytes (limit 255)")
        if dirname in _RESERVED:
            raise _refuse(name, f"{dirname!r} is reserved")
    return parts if sep == "/" else [name]


def maildir_path(root: Path, name: str, sep: str) -> Path:
    """The directory of Maildir folder ``name`` under ``root``, resolved; FolderError if unsafe.

    With sep "/" folders nest as directories; otherwise one flat directory per folder whose
    name is the folder name (OfflineIMAP's layout). The result is checked to lie inside
    the resolved root, so a symlink cannot lead a write outside it either.
    """
    parts = _components(name, sep)
    real_root = os.path.realpath(root)
    candidate = os.path.realpath(os.path.join(real_root, *parts))
    if candidate == real_root or os.path.commonpath([real_root, candidate]) != real_root:
        raise _refuse(name, f"its path leaves the Maildir root {str(root)!r}")
    return Path(candidate)


def folder_name_from_path(root: Path, dirpath: Path, sep: str) -> str:
    """Inverse of maildir_path: the folder name of a directory under ``root``.

    FolderError when the directory is outside the root, or its name is one maildir_path
    would refuse (so a listing never yields a name that cannot be written back).
    """
    real_root = os.path.realpath(root)
    real_dir = os.path.realpath(dirpath)
    if real_dir == real_root or os.path.commonpath([real_root, real_dir]) != real_root:
        raise FolderError(f"directory {str(dirpath)!r} is not a folder under the Maildir root {str(root)!r}")
    parts = Path(os.path.relpath(real_dir, real_root)).parts
    if sep != "/" and len(parts) != 1:
        raise FolderError(f"directory {str(dirpath)!r} is nested, but the separator is {sep!r}")
    name = sep.join(parts) if sep == "/" else parts[0]
    _components(name, sep)
    return name


# --- SPECIAL-USE mapping (RFC 6154) --------------------------------------------------------

SPECIAL_USES = ("\\Sent", "\\Drafts", "\\Trash", "\\Junk", "\\Archive")
# Names servers and mail readers commonly give special folders that carry no attribute
# (last hierarchy component, lower case).
_WELL_KNOWN = {
    "\\Sent": ("sent", "sent items", "sent messages", "sent mail", "gesendet", "gesendete objekte",
               "envoyés", "éléments envoyés", "enviados"),
    "\\Drafts": ("drafts", "draft", "entwürfe", "brouillons", "borradores"),
    "\\Trash": ("trash", "deleted items", "deleted messages", "bin", "papierkorb", "corbeille",
                "gelöschte elemente", "papelera"),
    "\\Junk": ("junk", "spam", "junk e-mail", "junk email", "bulk mail", "courrier indésirable"),
    "\\Archive": ("archive", "archives", "archiv"),
}
_BY_NAME = {name: use for use, names in _WELL_KNOWN.items() for name in names}


def special_use_of(entry: FolderEntry, sep: str) -> str | None:
    """The RFC 6154 use of a folder: its attribute, else a guess from a well-known name."""
    if entry.special_use in SPECIAL_USES:
        return entry.special_use
    return _BY_NAME.get(entry.name.rsplit(sep, 1)[-1].lower()) if sep else _BY_NAME.get(entry.name.lower())


def map_special_use(
    src: list[FolderEntry], src_sep: str, dst: list[FolderEntry], dst_sep: str
) -> dict[str, str]:
    """Source folder name -> destination folder name for special folders known on both sides.

    A use counts on a side when a selectable folder carries its attribute, or failing that,
    has a well-known name; an attribute always beats a name guess, and among equals the
    shortest name wins (``Sent`` before ``Archive/Sent``). Uses known only on one side are
    left out: the caller keeps the translated name for them.
    """
    src_by_use = _by_use(src, src_sep)
    dst_by_use = _by_use(dst, dst_sep)
    both = [use for use in SPECIAL_USES if use in src_by_use and use in dst_by_use]
    return {src_by_use[use]: dst_by_use[use] for use in both}


def _by_use(entries: list[FolderEntry], sep: str) -> dict[str, str]:
    ranked: dict[str, tuple[int, int, str]] = {}
    for e in entries:
        if not e.selectable or _canon_inbox(e.name) == INBOX:
            continue
        use = special_use_of(e, sep)
        if use is None:
            continue
        rank = (0 if e.special_use == use else 1, len(e.name), e.name)
        if use not in ranked or rank < ranked[use]:
            ranked[use] = rank
    return {use: rank[2] for use, rank in ranked.items()}
