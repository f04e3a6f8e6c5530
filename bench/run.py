"""The benchmark: fastsync against mbsync, OfflineIMAP and a limit client, on one private Dovecot.

    python -m bench.run [--corpus small|medium|huge] [--scenarios 1,2,3,4,5,6] [--runs 3] [--quick]

Scenarios: 1 first full pull; 2 no-change re-sync; 3 re-sync after 100 new messages and 500
flag changes; 4 = 1 and 2 through a 50 ms round trip (tools/delayproxy.py); 5 one folder of
200,000 messages (corpus "huge") or 1,000,000 (corpus "million"), first pull and re-sync;
6 peak memory (from scenario 1); 7 the one big folder after a 1 % change (half new
messages, half flag toggles). ``--messages N`` sets the size of the one big folder.
Every run starts from an empty destination where the scenario says so, and every result is
checked against the server (messages, bytes, \\Flagged count): an incomplete run is marked
and gets no ratio. Tables go to stdout and into bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import logging
import os
import re
import secrets
import shutil
import sys
import tempfile
import threading
from pathlib import Path

from bench.corpora import CORPORA, ONE_FOLDER, CorpusChoice, change_server, change_share, corpus
from bench.measure import MB, run_measured
from bench.peers import INSTALLED, Account, Peer, make_peers, versions, warm_up
from bench.report import Row, Scenario, machine, render, write_results
from bench.verify import Tally, tally
from tools.corpus import generate
from tools.delayproxy import DelayProxy, spawn_delay_proxy
from tools.dovecot import Dovecot, User, ensure_dovecot

log = logging.getLogger("bench")
ALL_PEERS = ["fastsync", "fastsync-1", "mbsync", "offlineimap-1", "offlineimap-4", "limit", "limit-4"]
SLOW = ("offlineimap-1", "offlineimap-4")
RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


class Bench:
    def __init__(self, args: argparse.Namespace, choice: CorpusChoice, dovecot: Dovecot, user: User) -> None:
        self.args = args
        self.choice = choice
        self.dovecot = dovecot
        self.user = user
        self.peers = make_peers(Path(args.workdir), args.peers)
        warm_up()
        self.generation = 0  # bumped at each server change
        self.synced: dict[str, int] = {}  # peer -> generation its destination holds
        self.timed_out: set[str] = set()  # peers that hit the timeout once: not retried
        self._source: tuple[int, Tally] | None = None

    def account(self, port: int | None = None) -> Account:
        return Account(self.dovecot.host, port or self.dovecot.port, self.user.name, self.user.password)

    def source(self) -> Tally:
        if self._source is None or self._source[0] != self.generation:
            self._source = (self.generation, tally(self.user.maildir))
        return self._source[1]

    def runs_for(self, peer: Peer, runs: int) -> int:
        return min(runs, self.args.slow_runs) if peer.name in SLOW else runs

    def measure(self, peer: Peer, row: Row, acct: Account, label: str) -> bool:
        """One timed run of ``peer``; checks its destination; False when it failed."""
        timeout = self.args.timeout
        logfile = Path(self.args.workdir) / "logs" / f"{peer.name}-{label}-{len(row.runs)}.log"
        logfile.parent.mkdir(parents=True, exist_ok=True)
        # Start every timed run with no dirty pages left by the one before (or by the wipe):
        # otherwise their writeback lands on whoever runs next, fsyncing tools most of all.
        os.sync()
        m = run_measured(
            peer.command(acct),
            env=peer.env(),
            timeout=timeout,
            log_path=logfile,
            cwd=Path(__file__).resolve().parent.parent,
        )
        row.runs.append(m)
        print(
            f"  {peer.name:14s} {label:12s} wall {m.wall:8.2f}s cpu {m.cpu:7.2f}s "
            f"rss {m.rss_max / MB:6.0f}/{m.rss_sum / MB:6.0f} MB exit {m.returncode}",
            flush=True,
        )
        if m.timed_out:
            row.problem = f"timeout after {timeout:.0f} s"
            self.timed_out.add(peer.name)
            return False
        row.result = tally(peer.mail)
        diff = row.result.differences(self.source())
        if m.returncode != 0 or diff:
            row.problem = (f"exit {m.returncode}; " if m.returncode else "") + (diff or "")
            row.problem += f" (log {logfile})" if m.returncode else ""
            return False
        row.note = row.result.altered(self.source())
        self.synced[peer.name] = self.generation
        return True

    # -- scenarios --------------------------------------------------------------------------
    def first_pull(self, key: str, title: str, acct: Account, runs: int) -> Scenario:
        sc = Scenario(key, title)
        for peer in self.peers:
            row = Row(peer.name)
            sc.rows.append(row)
            for _ in range(self.runs_for(peer, runs)):
                peer.wipe()
                self.synced.pop(peer.name, None)
                if not self.measure(peer, row, acct, f"s{key}-pull"):
                    break
        return sc

    def resync(self, key: str, title: str, acct: Account, runs: int) -> Scenario:
        sc = Scenario(key, title)
        for peer in self.peers:
            if not peer.has_state:
                continue
            row = Row(peer.name)
            sc.rows.append(row)
            if not self.ensure_synced(peer, acct, row):
                continue
            for _ in range(self.runs_for(peer, runs)):
                if not self.measure(peer, row, acct, f"s{key}-resync"):
                    break
        return sc

    def ensure_synced(self, peer: Peer, acct: Account, row: Row) -> bool:
        """Bring ``peer`` to the server's current state with an untimed run when it is not."""
        if self.synced.get(peer.name) == self.generation:
            return True
        if peer.name in self.timed_out:
            row.problem = "skipped: a full pull of this corpus timed out before"
            return False
        scratch = Row(peer.name)
        peer.wipe()
        if self.measure(peer, scratch, acct, "prepare"):
            return True
        row.problem = f"could not prepare: {scratch.problem}"
        return False

    def changed_resync(self, runs: int) -> Scenario:
        sc = Scenario("3", "Scenario 3: re-sync after 100 new messages and 500 flag changes (loopback)")
        acct = self.account()
        stateful = [p for p in self.peers if p.has_state]
        rows = {p.name: Row(p.name) for p in stateful}
        sc.rows.extend(rows.values())
        ready = {p.name for p in stateful if self.ensure_synced(p, acct, rows[p.name])}
        for round_no in range(runs):
            change_server(self.user, self.choice.spec, round_no + 1)
            self.generation += 1
            for peer in stateful:
                if peer.name not in ready or (round_no and not rows[peer.name].ok):
                    continue
                if round_no >= self.runs_for(peer, runs):
                    # Not timed this round, but it must follow the server for the next one.
                    self.measure(peer, Row(peer.name), acct, "catch-up")
                    continue
                self.measure(peer, rows[peer.name], acct, "s3-changed")
        sc.notes.append(
            "each run: 100 new messages in INBOX + 500 \\Flagged toggles over all folders "
            "(by STORE), applied once and then synced by every tool in turn"
        )
        return sc

    def share_resync(self, runs: int) -> Scenario:
        """Scenario 7: each round changes 1 % of the big folder, then every stateful tool syncs."""
        sc = Scenario("7", "Scenario 7: re-sync after a 1 % change of the one big folder (loopback)")
        acct = self.account()
        stateful = [p for p in self.peers if p.has_state]
        rows = {p.name: Row(p.name) for p in stateful}
        sc.rows.extend(rows.values())
        ready = {p.name for p in stateful if self.ensure_synced(p, acct, rows[p.name])}
        changed = (0, 0)
        for round_no in range(runs):
            changed = change_share(self.user, self.choice.spec.folders[0], round_no + 1)
            self.generation += 1
            for peer in stateful:
                if peer.name in ready and (not round_no or rows[peer.name].ok):
                    self.measure(peer, rows[peer.name], acct, "s7-changed")
        sc.notes.append(
            f"each run: {changed[0]:,} new messages delivered + {changed[1]:,} \\Flagged toggles "
            "(by STORE), applied once and then synced by every tool in turn"
        )
        return sc

    def selects_on_noop(self, acct: Account) -> str:
        """Run fastsync once more with nothing changed, through a counting proxy; report SELECTs."""
        peer = next((p for p in self.peers if p.name == "fastsync"), None)
        if peer is None or self.synced.get("fastsync") != self.generation:
            return "not checked (fastsync not synced)"
        seen: list[bytes] = []
        lock = threading.Lock()

        def tap(data: bytes) -> None:
            with lock:
                seen.append(data)

        with DelayProxy((acct.host, acct.port), rtt_ms=0, tap=tap) as proxy:
            row = Row("fastsync")
            self.measure(peer, row, self.account(proxy.port), "s2-selects")
        sent = b"".join(seen)
        count = len(re.findall(rb"(?im)^\S+ (?:UID )?(?:SELECT|EXAMINE) ", sent))
        return f"fastsync no-change re-sync sent {count} SELECT/EXAMINE commands (target: 0)"

    def state_bytes(self) -> list[str]:
        msgs = self.source().messages
        out = []
        for peer in self.peers:
            if peer.name in ("fastsync", "mbsync") and peer.state.exists():
                size = sum(f.stat().st_size for f in peer.state.rglob("*") if f.is_file())
                out.append(
                    f"{peer.name} state on disk: {size:,} bytes = {size / max(msgs, 1):.1f} "
                    f"bytes per message" + (" (target <= 16)" if peer.name == "fastsync" else "")
                )
        return out


def _memory_table(s1: Scenario) -> Scenario:
    sc = Scenario("6", "Scenario 6: peak memory during the first pull (loopback)")
    sc.rows = s1.rows
    for row in s1.rows:
        if not row.runs:
            continue
        peak = max(m.rss_max for m in row.runs) / MB
        total = max(m.rss_sum for m in row.runs) / MB
        target = f" ({'met' if peak <= 80 else 'MISSED'} target <= 80 MB)" if row.peer == "fastsync" else ""
        sc.notes.append(
            f"{row.peer}: largest single process {peak:.0f} MB{target}, whole process tree {total:.0f} MB"
        )
    return sc


def _memory_notes(sc: Scenario) -> None:
    """The big folder's memory target: the largest process <= 80 MB, beside mbsync's."""
    base, peer = sc.row("fastsync"), sc.row("mbsync")
    if not (base and base.runs):
        return
    peak = max(m.rss_max for m in base.runs) / MB
    tree = max(m.rss_sum for m in base.runs) / MB
    note = (
        f"fastsync peak RSS: largest process {peak:.0f} MB ({'met' if peak <= 80 else 'MISSED'} "
        f"target <= 80 MB), whole process tree {tree:.0f} MB"
    )
    if peer and peer.runs:
        other = max(m.rss_max for m in peer.runs) / MB
        note += f"; mbsync {other:.0f} MB (fastsync/mbsync {peak / max(other, 1):.2f})"
    sc.notes.append(note)


def _setup(args: argparse.Namespace, choice: CorpusChoice) -> tuple[Dovecot, User]:
    ensure_dovecot()
    missing = [
        tool
        for tool, peer in (("mbsync", "mbsync"), ("offlineimap", "offlineimap-1"))
        if peer in args.peers and shutil.which(tool) is None
    ]
    if missing:
        raise SystemExit(f"bench: {', '.join(missing)} missing; run tools/setup.sh --bench (make bench does)")
    base = Path(args.workdir) / "dovecot"
    shutil.rmtree(base, ignore_errors=True)
    dovecot = Dovecot(base, ssl=False)
    dovecot.start()
    user = dovecot.add_user("bench", secrets.token_urlsafe(12))
    summary = generate(user.maildir, choice.spec)
    print(
        f"corpus {choice.name}: {summary.total_messages} messages, "
        f"{summary.total_imap_bytes / MB:.0f} MB, {len(summary.folders)} folders "
        f"(generated in {summary.seconds:.1f}s)",
        flush=True,
    )
    # Let Dovecot index every folder before anyone is timed, so no tool pays for it.
    client = user.connect()
    try:
        for flags, _delim, name in client.list_folders():
            if b"\\Noselect" in flags or b"\\NonExistent" in flags:
                continue
            if client.select_folder(name, readonly=True).get(b"EXISTS"):
                # UID per message line by line (a SEARCH ALL answer of 200,000 UIDs is one
                # line longer than imaplib accepts; imapclient 4 refuses 1:*)
                client._imap.fetch("1:*", "(UID)")
    finally:
        client.logout()
    return dovecot, user


def run(args: argparse.Namespace) -> list[Scenario]:
    choice = corpus(args.corpus, args.quick, args.messages)
    dovecot, user = _setup(args, choice)
    bench = Bench(args, choice, dovecot, user)
    out: list[Scenario] = []
    wanted = set(args.scenarios)

    def step(sc: Scenario, targets: list[tuple[str, str, float]] | None = None) -> Scenario:
        sc.targets = targets or []
        out.append(sc)
        print(render(sc), flush=True)
        return sc

    try:
        acct = bench.account()
        huge = args.corpus in ONE_FOLDER
        if wanted & {"1", "5", "6"}:
            title = f"Scenario {'5' if huge else '1'}: first full pull (loopback)"
            s1 = bench.first_pull("5a" if huge else "1", title, acct, args.runs)
            if huge:
                _memory_notes(s1)
            s1 = step(
                s1,
                []
                if huge
                else [
                    ("mbsync", "<=", 0.8),
                    ("limit", "<=", 1.3),
                    ("limit-4", "<=", 1.3),
                    ("offlineimap-1", "<=", 0.1),
                    ("offlineimap-4", "<=", 0.1),
                ],
            )
            if "6" in wanted and not huge:
                step(_memory_table(s1))
        if wanted & {"2", "5"}:
            title = f"Scenario {'5' if huge else '2'}: no-change re-sync (loopback)"
            s2 = bench.resync("5b" if huge else "2", title, acct, args.runs)
            if "fastsync" in args.peers:
                s2.notes.append(bench.selects_on_noop(acct))
            if huge:
                _memory_notes(s2)
                s2.notes.extend(bench.state_bytes())
            step(
                s2,
                [("mbsync", "<=", 0.5)]
                if huge
                else [("offlineimap-1", "<=", 0.5), ("offlineimap-4", "<=", 0.5)],
            )
        if "3" in wanted and not huge:
            step(bench.changed_resync(args.runs))
        if "7" in wanted and huge:
            s7 = bench.share_resync(args.runs)
            _memory_notes(s7)
            step(s7)
        if "4" in wanted and not huge:
            rtt = f"{args.rtt_ms:g} ms RTT"
            with spawn_delay_proxy((dovecot.host, dovecot.port), args.rtt_ms) as port:
                slow = bench.account(port)
                step(
                    bench.first_pull(
                        "4a", f"Scenario 4a: first full pull through {rtt}", slow, args.delay_runs
                    ),
                    [("mbsync", "<=", 0.5)],
                )
                step(
                    bench.resync(
                        "4b", f"Scenario 4b: no-change re-sync through {rtt}", slow, args.delay_runs
                    ),
                    [("mbsync", "<=", 0.3)],
                )
    finally:
        dovecot.stop()
    return out


def _section(args: argparse.Namespace, scenarios: list[Scenario]) -> str:
    choice = corpus(args.corpus, args.quick, args.messages)
    vers = versions()
    spec = choice.spec
    lines = [
        f"## Corpus `{choice.name}`{' (quick: a tenth)' if args.quick else ''}",
        "",
        f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {machine()}",
        "- versions: " + ", ".join(f"{k} {v}" for k, v in vers.items()),
        f"- corpus: {spec.messages:,} messages in {len(spec.folders)} folder(s), {choice.description}; "
        f"seed {spec.seed}",
        f"- runs: {args.runs} per tool on loopback (median shown), {args.delay_runs} through the delay "
        f"proxy; OfflineIMAP at most {args.slow_runs}, each run capped at {args.timeout:.0f} s",
        "- fastsync: maxconnections = 4 (fastsync-1: maxconnections = 1), "
        + ("installed by pip into bench/work/venv; " if INSTALLED.exists() else "run from the repository; ")
        + "mbsync: default settings (FSync on); OfflineIMAP: "
        "maxconnections 1 and 4; limit / limit-4 = bench/limit_client.py with 1 / 4 connections "
        "(everything pipelined, no fsync, no state; it shares folders out between connections, so "
        "on a one-folder corpus limit-4 uses one)",
        "- memory: peak RSS of the largest process and of the whole process tree, sampled together",
        "- ratio column: fastsync wall / this tool's wall (below 1: fastsync is faster)",
        "",
    ]
    return "\n".join(lines) + "\n".join(render(sc) for sc in scenarios)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    p.add_argument("--corpus", choices=CORPORA, default="small")
    p.add_argument(
        "--messages", type=int, default=None, help="size of the one big folder (huge, million corpora)"
    )
    p.add_argument(
        "--scenarios",
        default=None,
        help="comma-separated, e.g. 1,2,3,4 (default: all that "
        "apply: 1,2,3,4,6 for small/medium, 5,7 for huge/million)",
    )
    p.add_argument(
        "--runs",
        type=int,
        default=None,
        help="timed runs per tool on loopback (default 3 for small, 1 otherwise)",
    )
    p.add_argument("--delay-runs", type=int, default=None, help="timed runs through the delay proxy")
    p.add_argument("--slow-runs", type=int, default=None, help="at most this many OfflineIMAP runs")
    p.add_argument("--timeout", type=float, default=900.0, help="seconds before a run is killed")
    p.add_argument("--rtt-ms", type=float, default=50.0)
    p.add_argument("--peers", default=",".join(ALL_PEERS))
    p.add_argument("--quick", action="store_true", help="a tenth of the corpus, one run: to try it out")
    p.add_argument(
        "--workdir", default=None, help="where mail and state go (default: a new dir under bench/work/)"
    )
    p.add_argument("--keep", action="store_true", help="keep the work directory")
    p.add_argument("--no-results", action="store_true", help="do not write bench/RESULTS.md")
    args = p.parse_args(argv)
    args.peers = [n.strip() for n in args.peers.split(",") if n.strip()]
    default_scen = "5,7" if args.corpus in ONE_FOLDER else "1,2,3,4,6"
    args.scenarios = [s.strip() for s in (args.scenarios or default_scen).split(",")]
    many = args.corpus == "small" and not args.quick
    args.runs = args.runs or (3 if many else 1)
    args.delay_runs = args.delay_runs or (2 if many else 1)
    args.slow_runs = args.slow_runs or (2 if many else 1)
    if args.corpus == "huge" and args.peers == ALL_PEERS:
        # OfflineIMAP would take hours; limit-4 splits by folder, so on one folder it is "limit"
        args.peers = ["fastsync", "fastsync-1", "mbsync", "limit"]
    if args.corpus == "million" and args.peers == ALL_PEERS:
        args.peers = ["fastsync", "mbsync"]
        args.timeout = max(args.timeout, 3600.0)
    return args


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    own_dir = args.workdir is None
    # not /tmp: on some machines (this project's among them) creating files there is many
    # times slower than on the disk the project lives on, and would dominate every figure
    work_root = Path(__file__).resolve().parent / "work"
    work_root.mkdir(exist_ok=True)
    args.workdir = args.workdir or tempfile.mkdtemp(prefix="run-", dir=work_root)
    try:
        scenarios = run(args)
    finally:
        if own_dir and not args.keep:
            shutil.rmtree(args.workdir, ignore_errors=True)
    section = _section(args, scenarios)
    print(section)
    if not args.no_results:
        write_results(RESULTS, args.corpus, section)
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
