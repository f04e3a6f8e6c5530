"""The statistics block of a migration (per folder and total) and its JSON form (--report)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from fastsync.migrate.run import AccountResult, FolderResult

_COLUMNS = ("found", "copied", "present", "skipped", "failed")


def _mb(n: int) -> str:
    return f"{n / 1e6:.2f} MB"


def totals(r: AccountResult) -> dict[str, int]:
    out = {c: sum(getattr(f, c) for f in r.folders.values()) for c in _COLUMNS}
    out["bytes"] = sum(f.bytes for f in r.folders.values())
    out["folders_failed"] = sum(1 for f in r.folders.values() if f.error)
    out["deleted"] = sum(f.deleted for f in r.folders.values())
    out["altered"] = sum(f.altered for f in r.folders.values())
    out["duplicates"] = sum(f.duplicates for f in r.folders.values())
    return out


def rates(r: AccountResult, seconds: float) -> dict[str, float]:
    t = totals(r)
    s = max(seconds, 1e-6)
    return {"messages_per_s": round(t["copied"] / s, 1), "mb_per_s": round(t["bytes"] / 1e6 / s, 2)}


def stats_block(r: AccountResult, seconds: float, dry_run: bool) -> str:
    """The human statistics block (dry run: what would be copied and what is already there)."""
    if dry_run:
        lines = [f"dry run: {r.src} -> {r.dst} (nothing changed)"]
        for f in r.folders.values():
            lines.append(
                f"  {f.src!r} -> {f.dst!r}: would copy {f.copied} messages ({f.bytes} bytes), "
                f"{f.present} already there, {f.skipped} skipped" + (f", ERROR {f.error}" if f.error else "")
            )
        t = totals(r)
        lines.append(
            f"  total: would copy {t['copied']} messages ({t['bytes']} bytes), "
            f"{t['present']} already there, {t['skipped']} skipped"
        )
        return "\n".join(lines)
    width = max([len(f"{f.src} -> {f.dst}") for f in r.folders.values()] + [10])
    head = f"  {'folder':<{width}} " + " ".join(f"{c:>8}" for c in _COLUMNS) + f" {'bytes':>12} {'s':>7}"
    lines = [f"migration {r.src} -> {r.dst}", head]
    for f in r.folders.values():
        lines.append(_row(f"{f.src} -> {f.dst}", f, width) + (f"  FAILED: {f.error}" if f.error else ""))
    t = totals(r)
    lines.append(
        f"  {'total':<{width}} "
        + " ".join(f"{t[c]:>8}" for c in _COLUMNS)
        + f" {t['bytes']:>12} {seconds:>7.1f}"
    )
    rt = rates(r, seconds)
    lines.append(
        f"  elapsed {seconds:.1f} s, {rt['messages_per_s']} messages/s, {rt['mb_per_s']} MB/s "
        f"({_mb(t['bytes'])} copied)"
        + (f", {t['deleted']} deleted on the destination" if t["deleted"] else "")
    )
    if t["duplicates"]:
        lines.append(
            f"  {t['duplicates']} Gmail duplicates left out (each one copied with another label folder)"
        )
    if t["altered"]:
        lines.append(
            f"  {t['altered']} copied messages were altered by the destination server "
            "(each named in a warning above)"
        )
    return "\n".join(lines)


def _row(label: str, f: FolderResult, width: int) -> str:
    return (
        f"  {label:<{width}} "
        + " ".join(f"{getattr(f, c):>8}" for c in _COLUMNS)
        + f" {f.bytes:>12} {f.seconds:>7.1f}"
    )


def as_json(r: AccountResult, seconds: float, dry_run: bool, code: int, verify: Any = None) -> dict[str, Any]:
    return {
        "src": r.src,
        "dst": r.dst,
        "dry_run": dry_run,
        "exit_code": code,
        "elapsed_s": round(seconds, 3),
        **rates(r, seconds),
        "total": totals(r),
        "folders": [
            {
                "src": f.src,
                "dst": f.dst,
                **{c: getattr(f, c) for c in _COLUMNS},
                "bytes": f.bytes,
                "deleted": f.deleted,
                "altered": f.altered,
                "duplicates": f.duplicates,
                "seconds": round(f.seconds, 3),
                "error": f.error,
                "message_errors": f.message_errors,
            }
            for f in r.folders.values()
        ],
        "errors": r.errors,
        "verify": verify,
    }


def write_json(path: str, data: Any) -> None:
    """Write atomically (tmp + rename) so a reader never sees half a report."""
    target = Path(path).expanduser()
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)
