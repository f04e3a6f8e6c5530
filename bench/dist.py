"""Benchmark of the distributed batch: many accounts, several ways of running them.

    python -m bench.dist [--accounts 40] [--messages 200] [--workdir DIR]

Two private Dovecots on 127.0.0.1 (source and destination) and a private redis-server. The
same accounts are copied, each time into fresh destination users, by:
  - ``fastsync worker`` x1 and x2 on the queue (``migrate --batch --queue``), workers started
    first, and x2 with ``--processes 2`` (two accounts at a time per worker);
  - ``fastsync migrate --batch accounts.csv`` on one machine (``--maxsyncaccounts 4``);
  - plain ``fastsync migrate SRC DST`` per account under GNU ``parallel -j4``.
imapsync is not packaged in Debian bookworm and is not installed here, so it is not compared.
Every run is checked (messages per folder on each destination equal the source) before its
figures are printed: accounts/min and MB/s (source RFC822 bytes / wall time).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tools.corpus import CorpusSpec, generate
from tools.dovecot import Dovecot, User, ensure_dovecot
from tools.redis import RedisServer

REPO_ROOT = Path(__file__).resolve().parent.parent
FOLDERS = ["INBOX", "Work", "Sent"]
IMAPSYNC_NOTE = "imapsync: not available (not packaged in Debian bookworm); not compared"


@dataclass
class Setup:
    work: Path
    src: Dovecot
    dst: Dovecot
    redis: RedisServer
    sources: list[User]
    nbytes: int
    env: dict[str, str]


@dataclass
class Result:
    name: str
    seconds: float
    ok: bool
    note: str = ""


def _fastsync(*args: str) -> list[str]:
    return [sys.executable, "-m", "fastsync", *args]


def _csv(s: Setup, tag: str) -> tuple[Path, list[User]]:
    dsts, lines = [], []
    for k, src in enumerate(s.sources):
        d = s.dst.add_user(f"{tag}-{k}", f"pw-{tag}-{k}")
        (s.work / f"{tag}-d{k}").write_text(d.password + "\n")
        dsts.append(d)
        lines.append(f"imap://{src.name}@{s.src.host}:{s.src.port},imap://{d.name}@{s.dst.host}:{s.dst.port},"
                     f"file:{s.work / f's{k}'},file:{s.work / f'{tag}-d{k}'}")
    path = s.work / f"{tag}.csv"
    path.write_text("\n".join(lines) + "\n")
    return path, dsts


def _counts(user: User) -> dict[str, int]:
    c = user.connect()
    try:
        return {f: int(c.folder_status(f, [b"MESSAGES"])[b"MESSAGES"]) if c.folder_exists(f) else 0
                for f in FOLDERS}
    finally:
        c.logout()


def _check(s: Setup, dsts: list[User]) -> bool:
    return all(_counts(src) == _counts(d) for src, d in zip(s.sources, dsts, strict=True))


def run_queue(s: Setup, workers: int, processes: int = 1) -> Result:
    import redis

    redis.Redis.from_url(s.redis.url).flushall()
    path, dsts = _csv(s, f"q{workers}x{processes}")
    procs = []
    for i in range(workers):
        log = open(s.work / f"worker-{workers}-{i}.log", "wb")  # noqa: SIM115
        procs.append(subprocess.Popen(
            _fastsync("worker", "--queue", s.redis.url, "--processes", str(processes),
                      "--metadata", str(s.work / f"meta-q{workers}x{processes}-{i}")),
            stdout=log, stderr=subprocess.STDOUT, env=s.env, start_new_session=True))
    time.sleep(3)  # workers up and listening, as on machines that already run them
    began = time.monotonic()
    enqueue = _fastsync("migrate", "--batch", str(path), "--queue", s.redis.url, "--no-tls1", "--no-tls2",
                        "--workers", "2")
    subprocess.run(enqueue, env=s.env, check=True, capture_output=True)
    while True:
        st = json.loads(subprocess.run(_fastsync("batch", "status", "--queue", s.redis.url, "--json"),
                                       env=s.env, check=True, capture_output=True, text=True).stdout)
        if st["done"] + st["failed"] + st["partial"] == st["accounts"]:
            break
        time.sleep(0.2)
    seconds = time.monotonic() - began
    for p in procs:
        p.terminate()
    for p in procs:
        p.wait(60)
    ok = _check(s, dsts) and st["done"] == len(dsts)
    each = f", --processes {processes} each" if processes > 1 else ""
    return Result(f"fastsync worker x{workers} (--queue{each})", seconds, ok)


def run_batch(s: Setup) -> Result:
    path, dsts = _csv(s, "b")
    began = time.monotonic()
    argv = _fastsync("migrate", "--batch", str(path), "--no-tls1", "--no-tls2", "--workers", "2",
                     "--maxsyncaccounts", "4", "-q", "--metadata", str(s.work / "meta-b"))
    done = subprocess.run(argv, env=s.env, capture_output=True)
    seconds = time.monotonic() - began
    return Result("fastsync migrate --batch (one machine, 4 accounts at a time)", seconds,
                  done.returncode == 0 and _check(s, dsts))


def run_parallel(s: Setup) -> Result:
    if shutil.which("parallel") is None:
        return Result("fastsync migrate per account, GNU parallel -j4", 0.0, False, "parallel not installed")
    path, dsts = _csv(s, "p")
    jobs = []
    for k, line in enumerate(path.read_text().splitlines()):
        src, dst, _p1, _p2 = line.split(",")
        jobs.append(" ".join([
            *_fastsync("migrate", src, dst), "--no-tls1", "--no-tls2", "--workers", "2", "-q",
            "--password1-file", str(s.work / f"s{k}"), "--password2-file", str(s.work / f"p-d{k}"),
            "--metadata", str(s.work / "meta-p"),
        ]))
    (s.work / "parallel.jobs").write_text("\n".join(jobs) + "\n")
    began = time.monotonic()
    with open(s.work / "parallel.jobs", "rb") as jobs_in:
        done = subprocess.run(["parallel", "-j4", "--halt", "never"], stdin=jobs_in, env=s.env,
                              capture_output=True)
    seconds = time.monotonic() - began
    return Result("fastsync migrate per account, GNU parallel -j4", seconds,
                  done.returncode == 0 and _check(s, dsts))


def setup(work: Path, accounts: int, messages: int) -> Setup:
    ensure_dovecot()
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    src = Dovecot(work / "src")
    src.start()
    dst = Dovecot(work / "dst", separator="/")
    dst.start()
    r = RedisServer(work / "redis")
    r.start()
    sources, nbytes = [], 0
    for k in range(accounts):
        u = src.add_user(f"src-{k}", f"pw-src-{k}")
        spec = CorpusSpec(folders=FOLDERS, messages=messages, seed=k + 1, size_mix="small", weird=False)
        nbytes += generate(u.maildir, spec).total_imap_bytes
        (work / f"s{k}").write_text(u.password + "\n")
        sources.append(u)
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    return Setup(work, src, dst, r, sources, nbytes, env)


def render(s: Setup, results: list[Result], accounts: int, messages: int) -> str:
    mb = s.nbytes / 1e6
    base = next((r.seconds for r in results if "parallel" in r.name and r.ok), None)
    lines = [
        f"{accounts} accounts x {messages} messages ({mb:.1f} MB), 2 connections per account, "
        f"{os.cpu_count()} cores",
        "| run | seconds | accounts/min | MB/s | vs parallel -j4 | checked |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        ratio = f"{base / r.seconds:.2f}x" if base and r.seconds else "-"
        if not r.seconds:
            lines.append(f"| {r.name} | - | - | - | - | {r.note} |")
            continue
        rate = f"{accounts / r.seconds * 60:.1f} | {mb / r.seconds:.2f}"
        check = "ok" if r.ok else "FAILED " + r.note
        lines.append(f"| {r.name} | {r.seconds:.1f} | {rate} | {ratio} | {check} |")
    lines.append(IMAPSYNC_NOTE)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.dist")
    p.add_argument("--accounts", type=int, default=40)
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--workdir", default="/var/tmp/fastsync-bench-dist")
    args = p.parse_args(argv)
    s = setup(Path(args.workdir), args.accounts, args.messages)
    try:
        results = [run_queue(s, 1), run_queue(s, 2), run_queue(s, 2, 2), run_batch(s), run_parallel(s)]
    finally:
        s.redis.stop()
        s.src.stop()
        s.dst.stop()
    print(render(s, results, args.accounts, args.messages), flush=True)
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
