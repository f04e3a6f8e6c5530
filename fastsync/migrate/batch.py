"""``fastsync migrate --batch FILE.csv``: many accounts, ``--maxsyncaccounts`` at a time.

One account per line: ``src,dst,password1,password2`` where each password source is
``file:PATH``, ``cmd:COMMAND`` or ``env:VARIABLE`` (a literal password is refused: the CSV is
no place for one). Empty lines and lines starting with ``#`` are skipped. Every account keeps
its own state, so a re-run resumes where the last one stopped and copies nothing twice.
Prints one summary line per account; the exit code is the worst account's.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import msgspec

from fastsync.errors import ConfigError, ExitCode
from fastsync.migrate.jobs import Job, run_jobs
from fastsync.migrate.report import as_json, totals, write_json
from fastsync.migrate.urls import Endpoint, parse_endpoint, read_password


def check_source(spec: str, which: str) -> tuple[str, str]:
    """(kind, value) of a password source ``file:PATH``, ``cmd:COMMAND`` or ``env:VARIABLE``."""
    kind, colon, value = spec.partition(":")
    if not colon or kind not in ("file", "cmd", "env") or not value:
        raise ConfigError(f"{which}: password source must be file:PATH, cmd:COMMAND or env:VARIABLE")
    return kind, value


def resolve_password(spec: str, which: str) -> str:
    """The password a source reference names (read here, on the machine that needs it)."""
    kind, value = check_source(spec, which)
    return read_password(
        which,
        file=value if kind == "file" else None,
        command=value if kind == "cmd" else None,
        env=value if kind == "env" else None,
    )


class Row(msgspec.Struct, frozen=True):
    """One usable CSV line: endpoints parsed, password sources checked but not read."""

    where: str
    src_url: str
    dst_url: str
    src: Endpoint
    dst: Endpoint
    password1: str
    password2: str


def read_rows(path: str, args: argparse.Namespace) -> list[Row | str]:
    """The lines of the CSV file in order; a line that cannot be used becomes its error text."""
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--batch {path!r}: cannot read: {e}") from None
    out: list[Row | str] = []
    for lineno, row in enumerate(csv.reader(text.splitlines()), start=1):
        if not row or not "".join(row).strip() or row[0].lstrip().startswith("#"):
            continue
        where = f"{path} line {lineno}"
        try:
            if len(row) != 4:
                raise ConfigError(f"{len(row)} fields (expected src,dst,password1,password2)")
            src, dst, p1, p2 = (x.strip() for x in row)
            check_source(p1, "SRC")
            check_source(p2, "DST")
            out.append(
                Row(
                    where,
                    src,
                    dst,
                    parse_endpoint(src, "SRC", plain=args.no_tls1),
                    parse_endpoint(dst, "DST", plain=args.no_tls2),
                    p1,
                    p2,
                )
            )
        except ConfigError as e:
            out.append(f"{where}: {e}")
    return out


def read_batch(path: str, args: argparse.Namespace) -> list[Job | str]:
    """Jobs of the CSV file in order, passwords read; a line that cannot be used becomes its error text."""
    out: list[Job | str] = []
    for row in read_rows(path, args):
        if isinstance(row, str):
            out.append(row)
            continue
        try:
            pw1 = resolve_password(row.password1, "SRC")
            out.append(Job(row.src, row.dst, pw1, resolve_password(row.password2, "DST")))
        except ConfigError as e:
            out.append(f"{row.where}: {e}")
    return out


def run_batch(args: argparse.Namespace) -> int:
    entries = read_batch(args.batch, args)
    jobs = [e for e in entries if isinstance(e, Job)]
    worst = int(ExitCode.OK)
    for e in entries:
        if isinstance(e, str):
            print(f"fastsync migrate: {e}", file=sys.stderr)
            worst = max(worst, int(ExitCode.CONFIG))
    codes = run_jobs(jobs, args) if jobs else []
    report = []
    for job, code in zip(jobs, codes, strict=True):
        t = totals(job.result)
        print(
            f"account {job.result.src} -> {job.result.dst}: exit {code}: found {t['found']}, "
            f"copied {t['copied']}, present {t['present']}, skipped {t['skipped']}, failed {t['failed']}, "
            f"{t['bytes']} bytes",
            flush=True,
        )
        report.append(as_json(job.result, 0.0, args.dry_run, code))
        worst = max(worst, code)
    if args.report:
        write_json(args.report, {"accounts": report})
    return worst
