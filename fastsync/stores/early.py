"""A TCP connection started before it is needed, so its handshake and the server's greeting
travel while a new worker process is still importing its IMAP code.

``start`` begins a non-blocking connect and files the socket under its address; the first
connection to that address takes it (``take``), or opens its own when there is none or the
early one failed (then it reports the failure in its own words). Only cheap modules here.
"""

from __future__ import annotations

import contextlib
import errno
import select
import socket

_pending: dict[tuple[str, int], socket.socket] = {}


def start(host: str, port: int) -> None:
    """Begin connecting to ``host``:``port`` without waiting; never raises."""
    if (host, port) in _pending:
        return
    try:
        family, kind, proto, _name, addr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        sock = socket.socket(family, kind, proto)
    except OSError:
        return
    sock.setblocking(False)
    if sock.connect_ex(addr) not in (0, errno.EINPROGRESS):
        sock.close()
        return
    _pending[(host, port)] = sock


def take(host: str, port: int, timeout: float | None) -> socket.socket | None:
    """The early connection to ``host``:``port`` once established (blocking, ``timeout``
    set), or None: there was none, or it failed or timed out (the caller connects anew)."""
    sock = _pending.pop((host, port), None)
    if sock is None:
        return None
    try:
        _, ready, _ = select.select([], [sock], [], timeout)
        if ready and not sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
            sock.settimeout(timeout)
            return sock
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sock.close()
    return None


def drop() -> None:
    """Close connections started but never taken."""
    while _pending:
        _key, sock = _pending.popitem()
        with contextlib.suppress(OSError):
            sock.close()
