"""tools/delayproxy.py: adds the configured round trip, keeps bytes intact, keeps pipelining."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
import time
from collections.abc import Iterator

import pytest

from tools.delayproxy import DelayProxy, spawn_delay_proxy

RTT_MS = 100.0
LINE = 64


class _EchoHandler(socketserver.BaseRequestHandler):
    """Echoes every byte back as it arrives."""

    def handle(self) -> None:
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while data := self.request.recv(65536):
            self.request.sendall(data)


@pytest.fixture
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _EchoHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield int(server.server_address[1])
    server.shutdown()
    server.server_close()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    chunks = []
    while n:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise AssertionError(f"connection closed with {n} bytes missing")
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def _round_trip(sock: socket.socket, payload: bytes) -> float:
    began = time.monotonic()
    sock.sendall(payload)
    assert _recv_exactly(sock, len(payload)) == payload
    return time.monotonic() - began


def test_one_round_trip_costs_the_configured_rtt(echo_port: int) -> None:
    with DelayProxy(("127.0.0.1", echo_port), rtt_ms=RTT_MS) as proxy, _connect(proxy.port) as sock:
        samples = sorted(_round_trip(sock, b"x" * LINE) for _ in range(5))
    median_ms = samples[2] * 1000
    assert RTT_MS * 0.95 <= median_ms <= RTT_MS * 1.5, f"round trip took {median_ms:.1f} ms"


def test_pipelined_requests_cost_one_round_trip_not_one_each(echo_port: int) -> None:
    requests = 20
    with DelayProxy(("127.0.0.1", echo_port), rtt_ms=RTT_MS) as proxy, _connect(proxy.port) as sock:
        began = time.monotonic()
        for i in range(requests):
            sock.sendall(f"{i:0{LINE}d}".encode())
            time.sleep(0.002)  # separate chunks, as separate commands would be
        got = _recv_exactly(sock, requests * LINE)
        elapsed_ms = (time.monotonic() - began) * 1000
    assert got == b"".join(f"{i:0{LINE}d}".encode() for i in range(requests))
    # Serialised, 20 requests would take 20 RTTs (2 s); pipelined, one RTT plus the sending time.
    assert elapsed_ms < RTT_MS * 2, f"{requests} pipelined requests took {elapsed_ms:.0f} ms"


def test_bytes_pass_intact_both_ways_through_the_child_process(echo_port: int) -> None:
    payload = os.urandom(3 * 1024 * 1024)
    received: list[bytes] = []
    with spawn_delay_proxy(("127.0.0.1", echo_port), rtt_ms=20) as port, _connect(port) as sock:
        reader = threading.Thread(target=lambda: received.append(_recv_exactly(sock, len(payload))))
        reader.start()
        sock.sendall(payload)
        reader.join(30)
    assert received and received[0] == payload


def test_half_close_is_forwarded_after_the_data(echo_port: int) -> None:
    with DelayProxy(("127.0.0.1", echo_port), rtt_ms=20) as proxy, _connect(proxy.port) as sock:
        sock.sendall(b"last words")
        sock.shutdown(socket.SHUT_WR)
        data = b""
        while chunk := sock.recv(100):
            data += chunk
    assert data == b"last words"
