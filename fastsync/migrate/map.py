"""Which source folders a migration copies, and under which destination names. Pure.

Order of rules for one source folder (the first that applies wins):
1. ``--map OLD=NEW`` (OLD as the source names it, NEW as the destination will);
2. automap: a special folder (\\Sent, \\Drafts, \\Trash, \\Junk, \\Archive, by attribute or
   well-known name) goes to the destination's folder of the same use when it has one;
3. translation: the source's personal-namespace prefix is dropped, hierarchy components are
   re-joined with the destination's separator (a destination separator inside a component
   becomes ``_``), and the destination's prefix is added. INBOX stays INBOX.
Two source folders that would land in one destination folder are a ConfigError.
"""

from __future__ import annotations

import re

import msgspec

from fastsync.errors import ConfigError
from fastsync.folders import INBOX, map_special_use
from fastsync.stores.base import FolderEntry


class Selection(msgspec.Struct, frozen=True):
    folders: tuple[str, ...] = ()  # only these source folders (empty: all)
    include: tuple[str, ...] = ()  # regexes; a folder must match one (empty: all)
    exclude: tuple[str, ...] = ()  # regexes; a folder matching one is left out
    renames: tuple[tuple[str, str], ...] = ()  # --map OLD=NEW
    automap: bool = True


class Side(msgspec.Struct, frozen=True):
    """What the mapping needs to know of one server."""

    entries: list[FolderEntry]
    sep: str
    prefix: str = ""  # personal namespace prefix, e.g. "INBOX."


class FolderMap(msgspec.Struct, frozen=True):
    src: str
    dst: str
    dst_exists: bool
    how: str  # "map", "special-use", "name"


def parse_renames(items: list[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for item in items:
        old, eq, new = item.partition("=")
        if not eq or not old or not new:
            raise ConfigError(f"--map {item!r}: expected OLD=NEW with both names non-empty")
        out.append((old, new))
    return tuple(out)


def compile_patterns(patterns: tuple[str, ...], option: str) -> list[re.Pattern[str]]:
    out = []
    for p in patterns:
        try:
            out.append(re.compile(p))
        except re.error as e:
            raise ConfigError(f"{option} {p!r}: not a regular expression: {e}") from None
    return out


def _inbox(name: str) -> str:
    return INBOX if name.upper() == INBOX else name


def translate(name: str, src: Side, dst: Side) -> str:
    """Rule 3 of the module docstring."""
    name = _inbox(name)
    if name == INBOX:
        return INBOX
    if src.prefix and name.startswith(src.prefix):
        name = name[len(src.prefix) :]
    parts = name.split(src.sep) if src.sep else [name]
    if src.sep != dst.sep and dst.sep:
        parts = [p.replace(dst.sep, "_") for p in parts]
    out = dst.sep.join(parts) if dst.sep else "_".join(parts)
    return out if out.upper() == INBOX else dst.prefix + out


def map_folders(src: Side, dst: Side, sel: Selection) -> list[FolderMap]:
    """The folder pairs of a migration, INBOX first, then by source name."""
    include = compile_patterns(sel.include, "--include")
    exclude = compile_patterns(sel.exclude, "--exclude")
    renames = dict(sel.renames)
    special = map_special_use(src.entries, src.sep, dst.entries, dst.sep) if sel.automap else {}
    dst_names = {_inbox(e.name) for e in dst.entries if e.selectable}
    wanted = set(sel.folders)
    unknown = wanted - {_inbox(e.name) for e in src.entries}
    if unknown:
        raise ConfigError(f"--folder {', '.join(sorted(unknown))}: no such folder on the source")
    out: list[FolderMap] = []
    seen: dict[str, str] = {}
    for entry in sorted(src.entries, key=lambda e: (_inbox(e.name) != INBOX, e.name)):
        name = _inbox(entry.name)
        if not entry.selectable or (wanted and name not in wanted):
            continue
        if include and not any(p.search(name) for p in include):
            continue
        if any(p.search(name) for p in exclude):
            continue
        if name in renames:
            target, how = renames[name], "map"
        elif name in special:
            target, how = special[name], "special-use"
        else:
            target, how = translate(name, src, dst), "name"
        target = _inbox(target)
        if target in seen:
            raise ConfigError(
                f"source folders {seen[target]!r} and {name!r} both map to destination folder {target!r} "
                "(expected distinct names; use --map or --exclude)"
            )
        seen[target] = name
        out.append(FolderMap(src=name, dst=target, dst_exists=target in dst_names, how=how))
    unused = set(renames) - {m.src for m in out}
    if unused:
        raise ConfigError(f"--map {', '.join(sorted(unused))}: no such (selected) folder on the source")
    return out
