"""The human words for events: what a line-based UI (and the Blinkenlights log) shows for each.

One place, so that Quiet, Basic, TTYUI, Curses and Tk say the same thing about the same event,
and each event is said once. Progress has no line here (the UIs draw it their own way).
"""

from __future__ import annotations

from fastsync import events as ev
from fastsync.ui.progress import format_seconds

Line = tuple[ev.Level, str]


def lines_of(e: ev.Event) -> list[Line]:
    """The lines an event stands for (none for most worker events)."""
    a = e.account
    if isinstance(e, ev.Notice):
        return [(e.level, f"account {a}: {e.text}" if a else e.text)]
    if isinstance(e, ev.Info):
        return _info(e)
    if isinstance(e, ev.JobFailed):
        return _failed(e)
    if isinstance(e, ev.JobDone) and e.changed:
        s = e.stats
        what = f"{e.folder!r} (range copy {e.part})" if e.part else repr(e.folder)
        return [(
            "info",
            f"account {a}: {what}: {s.to_near} ->near, {s.to_far} ->far, "
            f"{s.flags_far + s.flags_near} flags, {s.del_far + s.del_near} deleted",
        )]
    if isinstance(e, ev.Discovered):
        return [("warning", f"account {a}: {w}") for w in e.warnings]
    if isinstance(e, ev.AccountStarted):
        return [("info", f"account {a}: {'quick ' if e.quick else ''}syncing")]
    if isinstance(e, ev.AccountDone):
        return [("info", e.summary.line())]
    if isinstance(e, ev.AccountSleeping):
        if e.seconds is None:
            return [("info", f"account {a}: waiting for new mail (IDLE)")]
        return [("info", f"account {a}: next sync in {format_seconds(e.seconds)}")]
    return []


def _info(e: ev.Info) -> list[Line]:
    where = f"account {e.account}: {e.folder!r}"
    if e.level == "newmail":
        return [("info", f"{where}: changed on the server (IDLE)")]
    if e.level == "idle":
        return []
    return [(e.level, f"{where}: {e.text}")]


def _failed(e: ev.JobFailed) -> list[Line]:
    a = e.account
    if e.scope == "interrupted":
        return []
    if e.scope in ("account", "config"):
        return [("error", f"account {a}: {e.message}")]
    if e.part:
        return [(
            "warning",
            f"account {a}: folder {e.folder!r}: range copy {e.part} failed: {e.message}; "
            "the folder's sync copies the rest",
        )]
    return [("error", f"account {a}: folder {e.folder!r}: {e.message}")]
