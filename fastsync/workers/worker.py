"""The worker process: own connections, a job loop, events out.

A worker is given plain data (the account's config, its passwords, the run options) and
builds everything else itself, inside the child. It takes the jobs the supervisor hands it on
its own pipe (workers.channel) until it gets Stop, keeps its connections open between jobs,
reconnects once when a connection drops mid-folder, and reports every outcome as an event.
SIGINT/SIGTERM ask it to stop after the current batch; the state written so far stays valid.
"""

from __future__ import annotations

import logging
import os
import signal
import time
from typing import Any

import msgspec

from fastsync import events as ev
from fastsync.config import AccountConfig
from fastsync.engine import EngineOptions, copy_range, sync_folder
from fastsync.errors import AccountError, ConfigError, ConnectionLimit, FastsyncError, FolderError, StoreError
from fastsync.folders import FolderPair, load_pythonfile
from fastsync.state import StateFile, part_path, state_path
from fastsync.stores import early, make_store
from fastsync.stores.base import Store
from fastsync.workers import detach_from_supervisor
from fastsync.workers.channel import EventWriter, WorkerEnds

log = logging.getLogger(__name__)


class WorkerSpec(msgspec.Struct, frozen=True):
    worker: int
    account: AccountConfig
    config_path: str
    metadata: str
    engine: EngineOptions
    far_password: str | None = None
    near_password: str | None = None
    pythonfile: str | None = None
    only_folders: tuple[str, ...] = ()
    fsync: bool = True
    debug: bool = False
    logfile: str | None = None
    keepalive: float | None = None  # seconds between NOOPs while idle between jobs; None: never
    memory_limit: int = 0  # bytes of RSS after which the worker leaves between jobs (0: never)


class Interrupted(FastsyncError):
    """Asked to stop; what was done is recorded."""


class Worker:
    def __init__(self, spec: WorkerSpec, ends: WorkerEnds) -> None:
        assert ends.jobs is not None
        self.spec = spec
        self.jobs = ends.jobs
        self.emit = EventWriter(ends.events).emit
        self.far: Store | None = None
        self.near: Store | None = None
        self.stopping = False
        self.waiting = False  # blocked on the job queue, between jobs
        self.copied: dict[str, tuple[int, int]] = {}  # this job's copies so far: what -> (done, bytes)
        self.pyglobals: dict[str, Any] = load_pythonfile(spec.pythonfile) if spec.pythonfile else {}

    def stores(self, *, listing: bool = False) -> tuple[Store, Store]:
        """The connected stores; ``listing``: folders are listed next (discovery), so a far
        server may send its listing along with the login."""
        if self.far is None or self.near is None:
            acct, s = self.spec.account, self.spec
            far = make_store(acct.remote, s.far_password, dry_run=s.engine.dry_run, fsync=s.fsync)
            near = make_store(acct.local, s.near_password, dry_run=s.engine.dry_run, fsync=s.fsync)
            far.connect(prefetch_listing=listing)
            try:
                near.connect(prefetch_listing=listing)
            except BaseException:
                far.close()
                raise
            self.far, self.near = far, near
        return self.far, self.near

    def drop_connections(self) -> None:
        for store in (self.far, self.near):
            if store is not None:
                store.close()
        self.far = self.near = None

    def run(self) -> None:
        """Take jobs until Stop (or until the supervisor is gone). Between jobs (and between
        syncs, when the supervisor keeps the worker: holdconnectionopen) the connections stay
        open; with ``keepalive`` a NOOP goes out every so many idle seconds so the server does not
        drop them."""
        self.emit(ev.WorkerUp(worker=self.spec.worker, pid=os.getpid()))
        try:
            while not self.stopping:
                self.waiting = True
                try:
                    if not self.jobs.poll(self.spec.keepalive):
                        self.keepalive()
                        continue
                    raw = self.jobs.recv_bytes()
                except EOFError:
                    break
                finally:
                    self.waiting = False
                job = ev.job_decoder.decode(raw)
                if isinstance(job, ev.Stop):
                    break
                self.handle(job)
                if self.over_memory():
                    break  # exit 0 between jobs: the supervisor starts a fresh worker if work is left
        finally:
            self.drop_connections()

    def over_memory(self) -> bool:
        """Whether this process has grown past its limit (a huge folder's listings, a fragmented
        heap): leaving is the one way to give the memory back."""
        if not self.spec.memory_limit:
            return False
        import psutil  # type: ignore[import-untyped]  # no stubs in the venv

        rss = int(psutil.Process().memory_info().rss)
        if rss <= self.spec.memory_limit:
            return False
        log.info("worker %d: RSS %d MB, over the limit; leaving for a fresh one", self.spec.worker, rss >> 20)
        return True

    def keepalive(self) -> None:
        """NOOP on an open far connection; a connection that fails it is dropped, so the next job
        opens a fresh one (the reconnect is invisible to the user)."""
        client = getattr(self.far, "client", None)
        if client is None:
            return
        from imapclient.exceptions import IMAPClientError

        try:
            client.noop()
        except (OSError, IMAPClientError) as e:
            log.info("keepalive NOOP failed (%s); reconnecting on the next job", e)
            self.drop_connections()

    def handle(self, job: ev.Job) -> None:
        wid = self.spec.worker
        name = job.pair.far if isinstance(job, ev.SyncFolder | ev.CopyRange) else ""
        part = job.part if isinstance(job, ev.CopyRange) else 0
        try:
            if isinstance(job, ev.Discover):
                pairs, sizes, warnings, ranges = self.discover_with_retry(job.quick)
                self.emit(
                    ev.Discovered(worker=wid, pairs=pairs, sizes=sizes, warnings=warnings, ranges=ranges)
                )
            elif isinstance(job, ev.SyncFolder | ev.CopyRange):
                if not self.connect_or_give_back(job):
                    return
                self.emit(ev.JobStarted(worker=wid, folder=name, part=part))
                stats = self.sync_with_retry(job)
                self.emit(
                    ev.JobDone(worker=wid, folder=name, stats=stats, changed=stats.changed(), part=part)
                )
        except AccountError as e:
            self.emit(ev.JobFailed(worker=wid, folder=name, scope="account", message=str(e), part=part))
            self.stopping = True
        except ConfigError as e:  # e.g. a nametrans collision found at discovery
            self.emit(ev.JobFailed(worker=wid, folder=name, scope="config", message=str(e), part=part))
            self.stopping = True
        except Interrupted as e:
            done = ev.FolderStats(
                to_near=self.copied.get("to_near", (0, 0))[0],
                to_far=self.copied.get("to_far", (0, 0))[0],
                bytes=sum(nbytes for _n, nbytes in self.copied.values()),
            )
            self.emit(
                ev.JobFailed(
                    worker=wid, folder=name, scope="interrupted", message=str(e), part=part, stats=done
                )
            )
            self.stopping = True
        except FastsyncError as e:
            self.emit(ev.JobFailed(worker=wid, folder=name, scope="folder", message=str(e), part=part))

    def split_setting(self) -> tuple[int, int]:
        """(threshold, connections) for range copies; (0, 1) where they do not apply: a dry
        run, a read-only near side, or a selection (maxsize, dates) they do not apply."""
        s, e = self.spec, self.spec.engine
        if e.dry_run or not e.plan.write_near or e.maxsize or e.since is not None or e.before is not None:
            return 0, 1
        return s.account.splitthreshold, s.account.remote.maxconnections

    def connect_or_give_back(self, job: ev.SyncFolder | ev.CopyRange) -> bool:
        """Open the connections for a job; if the server allows no more of them, retire without
        starting it: the pool hands it to a worker that holds a connection (the run degrades to
        what it gets)."""
        try:
            self.stores()
        except ConnectionLimit as e:
            self.info(job.pair.far, "info", f"{e}; this worker hands its job back and stops")
            self.stopping = True
            return False
        except StoreError:
            pass  # sync_with_retry reconnects with backoff
        return True

    def discover_with_retry(
        self, quick: bool
    ) -> tuple[list[FolderPair], list[int], list[str], dict[str, list[tuple[int, int]]]]:
        """Folder pairs (quick: only those whose cheap status moved); a connection that dropped
        while the worker was idle is re-opened once."""
        from fastsync.workers.discovery import discover

        s = self.spec
        # A held connection may still have last sync's folder selected, and a server answers
        # STATUS on the selected folder from the session's view (Dovecot does): a NOOP brings
        # that view up to date first (and finds a connection the server dropped meanwhile).
        self.keepalive()
        for attempt in range(2):
            try:
                far, near = self.stores(listing=True)  # a login the server drops is retried too
                return discover(
                    far,
                    near,
                    s.account,
                    s.config_path,
                    self.pyglobals,
                    s.only_folders,
                    metadata=s.metadata,
                    quick=quick,
                    split=self.split_setting(),
                )
            except StoreError as e:
                self.drop_connections()
                if attempt == 1:
                    raise
                self.info("", "info", f"{e}; reconnecting")
        raise AssertionError("unreachable")

    def sync_with_retry(self, job: ev.SyncFolder | ev.CopyRange) -> ev.FolderStats:
        """Run a job; a dropped connection is re-opened and the job tried again, twice (a range
        copy resumes: its part state says what it has copied)."""
        pair = job.pair
        delay = 1.0
        for attempt in range(3):
            try:
                far, near = self.stores()  # a reconnect may fail like the connection did
                return self.sync_once(far, near, job)
            except StoreError as e:
                self.drop_connections()
                if attempt == 2:
                    raise FolderError(f"{pair.far!r}: {e} (gave up after 3 tries)") from None
                self.info(pair.far, "warning", f"{e}; reconnecting")
                time.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")

    def sync_once(self, far: Store, near: Store, job: ev.SyncFolder | ev.CopyRange) -> ev.FolderStats:
        s, pair = self.spec, job.pair
        path = state_path(_path(s.metadata), s.account.name, pair.far, pair.near)
        if isinstance(job, ev.CopyRange):
            path = part_path(path, job.part)
        statefile = StateFile(path, fsync=s.fsync)

        self.copied = {}

        def emit(e: ev.Progress | ev.Info) -> None:
            if isinstance(e, ev.Progress) and e.what in ("to_near", "to_far"):
                self.copied[e.what] = (e.done, e.bytes)  # reported once stored: stays done if stopped
            if self.stopping:
                raise Interrupted(f"{pair.far!r}: stopped on request; progress so far is recorded")
            self.emit(e)

        if isinstance(job, ev.CopyRange):
            return copy_range(far, near, pair, statefile, (job.lo, job.hi), s.engine, emit, s.worker)
        return sync_folder(far, near, pair, statefile, s.engine, emit, s.worker)

    def info(self, folder: str, level: ev.InfoLevel, text: str) -> None:
        self.emit(ev.Info(worker=self.spec.worker, folder=folder, level=level, text=text))


def _path(p: str) -> Any:
    from pathlib import Path

    return Path(p)


def worker_main(spec: WorkerSpec, ends: WorkerEnds) -> None:
    """Entry point of the worker process."""
    worker = Worker(spec, ends)

    def ask_stop(signum: int, frame: object) -> None:
        worker.stopping = True
        if worker.waiting:  # blocked between jobs: nothing to finish, leave now
            raise SystemExit(0)

    detach_from_supervisor()
    signal.signal(signal.SIGTERM, ask_stop)
    signal.signal(signal.SIGINT, ask_stop)
    _setup_logging(spec)
    _exit_with_supervisor()
    remote = spec.account.remote
    early.start(remote.remotehost, remote.port)  # travels while the IMAP code is imported
    try:
        worker.run()
    finally:
        early.drop()


def _exit_with_supervisor() -> None:
    """Die at once when the supervisor dies (kill -9): an orphan would keep syncing without
    the account lock, beside the next run. Dying mid-batch is what the journal is for."""
    import multiprocessing
    import threading
    from multiprocessing.connection import wait

    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch() -> None:
        wait([parent.sentinel])
        os._exit(1)

    threading.Thread(target=watch, name="supervisor-watch", daemon=True).start()


def _setup_logging(spec: WorkerSpec) -> None:
    root = logging.getLogger()
    root.handlers.clear()
    handler: logging.Handler = logging.FileHandler(spec.logfile) if spec.logfile else logging.StreamHandler()
    handler.setFormatter(logging.Formatter(f"%(asctime)s worker{spec.worker} %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if spec.debug else logging.WARNING)
    if not spec.debug:
        logging.getLogger("imapclient").setLevel(logging.WARNING)
