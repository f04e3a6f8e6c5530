"""A TCP proxy on 127.0.0.1 that adds a fixed round-trip delay without serialising the stream.

The kernel here has no ``sch_netem``, so ``tc ... netem`` cannot emulate a slow link; this
proxy does it in user space for benchmarks and tests.

Contract:
- Every chunk read from one side is written to the other side ``rtt_ms / 2`` milliseconds
  after it was read, in order. Both directions are delayed, so a request/response exchange
  takes one ``rtt_ms`` more than without the proxy.
- Chunks are timestamped on arrival and queued per direction; a writer task sleeps until
  each chunk's due time. Reading never waits for writing, so N pipelined requests cost about
  one round trip, not N (the link is "long", not "slow": bandwidth is not limited).
- Bytes pass through unchanged; a half-close (EOF) is forwarded after the same delay, and
  a connection ends when both directions have ended or either side fails.
- Memory is bounded: a direction holding ``MAX_QUEUED_BYTES`` not yet written stops reading
  until its writer catches up (TCP flow control then slows the sender).

Use in-process (a thread runs the loop) or as a child process::

    with DelayProxy(("127.0.0.1", 143), rtt_ms=50) as proxy:   # thread
        connect("127.0.0.1", proxy.port)
    with spawn_delay_proxy(("127.0.0.1", 143), rtt_ms=50) as port:   # subprocess
        ...
    python -m tools.delayproxy --listen 10143 --to 127.0.0.1:143 --rtt-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType

log = logging.getLogger(__name__)

HOST = "127.0.0.1"
READ_SIZE = 256 * 1024
MAX_QUEUED_BYTES = 64 * 1024 * 1024
START_TIMEOUT = 10.0


class _Direction:
    """One direction of one connection: a reader task fills a queue, a writer task drains it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float,
                 tap: Tap | None = None) -> None:
        self.reader = reader
        self.writer = writer
        self.delay = delay
        self.tap = tap
        self.queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        self.queued = 0
        self.room = asyncio.Event()
        self.room.set()

    async def pump_in(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self.room.wait()
            data = await self.reader.read(READ_SIZE)
            if self.tap is not None and data:
                self.tap(data)
            # An empty chunk is the EOF marker; it is delayed like data.
            self.queue.put_nowait((loop.time() + self.delay, data))
            if not data:
                return
            self.queued += len(data)
            if self.queued >= MAX_QUEUED_BYTES:
                self.room.clear()

    async def pump_out(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            due, data = await self.queue.get()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if self.writer.can_write_eof():
                    self.writer.write_eof()
                return
            self.writer.write(data)
            await self.writer.drain()
            self.queued -= len(data)
            if self.queued < MAX_QUEUED_BYTES:
                self.room.set()

    async def run(self) -> None:
        tasks = [asyncio.ensure_future(self.pump_in()), asyncio.ensure_future(self.pump_out())]
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()


def _no_delay(writer: asyncio.StreamWriter) -> None:
    # Without TCP_NODELAY, Nagle would add its own delays on top of the configured one.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


Tap = Callable[[bytes], None]


class DelayServer:
    """The asyncio part: listens on ``HOST:listen_port`` (0 = any free port) and forwards each
    connection to ``target`` with ``rtt_ms / 2`` of delay each way. ``tap``, if given, sees
    every chunk the clients send (on the proxy's loop thread), e.g. to count commands."""

    def __init__(self, target: tuple[str, int], rtt_ms: float, listen_port: int = 0,
                 tap: Tap | None = None) -> None:
        if rtt_ms < 0:
            raise ValueError(f"delay proxy rtt_ms must be >= 0, not {rtt_ms}")
        self.target = target
        self.delay = rtt_ms / 2000.0
        self.listen_port = listen_port
        self.tap = tap
        self.port = 0
        self.server: asyncio.Server | None = None
        self.connections: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, HOST, self.listen_port)
        self.port = int(self.server.sockets[0].getsockname()[1])
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
        for task in list(self.connections):
            task.cancel()
        await asyncio.gather(*self.connections, return_exceptions=True)

    async def _serve(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self.connections.add(task)
        try:
            await self._forward(c_reader, c_writer)
        finally:
            self.connections.discard(task)

    async def _forward(self, c_reader: asyncio.StreamReader, c_writer: asyncio.StreamWriter) -> None:
        try:
            s_reader, s_writer = await asyncio.open_connection(*self.target)
        except OSError as exc:
            log.warning("delay proxy cannot reach %s:%d: %s", *self.target, exc)
            c_writer.close()
            return
        for w in (c_writer, s_writer):
            _no_delay(w)
        up = _Direction(c_reader, s_writer, self.delay, self.tap)
        down = _Direction(s_reader, c_writer, self.delay)
        tasks = [asyncio.ensure_future(up.run()), asyncio.ensure_future(down.run())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                # A reset on either side ends the whole connection, as it would on a real link.
                if (failure := task.exception()) is not None:
                    if not isinstance(failure, OSError):
                        raise failure
                    log.debug("delay proxy connection ended: %s", failure)
        finally:
            for task in tasks:
                task.cancel()
            for w in (c_writer, s_writer):
                w.close()


class DelayProxy:
    """A DelayServer on its own event loop in a daemon thread; ``port`` is valid after start()."""

    def __init__(self, target: tuple[str, int], rtt_ms: float, listen_port: int = 0,
                 tap: Tap | None = None) -> None:
        self.server = DelayServer(target, rtt_ms, listen_port, tap)
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: threading.Thread | None = None
        self._stopped: asyncio.Event | None = None

    @property
    def port(self) -> int:
        return self.server.port

    def start(self) -> int:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def main() -> None:
            self._stopped = asyncio.Event()
            try:
                await self.server.start()
            except OSError as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            await self._stopped.wait()
            await self.server.close()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            try:
                self.loop.run_until_complete(main())
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=run, name="delayproxy", daemon=True)
        self.thread.start()
        if not ready.wait(START_TIMEOUT):
            raise RuntimeError(f"delay proxy to {self.server.target} did not start in {START_TIMEOUT}s")
        if failure:
            raise RuntimeError(f"delay proxy cannot listen on {HOST}:{self.server.listen_port}: {failure[0]}")
        return self.port

    def stop(self) -> None:
        if self.loop is None or self.thread is None or self._stopped is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already ended
            self.loop.call_soon_threadsafe(self._stopped.set)
        self.thread.join(START_TIMEOUT)
        self.thread = None

    def __enter__(self) -> DelayProxy:
        self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


@contextlib.contextmanager
def spawn_delay_proxy(target: tuple[str, int], rtt_ms: float) -> Iterator[int]:
    """Run the proxy as a child process (its CPU then competes fairly, outside our GIL);
    yields the listening port and terminates the child on exit."""
    repo = str(Path(__file__).resolve().parent.parent)
    env = dict(os.environ, PYTHONPATH=repo + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [sys.executable, "-m", "tools.delayproxy", "--listen", "0",
           "--to", f"{target[0]}:{target[1]}", "--rtt-ms", str(rtt_ms)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.startswith("listening "):
            raise RuntimeError(f"delay proxy child did not start (exit {proc.poll()}): {line.strip()!r}")
        yield int(line.split()[1])
    finally:
        proc.terminate()
        try:
            proc.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _serve_forever(target: tuple[str, int], rtt_ms: float, listen_port: int) -> None:
    server = DelayServer(target, rtt_ms, listen_port)
    port = await server.start()
    print(f"listening {port}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await server.close()


def main(argv: list[str] | None = None) -> int:
    """CLI: run the delay proxy until interrupted; prints ``listening PORT`` once ready."""
    parser = argparse.ArgumentParser(prog="python -m tools.delayproxy", description=main.__doc__)
    parser.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1 (0: any free port)")
    parser.add_argument("--to", required=True, help="HOST:PORT to forward to")
    parser.add_argument("--rtt-ms", type=float, required=True, help="round-trip delay added, in ms")
    args = parser.parse_args(argv)
    host, _, port = args.to.rpartition(":")
    if not host or not port.isdigit():
        parser.error(f"--to must be HOST:PORT, not {args.to!r}")
    try:
        import uvloop

        uvloop.run(_serve_forever((host, int(port)), args.rtt_ms, args.listen))
    except ImportError:
        asyncio.run(_serve_forever((host, int(port)), args.rtt_ms, args.listen))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
