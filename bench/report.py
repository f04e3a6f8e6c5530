"""Tables: one per scenario, Markdown, printed and written into bench/RESULTS.md."""

from __future__ import annotations

import platform
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from bench.measure import MB, Measured
from bench.verify import Tally


@dataclass
class Row:
    peer: str
    runs: list[Measured] = field(default_factory=list)
    result: Tally | None = None
    problem: str = ""  # '' = complete and exit 0; else why the result does not count
    note: str = ""

    @property
    def ok(self) -> bool:
        return not self.problem and bool(self.runs)

    @property
    def wall(self) -> float:
        return statistics.median(r.wall for r in self.runs)

    @property
    def cpu(self) -> float:
        return statistics.median(r.cpu for r in self.runs)


@dataclass
class Scenario:
    key: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[tuple[str, str, float]] = field(default_factory=list)  # (peer, "<=" or ">=", ratio)

    def row(self, peer: str) -> Row | None:
        return next((r for r in self.rows if r.peer == peer), None)


def _fmt_rate(n: float, wall: float) -> str:
    return f"{n / wall:,.0f}" if wall > 0 else "-"


def render(sc: Scenario) -> str:
    head = ("| tool | runs | wall s (median) | msg/s | MB/s | CPU s | peak RSS largest MB | "
            "peak RSS sum MB | complete | fastsync/tool |")
    lines = [f"### {sc.title}", "", head, "|" + "---|" * 10]
    base = sc.row("fastsync")
    for r in sc.rows:
        if not r.runs:
            lines.append(f"| {r.peer} | 0 | - | - | - | - | - | - | NO: {r.problem or 'not run'} | - |")
            continue
        timed_out = any(m.timed_out for m in r.runs)
        wall = "timeout" if timed_out else f"{r.wall:.2f}"
        msgs = r.result.messages if r.result else 0
        size = (r.result.imap_bytes if r.result else 0) / MB
        ratio = "-"
        if base and base.ok and r.ok and r.peer != "fastsync" and r.wall > 0:
            ratio = f"{base.wall / r.wall:.2f}"
        elif base and base.ok and timed_out:
            ratio = f"< {base.wall / r.wall:.3f}"
        status = ("yes" + (f" ({r.note})" if r.note else "")) if r.ok else f"NO: {r.problem}"
        rate = _fmt_rate(msgs, r.wall) if r.result else "-"
        mbs = f"{size / r.wall:,.1f}" if r.result and r.wall > 0 else "-"
        lines.append(
            f"| {r.peer} | {len(r.runs)} | {wall} | {rate} | {mbs} | "
            f"{r.cpu:.2f} | {max(m.rss_max for m in r.runs) / MB:.0f} | "
            f"{max(m.rss_sum for m in r.runs) / MB:.0f} | {status} | {ratio} |"
        )
    lines.append("")
    for peer, op, limit in sc.targets:
        lines.append(_target_line(sc, peer, op, limit))
    lines.extend(f"- {n}" for n in sc.notes)
    return "\n".join(lines).rstrip() + "\n"


def _target_line(sc: Scenario, peer: str, op: str, limit: float) -> str:
    base, other = sc.row("fastsync"), sc.row(peer)
    want = f"fastsync/{peer} {op} {limit}"
    if not (base and other and base.ok and other.runs):
        return f"- target {want}: not measured"
    if any(m.timed_out for m in other.runs):
        ratio = base.wall / other.wall
        return f"- target {want}: {'met' if op == '<=' and ratio <= limit else 'unknown'} " \
               f"({peer} timed out after {other.wall:.0f} s; ratio < {ratio:.3f})"
    if not other.ok:
        return f"- target {want}: {peer} result does not count ({other.problem})"
    ratio = base.wall / other.wall
    met = ratio <= limit if op == "<=" else ratio >= limit
    return f"- target {want}: {'met' if met else 'MISSED'} ({ratio:.2f})"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        m = re.search(r"model name\s*:\s*(.*)", Path("/proc/cpuinfo").read_text())
        cpu = m.group(1) if m else cpu
    except OSError:
        pass
    return (f"{psutil.cpu_count()} CPUs ({cpu}), {psutil.virtual_memory().total / 2**30:.1f} GiB RAM, "
            f"Linux {platform.release()}")


def write_results(path: Path, corpus_name: str, section: str) -> None:
    """Replace (or add) this corpus's section of RESULTS.md, keeping the other corpora's."""
    begin, end = f"<!-- bench:{corpus_name}:begin -->", f"<!-- bench:{corpus_name}:end -->"
    text = path.read_text() if path.exists() else (
        "# fastsync benchmark results\n\nWritten by `make bench` (`python -m bench.run`); "
        "see README.md. Each section is replaced when its corpus is benchmarked again.\n\n")
    block = f"{begin}\n{section.rstrip()}\n{end}\n"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end) + 1:]
    else:
        text = text.rstrip() + "\n\n" + block
    path.write_text(text)
