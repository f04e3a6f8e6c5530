"""The benchmark's limit client: the least work that copies every message of an account into
Maildir files, as an upper bound on what any synchroniser can do with as many connections.

It logs in and LISTs; then each connection (one process each, folders shared out by message
count) pipelines ``SELECT`` + ``UID FETCH 1:* (FLAGS BODY.PEEK[])`` for all its folders in one
write and parses the responses as they stream in: literals are cut out of a byte buffer, line
ends become LF, each message is written to ``tmp/`` and renamed into ``cur/`` with its flags.
No state, no fsync, no error recovery: a failure raises and exits 1.

    python -m bench.limit_client --host 127.0.0.1 --port 143 --user U --passfile F [--connections N] DEST
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import socket
import sys
import time
from pathlib import Path

RECV_SIZE = 1 << 20
_LITERAL = re.compile(rb"\{(\d+)\}\r\n$")
_LIST = re.compile(rb'^\* LIST \([^)]*\) (?:"(?:[^"\\]|\\.)*"|NIL) (.*)\r\n$')
_HOSTNAME = "limit"
_FLAGS = re.compile(rb"FLAGS \(([^)]*)\)")
_LETTERS = {b"\\draft": "D", b"\\flagged": "F", b"\\answered": "R", b"\\seen": "S", b"\\deleted": "T"}


class Conn:
    """A plain socket with a receive buffer: line and literal reads, nothing else."""

    def __init__(self, host: str, port: int) -> None:
        self.sock = socket.create_connection((host, port), timeout=300)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.pos = 0

    def _fill(self) -> None:
        if self.pos > RECV_SIZE:
            del self.buf[: self.pos]
            self.pos = 0
        chunk = self.sock.recv(RECV_SIZE)
        if not chunk:
            raise ConnectionError("server closed the connection")
        self.buf += chunk

    def line(self) -> bytes:
        while (end := self.buf.find(b"\r\n", self.pos)) < 0:
            self._fill()
        out = bytes(self.buf[self.pos : end + 2])
        self.pos = end + 2
        return out

    def read(self, n: int) -> bytes:
        while len(self.buf) - self.pos < n:
            self._fill()
        out = bytes(self.buf[self.pos : self.pos + n])
        self.pos += n
        return out

    def response(self) -> tuple[bytes, list[bytes]]:
        """One response line with its literals: (text with literals cut out, literals)."""
        parts: list[bytes] = []
        literals: list[bytes] = []
        while True:
            line = self.line()
            m = _LITERAL.search(line)
            if m is None:
                parts.append(line)
                return b"".join(parts), literals
            parts.append(line[: m.start()])
            literals.append(self.read(int(m.group(1))))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def until_tagged(self, tag: bytes) -> list[tuple[bytes, list[bytes]]]:
        """Responses up to and including the tagged one; raises unless it is OK."""
        out = []
        while True:
            text, literals = self.response()
            out.append((text, literals))
            if text.startswith(tag + b" "):
                if not text.startswith(tag + b" OK"):
                    said = text.decode(errors="replace").strip()
                    raise RuntimeError(f"IMAP command {tag.decode()} failed: {said}")
                return out


def _quote(s: str) -> bytes:
    return b'"' + s.replace("\\", "\\\\").replace('"', '\\"').encode() + b'"'


def _folders(conn: Conn) -> tuple[list[bytes], bytes]:
    conn.send(b'L1 LIST "" "*"\r\n')
    names: list[bytes] = []
    sep = b"."
    for text, literals in conn.until_tagged(b"L1"):
        m = _LIST.match(text)
        if m is None or re.search(rb"(?i)\\(?:Noselect|NonExistent)", text[: m.start(1)]):
            continue
        if literals:
            names.append(literals[0])
            continue
        raw = m.group(1)
        if raw.startswith(b'"'):
            raw = re.sub(rb"\\(.)", rb"\1", raw[1:-1])
        names.append(raw)
        sep_m = re.search(rb'\) "((?:[^"\\]|\\.)*)" ', text)
        if sep_m:
            sep = sep_m.group(1)
    return names, sep


def _maildir(dest: Path, name: bytes, sep: bytes) -> Path:
    if name.upper() == b"INBOX":
        path = dest / "INBOX"
    else:
        path = dest / name.replace(sep, b".").decode("ascii", errors="replace")
    for sub in ("tmp", "new", "cur"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    return path


def _maildir_flags(text: bytes) -> str:
    m = _FLAGS.search(text)
    if m is None:
        return ""
    return "".join(sorted(_LETTERS.get(f.lower(), "") for f in m.group(1).split()))


def _login(host: str, port: int, user: str, password: str) -> Conn:
    conn = Conn(host, port)
    conn.line()  # greeting
    conn.send(b"A1 LOGIN " + _quote(user) + b" " + _quote(password) + b"\r\n")
    conn.until_tagged(b"A1")
    return conn


def _sizes(conn: Conn, names: list[bytes]) -> list[int]:
    """Messages per folder (STATUS, pipelined), to share folders out between connections."""
    quoted = [_quote_raw(n) for n in names]
    conn.send(b"".join(b"T%d STATUS %s (MESSAGES)\r\n" % (i, q) for i, q in enumerate(quoted)))
    sizes = []
    for i in range(len(names)):
        count = 0
        for text, _ in conn.until_tagged(b"T%d" % i):
            m = re.search(rb"MESSAGES (\d+)", text)
            if m and text.startswith(b"* STATUS"):
                count = int(m.group(1))
        sizes.append(count)
    return sizes


def _quote_raw(name: bytes) -> bytes:
    return b'"' + name.replace(b"\\", b"\\\\").replace(b'"', b'\\"') + b'"'


def _pull_folders(conn: Conn, dest: Path, names: list[bytes], sep: bytes) -> tuple[int, int]:
    paths = [_maildir(dest, n, sep) for n in names]
    # Everything in one write: the server answers command after command without waiting for us.
    conn.send(b"".join(b"S%d SELECT %s\r\nF%d UID FETCH 1:* (FLAGS BODY.PEEK[])\r\n" % (i, _quote_raw(n), i)
                       for i, n in enumerate(names)))
    count = written = 0
    stamp = int(time.time())
    pid = os.getpid()
    for i, path in enumerate(paths):
        conn.until_tagged(b"S%d" % i)
        tag = b"F%d" % i
        tmp_dir, cur_dir = f"{path}/tmp/", f"{path}/cur/"
        while True:
            text, literals = conn.response()
            if text.startswith(tag + b" "):
                if not text.startswith(tag + b" OK"):
                    raise RuntimeError(f"UID FETCH in {names[i]!r} failed: {text!r}")
                break
            if not literals:
                continue
            data = literals[0].replace(b"\r\n", b"\n")
            base = f"{stamp}.P{pid}Q{count}.{_HOSTNAME}"
            fd = os.open(tmp_dir + base, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            os.rename(tmp_dir + base, cur_dir + base + ":2," + _maildir_flags(text))
            count += 1
            written += len(data)
    conn.send(b"Z LOGOUT\r\n")
    conn.sock.close()
    return count, written


def _child(host: str, port: int, user: str, password: str, dest: Path, names: list[bytes],
           sep: bytes) -> tuple[int, int]:
    return _pull_folders(_login(host, port, user, password), dest, names, sep)


def pull(host: str, port: int, user: str, password: str, dest: Path, connections: int = 1) -> tuple[int, int]:
    """Copy every message of every folder into ``dest`` over ``connections`` connections (one
    process each, folders shared out by message count); returns (messages, bytes written)."""
    conn = _login(host, port, user, password)
    names, sep = _folders(conn)
    if connections <= 1 or len(names) <= 1:
        return _pull_folders(conn, dest, names, sep)
    bins: list[list[bytes]] = [[] for _ in range(connections)]
    load = [0] * connections
    for size, name in sorted(zip(_sizes(conn, names), names, strict=True), reverse=True):
        k = load.index(min(load))
        bins[k].append(name)
        load[k] += size
    with multiprocessing.get_context("fork").Pool(connections - 1) as pool:
        others = pool.starmap_async(_child, [(host, port, user, password, dest, b, sep) for b in bins[1:]])
        mine = _pull_folders(conn, dest, bins[0], sep)
        results = [mine, *others.get()]
    return sum(r[0] for r in results), sum(r[1] for r in results)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.limit_client", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--passfile", type=Path, required=True)
    parser.add_argument("--connections", type=int, default=1, help="connections (one process each)")
    parser.add_argument("dest", type=Path)
    args = parser.parse_args(argv)
    password = args.passfile.read_text().strip()
    count, written = pull(args.host, args.port, args.user, password, args.dest, args.connections)
    print(f"{count} messages, {written} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
