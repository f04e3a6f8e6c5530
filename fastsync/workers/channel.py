"""A worker's two one-way pipes to the supervisor: jobs in, events out. Nothing is shared.

Each worker process (and each IDLE watcher) gets its own pair, so no lock is ever shared
between processes: a worker killed at any moment (SIGKILL, the OOM killer) can block nobody
else. (A ``multiprocessing.Queue`` shared by an account's workers holds a cross-process
lock while one of them waits in ``get()``, and while its feeder thread writes; a worker
killed there left every other worker of the account stuck.)

- Jobs: a ``multiprocessing`` one-way ``Pipe`` per worker; the supervisor sends a job to a
  worker when it is idle (``Pool`` decides who, the schedule what). The worker waits with
  ``poll(timeout)``, so an idle worker can send its keepalive NOOPs.
- Events: a plain ``os.pipe`` per worker carrying length-prefixed msgpack frames (4 bytes
  big-endian, then the payload), written by the worker's one thread with ``os.write``. The
  supervisor reads it non-blocking from its loop into a buffer of its own and decodes whole
  frames only: the half-written frame of a killed worker is dropped with the worker.

Every process is forked from the supervisor and so inherits every descriptor it holds; a
child closes the supervisor's ends of the other workers' channels (and of its own) at once
(``close_inherited``), so that no sibling keeps a dead worker's pipe open.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from fastsync import events as ev

HEADER = 4  # bytes of the big-endian frame length
READ_SIZE = 1 << 16

_open: list[Channel] = []  # the supervisor's ends now open (a forked child closes them all)


@dataclass(eq=False)
class Channel:
    """The supervisor's ends of one worker's pipes: ``jobs`` (None for an IDLE watcher, which
    takes no jobs) and the non-blocking ``events`` descriptor, with the bytes read from it that
    do not make a whole frame yet."""

    jobs: Connection | None
    events: int
    pending: bytearray

    def send(self, job: ev.Job) -> None:
        """One job to the worker. Jobs are small and a worker holds at most one besides a Stop,
        so the write never waits for the worker to read."""
        assert self.jobs is not None
        self.jobs.send_bytes(ev.job_encoder.encode(job))

    def read(self) -> tuple[list[ev.WorkerEvent], bool]:
        """The whole events that have arrived, and whether the worker's end is closed (EOF)."""
        eof = False
        while True:
            try:
                chunk = os.read(self.events, READ_SIZE)
            except BlockingIOError:
                break
            if not chunk:
                eof = True
                break
            self.pending += chunk
        return self._frames(), eof

    def _frames(self) -> list[ev.WorkerEvent]:
        out, buf, at = [], self.pending, 0
        with memoryview(buf) as view:  # released before the buffer is cut
            while len(buf) - at >= HEADER:
                end = at + HEADER + int.from_bytes(view[at : at + HEADER], "big")
                if end > len(buf):
                    break
                out.append(ev.event_decoder.decode(view[at + HEADER : end]))
                at = end
        del buf[:at]
        return out

    def close(self) -> None:
        """Close the supervisor's ends (a torn last frame goes with them); safe to repeat."""
        if self in _open:
            _open.remove(self)
        if self.jobs is not None:
            self.jobs.close()
            self.jobs = None
        if self.events >= 0:
            os.close(self.events)
            self.events = -1
        self.pending.clear()


@dataclass
class WorkerEnds:
    """The child's ends: ``jobs`` to wait on and receive from (None: an IDLE watcher) and
    ``events`` to write frames to."""

    jobs: Connection | None
    events: int

    def close(self) -> None:
        """In the supervisor, right after the fork: the child holds its own copies."""
        if self.jobs is not None:
            self.jobs.close()
        os.close(self.events)


def open_channel(ctx: Any, jobs: bool = True) -> tuple[Channel, WorkerEnds]:
    """A new worker's pipes: the supervisor's ends and the child's. ``jobs=False``: events only."""
    job_r, job_w = ctx.Pipe(duplex=False) if jobs else (None, None)
    ev_r, ev_w = os.pipe()
    os.set_blocking(ev_r, False)
    channel = Channel(job_w, ev_r, bytearray())
    _open.append(channel)
    return channel, WorkerEnds(job_r, ev_w)


def close_inherited() -> None:
    """In a forked child: close the supervisor's ends it inherited (its siblings' and its own)."""
    for channel in list(_open):
        channel.close()


class EventWriter:
    """A worker's side of its event pipe: one frame per event, written whole (``os.write`` is
    retried after a partial write; only the worker's one thread writes)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = bytearray()

    def emit(self, event: ev.Event) -> None:
        buf = self.buffer
        ev.event_encoder.encode_into(event, buf, HEADER)
        buf[:HEADER] = (len(buf) - HEADER).to_bytes(HEADER, "big")
        view = memoryview(buf)
        try:
            while view:
                view = view[os.write(self.fd, view) :]
        finally:
            view.release()
