"""Benchmark of ``fastsync migrate``: copy the benchmark corpus from one Dovecot user to another
and print messages/s and MB/s beside ``doveadm backup`` (Dovecot copying its own files: the
upper bound) and OfflineIMAP (IMAP -> IMAP config) on the same data.

    python -m bench.migrate [--corpus small|medium|huge] [--quick] [--peers fastsync,doveadm,offlineimap]

Every peer copies into its own fresh destination user; each result is checked (message count
and bytes on the destination equal the source) before it is printed.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

from bench.corpora import corpus
from bench.measure import run_measured
from tools.corpus import generate
from tools.dovecot import Dovecot, User, ensure_dovecot

REPO_ROOT = Path(__file__).resolve().parent.parent
MB = 1e6


@dataclass
class Result:
    peer: str
    wall: float
    cpu: float
    rss_mb: float
    messages: int
    nbytes: int
    ok: bool
    note: str = ""


def totals(user: User) -> tuple[int, int]:
    """Messages and RFC822.SIZE bytes over every selectable folder of ``user``."""
    c = user.connect()
    n = size = 0
    try:
        for flags, _d, name in c.list_folders():
            if b"\\Noselect" in flags:
                continue
            c.select_folder(name, readonly=True)
            uids = c.search("ALL")
            for i in range(0, len(uids), 2000):
                resp = c.fetch(uids[i : i + 2000], [b"RFC822.SIZE"])
                n += len(resp)
                size += sum(int(d[b"RFC822.SIZE"]) for d in resp.values())
    finally:
        c.logout()
    return n, size


def _passfile(work: Path, user: User) -> Path:
    p = work / f"{user.name}.pass"
    p.write_text(user.password + "\n")
    p.chmod(0o600)
    return p


def fastsync_cmd(server: Dovecot, src: User, dst: User, work: Path, workers: int) -> list[str]:
    url = f"imap://{{}}@{server.host}:{server.port}"
    return [
        sys.executable, "-m", "fastsync", "migrate", url.format(src.name), url.format(dst.name),
        "--no-tls1", "--no-tls2", "--password1-file", str(_passfile(work, src)),
        "--password2-file", str(_passfile(work, dst)), "--metadata", str(work / "meta"),
        "--workers", str(workers), "-q",
    ]  # fmt: skip


def doveadm_cmd(server: Dovecot, src: User, dst: User) -> list[str]:
    # dsync writes the destination user's Maildir directly (path inside the mail chroot when
    # root); it must not exist yet, or the two INBOXes' GUIDs clash.
    shutil.rmtree(dst.maildir)
    where = f"/{dst.name}/Maildir" if os.geteuid() == 0 else str(dst.maildir)
    return ["doveadm", "-c", str(server.conf_path), "backup", "-u", src.name, f"maildir:{where}"]


def offlineimap_cmd(server: Dovecot, src: User, dst: User, work: Path, connections: int) -> list[str]:
    cfg = work / "offlineimaprc"
    repo = "type = IMAP\nremotehost = {h}\nremoteport = {p}\nremoteuser = {u}\nremotepassfile = {f}\n" \
        "ssl = no\nstarttls = no\nmaxconnections = {c}\n"  # fmt: skip
    cfg.write_text(
        f"[general]\naccounts = Mig\nmetadata = {work / 'state'}\nui = Quiet\n"
        "[Account Mig]\nlocalrepository = Dst\nremoterepository = Src\n"
        "[Repository Src]\n"
        + repo.format(h=server.host, p=server.port, u=src.name, f=_passfile(work, src), c=connections)
        + "readonly = True\n[Repository Dst]\n"
        + repo.format(h=server.host, p=server.port, u=dst.name, f=_passfile(work, dst), c=connections)
    )
    cfg.chmod(0o600)
    return ["offlineimap", "-c", str(cfg), "-o", "-u", "Quiet"]


def measure(name: str, cmd: list[str], dst: User, want: tuple[int, int], work: Path) -> Result:
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    m = run_measured(cmd, env=env, timeout=3600, log_path=work / f"{name}.log")
    got = totals(dst)
    ok = m.returncode == 0 and got == want
    note = "" if ok else f"exit {m.returncode}, dst {got[0]} msgs/{got[1]} B, src {want[0]}/{want[1]}"
    return Result(name, m.wall, m.cpu, m.rss_sum / 2**20, want[0], want[1], ok, note)


def render(results: list[Result], want: tuple[int, int]) -> str:
    lines = [
        f"migration of {want[0]} messages, {want[1] / MB:.1f} MB, Dovecot user -> Dovecot user",
        f"{'peer':<18} {'wall s':>8} {'cpu s':>8} {'RSS MB':>8} {'msg/s':>9} {'MB/s':>8}  check",
    ]
    for r in results:
        lines.append(
            f"{r.peer:<18} {r.wall:>8.2f} {r.cpu:>8.2f} {r.rss_mb:>8.0f} {r.messages / r.wall:>9.0f} "
            f"{r.nbytes / MB / r.wall:>8.1f}  {'ok' if r.ok else 'DIFFERS: ' + r.note}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench.migrate")
    p.add_argument("--corpus", default="small", choices=["small", "medium", "huge"])
    p.add_argument("--quick", action="store_true", help="a tenth of the corpus")
    p.add_argument("--peers", default="fastsync,doveadm,offlineimap")
    p.add_argument("--workers", type=int, default=4, help="fastsync workers / OfflineIMAP connections")
    p.add_argument("--workdir", default="/tmp/fastsync-bench-migrate")
    args = p.parse_args(argv)
    ensure_dovecot()
    root = Path(args.workdir)
    shutil.rmtree(root, ignore_errors=True)
    server = Dovecot(root / "dovecot", ssl=False)
    server.start()
    try:
        src = server.add_user("src", secrets.token_urlsafe(12))
        choice = corpus(args.corpus, args.quick)
        generate(src.maildir, choice.spec)
        want = totals(src)  # also lets Dovecot index the source before anyone is timed
        results = []
        for peer in [x.strip() for x in args.peers.split(",") if x.strip()]:
            work = root / peer
            work.mkdir(parents=True)
            dst = server.add_user(f"dst-{peer}", secrets.token_urlsafe(12))
            if peer == "fastsync":
                cmd = fastsync_cmd(server, src, dst, work, args.workers)
            elif peer == "doveadm":
                cmd = doveadm_cmd(server, src, dst)
            elif peer == "offlineimap":
                cmd = offlineimap_cmd(server, src, dst, work, args.workers)
            else:
                raise SystemExit(f"bench.migrate: unknown peer {peer!r} (fastsync, doveadm, offlineimap)")
            results.append(measure(peer, cmd, dst, want, work))
            print(render(results[-1:], want).splitlines()[-1], flush=True)
        print(render(results, want))
        return 0 if all(r.ok for r in results) else 1
    finally:
        server.stop()


if __name__ == "__main__":
    raise SystemExit(main())
