"""A fault-injecting TCP proxy for tests: 127.0.0.1:<port> -> an upstream IMAP server.

Each accepted connection gets two pump threads (client -> server "up", server -> client
"down"). Faults are armed on the proxy and fire on the first connection where they match:

- ``Cut(direction, pattern, after, action)``: once ``pattern`` has passed in that direction,
  relay ``after`` more bytes, then ``"close"`` both sockets or ``"stall"`` (relay nothing
  more, keep the sockets open: the client must notice by its timeout);
- ``greeting_then_close``: connections whose number (0, 1, ... in accept order) is in this
  set get the server greeting, then are closed;
- ``delay``: sleep this long before relaying each chunk (both directions);
- ``swallow_append_ok``: the tagged OK of the next APPEND is not relayed, and the
  connection is closed right after the server sent it (the reply is lost, the append done);
- ``strip_starttls``: STARTTLS is removed from every capability list the server sends;
- ``inject_after_starttls``: bytes sent to the client in the same write as the server's
  OK to STARTTLS (plaintext that must not survive the handshake);
- ``rewrite_down``: a function applied to every server line (bytes including CRLF) before
  it is relayed; it may return several lines or none; ``rewrite_up`` the same for every
  client line (literals included: match what you rewrite narrowly).

Line-aware features buffer whole lines (literals pass through as lines too); after a
successful STARTTLS both directions switch to raw relaying. ``up_log`` and ``down_log``
keep every plaintext byte relayed, for assertions on what crossed the wire.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

HOST = "127.0.0.1"
_TAG_CMD = re.compile(rb"^([A-Za-z0-9.]+) (UID )?([A-Za-z]+)", re.I)
_CAP_STARTTLS = re.compile(rb" STARTTLS(?=[ \]\r])", re.I)


@dataclass
class Cut:
    direction: Literal["up", "down"]
    pattern: bytes
    after: int = 0
    action: Literal["close", "stall"] = "close"
    fired: bool = False


@dataclass
class _Conn:
    index: int
    client: socket.socket
    server: socket.socket
    lock: threading.Lock = field(default_factory=threading.Lock)
    raw: bool = False  # after STARTTLS: relay bytes untouched
    starttls_tag: bytes | None = None
    append_tags: set[bytes] = field(default_factory=set)
    closed: bool = False
    stalled: bool = False


class FaultProxy:
    """Start with ``start()`` (or as a context manager); ``port`` is where clients connect."""

    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.cuts: list[Cut] = []
        self.greeting_then_close: set[int] = set()
        self.delay = 0.0
        self.swallow_append_ok = False
        self.strip_starttls = False
        self.inject_after_starttls = b""
        self.rewrite_down: Callable[[bytes], bytes] | None = None
        self.rewrite_up: Callable[[bytes], bytes] | None = None
        self.up_log = bytearray()
        self.down_log = bytearray()
        self.connections = 0
        self.events: list[str] = []  # what fired, in order, for assertions and failure messages
        self._lock = threading.Lock()
        self._conns: list[_Conn] = []
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind((HOST, 0))
        self.port: int = self._listener.getsockname()[1]
        self._stopping = False
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._listener.listen(64)
        self._thread = threading.Thread(target=self._accept_loop, name="faultproxy-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping = True
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        for conn in list(self._conns):
            self._close(conn)
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cut(self, direction: Literal["up", "down"], pattern: bytes, after: int = 0,
            action: Literal["close", "stall"] = "close") -> Cut:
        c = Cut(direction, pattern, after, action)
        with self._lock:
            self.cuts.append(c)
        return c

    # -- plumbing ----------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                server = socket.create_connection(self.upstream, timeout=10)
                server.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                conn = _Conn(self.connections, client, server)
                self.connections += 1
                self._conns.append(conn)
                greet_close = conn.index in self.greeting_then_close
            if greet_close:
                threading.Thread(target=self._greet_and_close, args=(conn,), daemon=True).start()
                continue
            for direction in ("up", "down"):
                threading.Thread(
                    target=self._pump, args=(conn, direction), name=f"faultproxy-{direction}", daemon=True
                ).start()

    def _greet_and_close(self, conn: _Conn) -> None:
        with contextlib.suppress(OSError):
            greeting = conn.server.recv(4096)
            conn.client.sendall(greeting)
            self.events.append(f"conn {conn.index}: greeting then close")
        self._close(conn)

    def _close(self, conn: _Conn) -> None:
        with conn.lock:
            if conn.closed:
                return
            conn.closed = True
        for s in (conn.client, conn.server):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _line_mode(self) -> bool:
        return bool(self.swallow_append_ok or self.strip_starttls or self.inject_after_starttls
                    or self.rewrite_down or self.rewrite_up)

    def _pump(self, conn: _Conn, direction: str) -> None:
        src, dst = (conn.client, conn.server) if direction == "up" else (conn.server, conn.client)
        log = self.up_log if direction == "up" else self.down_log
        pending = b""
        try:
            while True:
                chunk = src.recv(65536)
                if not chunk:
                    break
                if conn.stalled:
                    continue  # swallow everything; the peer must time out
                if self.delay:
                    time.sleep(self.delay)
                if conn.raw or not self._line_mode():
                    out = pending + chunk
                    pending = b""
                else:
                    pending += chunk
                    cut_at = pending.rfind(b"\n") + 1
                    if not cut_at:
                        continue
                    lines, pending = pending[:cut_at], pending[cut_at:]
                    kept = self._lines(conn, direction, lines)
                    if kept is None:  # the connection is to be dropped
                        self._close(conn)
                        return
                    out = kept
                if not conn.raw:
                    log.extend(out)
                out, stop = self._apply_cuts(conn, direction, out)
                if out:
                    dst.sendall(out)
                if stop == "close":
                    self._close(conn)
                    return
                if stop == "stall":
                    conn.stalled = True
        except OSError:
            pass
        if not conn.stalled:
            self._close(conn)

    def _apply_cuts(self, conn: _Conn, direction: str, data: bytes) -> tuple[bytes, str | None]:
        with self._lock:
            for c in self.cuts:
                if c.fired or c.direction != direction:
                    continue
                i = data.find(c.pattern)
                if i < 0:
                    continue
                c.fired = True
                end = i + len(c.pattern) + c.after
                self.events.append(f"conn {conn.index}: {c.action} {direction} after {c.pattern!r}+{c.after}")
                if end < len(data):
                    return data[:end], c.action
                # the cut point lies beyond this chunk: keep counting in the next ones
                c.after = end - len(data)
                c.pattern = b""
                c.fired = False
                return data, None
        return data, None

    def _lines(self, conn: _Conn, direction: str, data: bytes) -> bytes | None:
        out = bytearray()
        for line in data.splitlines(keepends=True):
            if direction == "up":
                self._watch_command(conn, line)
                out += self.rewrite_up(line) if self.rewrite_up is not None else line
                continue
            tag = line.split(b" ", 1)[0]
            ok = line[len(tag) :].upper().startswith(b" OK")
            if ok and conn.starttls_tag is not None and tag == conn.starttls_tag:
                conn.raw = True
                out += line + self.inject_after_starttls
                if self.inject_after_starttls:
                    self.events.append(f"conn {conn.index}: injected after STARTTLS OK")
                continue
            if ok and self.swallow_append_ok and tag in conn.append_tags:
                self.swallow_append_ok = False
                self.events.append(f"conn {conn.index}: swallowed {line.strip()!r}")
                if out:
                    conn.client.sendall(bytes(out))
                return None
            if self.strip_starttls and b"CAPABILITY" in line.upper():
                line = _CAP_STARTTLS.sub(b"", line)
            if self.rewrite_down is not None:
                line = self.rewrite_down(line)
            out += line
        return bytes(out)

    def _watch_command(self, conn: _Conn, line: bytes) -> None:
        m = _TAG_CMD.match(line)
        if not m:
            return
        verb = m.group(3).upper()
        if verb == b"STARTTLS":
            conn.starttls_tag = m.group(1)
        elif verb == b"APPEND":
            conn.append_tags.add(m.group(1))
