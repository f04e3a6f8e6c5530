"""What to do with an account after one slice: pure, from its exit code and error texts.

- 0: done. 1 (some messages failed, or only message errors): partial, final (a retry would
  fail the same messages again; ``fastsync batch retry`` does it on demand).
- 130 (the slice ran out and stopped cleanly after a batch): continue at once.
- Throttling (``[THROTTLED]``, ``Suggested Backoff Time: N milliseconds``, ``[LIMIT]`` on a
  connection, too many connections) and a lock held elsewhere (4): wait, then continue; the
  wait never counts as a retry.
- Network or server-unavailable (12/13, ``[UNAVAILABLE]``, connection reset, timeout) and any
  other account failure (3): retry with exponential backoff and full jitter, at most
  ``retries`` times, then failed.
- Login refused (10/11), quota (14), a bad command line or CSV line (2): failed at once,
  never retried.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from fastsync.errors import ExitCode

EXIT_SRC_AUTH, EXIT_DST_AUTH, EXIT_SRC_CONNECT, EXIT_DST_CONNECT, EXIT_QUOTA = 10, 11, 12, 13, 14

_BACKOFF_HINT = re.compile(r"suggested\s+backoff\s+time:?\s*(\d+)\s*(ms|milli\w*|s|sec\w*)?", re.I)
_THROTTLE = re.compile(r"\[THROTTLED\]|too many (simultaneous |concurrent )?connections|rate limit", re.I)
_UNAVAILABLE = re.compile(
    r"\[UNAVAILABLE\]|cannot connect|connection (reset|refused|closed|dropped|lost)|timed? ?out|"
    r"temporar(y|ily)|broken pipe|network",
    re.I,
)


@dataclass(frozen=True)
class Decision:
    """``action``: "done" | "partial" | "failed" | "continue" | "wait" | "retry"; ``delay`` in s."""

    action: str
    delay: float = 0.0
    error_class: str = ""
    reason: str = ""


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full jitter: uniform in [base/2, min(cap, base * 2**(attempt-1))]."""
    top = min(cap, base * (2 ** max(0, attempt - 1)))
    return (rng or random).uniform(min(base / 2, top), top)


def suggested_backoff(texts: list[str]) -> float | None:
    """Seconds a server asked to wait (Exchange/Office 365 "Suggested Backoff Time"), if any."""
    for t in texts:
        m = _BACKOFF_HINT.search(t)
        if m:
            unit = (m.group(2) or "ms").lower()
            value = float(m.group(1))
            return value if unit.startswith("s") else value / 1000
    return None


def decide(
    code: int,
    texts: list[str],
    *,
    attempts: int,
    retries: int,
    base: float,
    cap: float = 900.0,
    rng: random.Random | None = None,
) -> Decision:
    """``attempts``: failed attempts so far, this one included (only retried failures count)."""
    reason = next((t for t in reversed(texts) if t), "")
    hint = suggested_backoff(texts)
    if code == ExitCode.OK:
        return Decision("done")
    if code == ExitCode.INTERRUPTED:
        return Decision("continue")
    if code in (EXIT_SRC_AUTH, EXIT_DST_AUTH):
        return Decision("failed", error_class="login", reason=reason or "login refused")
    if code == EXIT_QUOTA:
        return Decision("failed", error_class="quota", reason=reason or "over quota")
    if code == ExitCode.CONFIG:
        return Decision("failed", error_class="config", reason=reason or "configuration error")
    if hint is not None or any(_THROTTLE.search(t) for t in texts) or code == ExitCode.LOCKED:
        wait = hint if hint is not None else backoff(1, base, cap, rng)
        kind = "locked" if code == ExitCode.LOCKED and hint is None else "throttled"
        return Decision("wait", delay=max(0.0, wait), error_class=kind, reason=reason)
    if code == ExitCode.PARTIAL:
        return Decision("partial", error_class="messages", reason=reason)
    kind = "network" if code in (EXIT_SRC_CONNECT, EXIT_DST_CONNECT) or any(
        _UNAVAILABLE.search(t) for t in texts
    ) else "account"
    if attempts > retries:
        return Decision("failed", error_class=kind, reason=reason)
    return Decision("retry", delay=backoff(attempts, base, cap, rng), error_class=kind, reason=reason)
