"""``fastsync batch status|report|retry``: where the batch is, its per-account table, retries."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from fastsync.dist.queue import PREFIX, enqueue_slice
from fastsync.dist.records import FINAL, Account, Batch
from fastsync.migrate.report import write_json

COLUMNS = (
    "account", "src", "dst", "status", "exit_code", "error_class", "attempts", "revivals", "slices",
    "found", "copied", "present", "skipped", "failed", "bytes", "seconds", "error",
)
STATUSES = ("done", "partial", "failed", "running", "queued")


def row(a: Account) -> dict[str, Any]:
    out: dict[str, Any] = {"account": a.id}
    for c in COLUMNS[1:]:
        if c in ("src", "dst", "status", "error_class", "error"):
            out[c] = a.get(c)
        elif c == "exit_code":
            out[c] = int(a.num(c)) if a.get(c) else None
        elif c == "seconds":
            out[c] = round(a.num(c), 1)
        else:
            out[c] = int(a.num(c))
    return out


def summary(batch: Batch) -> dict[str, Any]:
    """Counts by status, messages and bytes copied, rates since the first slice, ETA."""
    accounts = batch.accounts()
    counts = {s: sum(1 for a in accounts if a.status == s) for s in STATUSES}
    copied = sum(int(a.num("copied")) for a in accounts)
    nbytes = sum(int(a.num("bytes")) for a in accounts)
    now = batch.now_ms()
    first = batch.redis.hget(f"{PREFIX}:batch", "started_at")
    ends = [a.num("finished_at") for a in accounts]
    end = now if any(a.status not in FINAL for a in accounts) or not ends else max(ends)
    elapsed = max(0.001, (end - float(first)) / 1000) if first else 0.0
    known = [a for a in accounts if a.get("found")]
    mean_found = sum(a.num("found") for a in known) / len(known) if known else 0.0
    left = sum(
        max(0.0, (a.num("found") if a.get("found") else mean_found) - a.num("copied") - a.num("present"))
        for a in accounts if a.status not in FINAL
    )
    msg_rate = copied / elapsed if elapsed else 0.0
    finished = sum(counts[s] for s in FINAL)
    return {
        "accounts": len(accounts),
        **counts,
        "messages_copied": copied,
        "bytes_copied": nbytes,
        "elapsed_s": round(elapsed, 1),
        "messages_per_s": round(msg_rate, 1),
        "mb_per_s": round(nbytes / 1e6 / elapsed, 2) if elapsed else 0.0,
        "accounts_per_min": round(finished / elapsed * 60, 2) if elapsed else 0.0,
        "eta_s": round(left / msg_rate, 0) if msg_rate and left else (0.0 if finished == len(accounts) else None),
    }


def status_text(s: dict[str, Any]) -> str:
    eta = "-" if s["eta_s"] is None else f"{s['eta_s']:.0f} s"
    return (
        f"accounts: {s['accounts']} (done {s['done']}, partial {s['partial']}, failed {s['failed']}, "
        f"running {s['running']}, queued {s['queued']})\n"
        f"messages: {s['messages_copied']} copied, {s['bytes_copied'] / 1e6:.1f} MB in {s['elapsed_s']} s: "
        f"{s['messages_per_s']} messages/s, {s['mb_per_s']} MB/s, {s['accounts_per_min']} accounts/min; "
        f"ETA {eta}"
    )


def write_report(batch: Batch, prefix: str) -> tuple[Path, Path]:
    """The per-account table as PREFIX.csv and PREFIX.json (with the summary); atomic writes."""
    rows = [row(a) for a in batch.accounts()]
    out = io.StringIO()
    w = csv.DictWriter(out, fieldnames=COLUMNS)
    w.writeheader()
    w.writerows(rows)
    csv_path, json_path = Path(f"{prefix}.csv").expanduser(), Path(f"{prefix}.json").expanduser()
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    tmp.write_text(out.getvalue(), encoding="utf-8")
    tmp.replace(csv_path)
    write_json(str(json_path), {"summary": summary(batch), "accounts": rows})
    return csv_path, json_path


def retry(batch: Batch, accounts: list[str], include_partial: bool) -> list[str]:
    """Queue failed (and with ``include_partial`` partial) accounts again, attempts reset."""
    wanted = ("failed", "partial") if include_partial else ("failed",)
    done = []
    for a in batch.accounts():
        if a.status not in wanted or (accounts and a.id not in accounts):
            continue
        if batch.locked(a.id):
            continue
        nxt = batch.update(a.id, None, set={"status": "queued", "attempts": 0, "revivals": 0, "error": "",
                                            "error_class": ""}, next_job=True)
        if nxt is not None:
            enqueue_slice(batch.redis, a.id, nxt, 0, float(a.opts.get("job_timeout", 1800)))
            done.append(a.id)
    return done
