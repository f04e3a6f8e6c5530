"""The supervisor: per account, discover folders, spread folder jobs over worker processes,
watch them, summarise. Runs on an asyncio loop (uvloop when present). Never imports imapclient.

Jobs go to an account's multiprocessing queue, largest folder first; events come back on one
shared queue as msgspec bytes and are routed by worker id. A worker that dies is noticed at
once through its process sentinel; the folder it was syncing is queued again (once), and the
journal makes the retry safe. Signal handlers only record what was asked; the loop acts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing as mp
import queue
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from fastsync.config import AccountConfig, Config
from fastsync.engine import EngineOptions
from fastsync.errors import ExitCode, FastsyncError
from fastsync.folders import FolderPair
from fastsync.plan import PlanOptions
from fastsync.state import AccountLock, LockedError
from fastsync.ui.base import UI, AccountSummary
from fastsync.workers import events as ev
from fastsync.workers.worker import WorkerSpec, worker_main

log = logging.getLogger(__name__)


class RunOptions(msgspec.Struct, frozen=True):
    accounts: tuple[str, ...] = ()
    folders: tuple[str, ...] = ()
    once: bool = False
    dry_run: bool = False
    force_deletes: bool = False
    debug: bool = False
    logfile: str | None = None


class WorkerDied(msgspec.Struct):
    worker: int
    exitcode: int | None


@dataclass
class _AccountRun:
    account: AccountConfig
    inbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    procs: dict[int, Any] = field(default_factory=dict)
    busy: dict[int, FolderPair] = field(default_factory=dict)
    summary: AccountSummary = field(default_factory=lambda: AccountSummary(name=""))


class Supervisor:
    def __init__(self, config: Config, opts: RunOptions, ui: UI, passwords: dict[str, str | None]) -> None:
        self.config = config
        self.opts = opts
        self.ui = ui
        self.passwords = passwords  # repository name -> password, resolved before the loop starts
        self.ctx = mp.get_context("forkserver")
        self.ctx.set_forkserver_preload(["fastsync.workers.worker"])
        self.events: Any = None
        self.runs: dict[int, _AccountRun] = {}  # worker id -> its account run
        self.next_worker = 0
        self.stopping = False
        self.aborting = False
        self.wake = asyncio.Event()
        self.results: list[AccountSummary] = []

    # -- entry ------------------------------------------------------------------------------
    def run(self) -> ExitCode:
        try:
            import uvloop

            runner: Callable[..., Any] = uvloop.run
        except ImportError:  # pragma: no cover - uvloop is a dependency, but not on every platform
            runner = asyncio.run
        code: ExitCode = runner(self._main())
        return code

    async def _main(self) -> ExitCode:
        loop = asyncio.get_running_loop()
        self.wake = asyncio.Event()
        self.events = self.ctx.Queue()
        loop.add_reader(self.events._reader.fileno(), self._drain_events)
        for sig, handler in (
            (signal.SIGINT, self._on_stop),
            (signal.SIGTERM, self._on_stop),
            (signal.SIGUSR1, self._on_refresh),
            (signal.SIGUSR2, self._on_finish),
        ):
            loop.add_signal_handler(sig, handler)
        limit = asyncio.Semaphore(max(1, self.config.general.maxsyncaccounts))
        names = self.opts.accounts or tuple(self.config.accounts)
        try:
            await asyncio.gather(*(self._account_loop(self.config.accounts[n], limit) for n in names))
        finally:
            loop.remove_reader(self.events._reader.fileno())
            self.events.close()
        return self._exit_code()

    def _exit_code(self) -> ExitCode:
        if self.stopping and any(r.interrupted for r in self.results):
            return ExitCode.INTERRUPTED
        worst = ExitCode.OK
        for r in self.results:
            if r.locked:
                worst = max(worst, ExitCode.LOCKED)
            elif r.failed:
                worst = max(worst, ExitCode.ACCOUNT)
            elif r.errors or r.folders_failed:
                worst = max(worst, ExitCode.PARTIAL)
        return worst

    # -- signals ----------------------------------------------------------------------------
    def _on_stop(self) -> None:
        if self.stopping:  # second request: stop now
            self.aborting = True
            for run in set(self.runs.values()):
                for p in run.procs.values():
                    with contextlib.suppress(ProcessLookupError):
                        p.kill()
        self.stopping = True
        self.ui.note("stopping after the current batch (again to abort)")
        for run in set(self.runs.values()):
            for p in run.procs.values():
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        self.wake.set()

    def _on_refresh(self) -> None:
        self.wake.set()

    def _on_finish(self) -> None:
        self.finish_after_sync = True
        self.wake.set()

    finish_after_sync = False

    # -- events -----------------------------------------------------------------------------
    def _drain_events(self) -> None:
        while True:
            try:
                raw = self.events.get_nowait()
            except queue.Empty:
                return
            event = ev.event_decoder.decode(raw)
            run = self.runs.get(event.worker)
            if run is not None:
                run.inbox.put_nowait(event)

    def _on_sentinel(self, wid: int) -> None:
        run = self.runs.get(wid)
        if run is None or wid not in run.procs:
            return
        proc = run.procs[wid]
        asyncio.get_running_loop().remove_reader(proc.sentinel)
        proc.join(0)
        run.inbox.put_nowait(WorkerDied(worker=wid, exitcode=proc.exitcode))

    # -- accounts ---------------------------------------------------------------------------
    async def _account_loop(self, account: AccountConfig, limit: asyncio.Semaphore) -> None:
        while True:
            async with limit:
                summary = await self._sync_account(account)
            self.results.append(summary)
            self.ui.account_done(summary)
            if self.opts.once or not account.autorefresh or self.stopping or self.finish_after_sync:
                return
            self.wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wake.wait(), timeout=account.autorefresh * 60)
            if self.stopping or self.finish_after_sync:
                return

    async def _sync_account(self, account: AccountConfig) -> AccountSummary:
        summary = AccountSummary(name=account.name)
        started = time.monotonic()
        self.ui.account_started(account.name)
        try:
            with AccountLock(Path(self.config.general.metadata), account.name):
                await self._run_workers(account, summary)
        except LockedError as e:
            summary.locked = True
            self.ui.error(str(e))
        except FastsyncError as e:
            summary.failed = True
            self.ui.error(f"account {account.name}: {e}")
        summary.seconds = time.monotonic() - started
        return summary

    def _spec(self, account: AccountConfig, wid: int) -> WorkerSpec:
        g = self.config.general
        return WorkerSpec(
            worker=wid,
            account=account,
            config_path=self.config.path,
            metadata=g.metadata,
            engine=EngineOptions(
                plan=PlanOptions(
                    write_far=not account.remote.readonly,
                    write_near=not account.local.readonly,
                    delete_to_far=account.remote.sync_deletes,
                    delete_to_near=account.local.sync_deletes,
                    max_delete_percent=account.max_delete_percent,
                    force_deletes=self.opts.force_deletes,
                ),
                dry_run=self.opts.dry_run,
                maxsize=account.maxsize,
            ),
            far_password=self.passwords.get(account.remote.name),
            near_password=self.passwords.get(account.local.name),
            pythonfile=g.pythonfile,
            only_folders=self.opts.folders,
            fsync=g.fsync,
            debug=self.opts.debug,
            logfile=self.opts.logfile,
        )

    def _spawn(self, run: _AccountRun, jobs: Any) -> int:
        wid = self.next_worker
        self.next_worker += 1
        proc = self.ctx.Process(
            target=worker_main,
            args=(self._spec(run.account, wid), jobs, self.events),
            name=f"fastsync-worker-{wid}",
            daemon=True,
        )
        proc.start()
        run.procs[wid] = proc
        self.runs[wid] = run
        asyncio.get_running_loop().add_reader(proc.sentinel, self._on_sentinel, wid)
        return wid

    async def _run_workers(self, account: AccountConfig, summary: AccountSummary) -> None:
        run = _AccountRun(account=account, summary=summary)
        jobs = self.ctx.Queue()
        try:
            self._spawn(run, jobs)
            jobs.put(ev.job_encoder.encode(ev.Discover()))
            pairs = await self._await_discovery(run)
            if pairs is None:
                return
            await self._run_jobs(run, jobs, pairs)
        finally:
            for _ in run.procs:
                jobs.put(ev.job_encoder.encode(ev.Stop()))
            await self._reap(run)
            jobs.close()

    async def _await_discovery(self, run: _AccountRun) -> list[tuple[FolderPair, int]] | None:
        while True:
            e = await run.inbox.get()
            if isinstance(e, ev.Discovered):
                for w in e.warnings:
                    self.ui.warn(f"account {run.account.name}: {w}")
                return sorted(zip(e.pairs, e.sizes, strict=True), key=lambda ps: -ps[1])
            if isinstance(e, ev.JobFailed):
                run.summary.failed = True
                self.ui.error(f"account {run.account.name}: {e.message}")
                return None
            if isinstance(e, WorkerDied):
                run.summary.failed = True
                self.ui.error(f"account {run.account.name}: worker died during folder discovery")
                return None
            self.ui.event(run.account.name, e)

    async def _run_jobs(self, run: _AccountRun, jobs: Any, pairs: list[tuple[FolderPair, int]]) -> None:
        account = run.account
        for pair, size in pairs:
            jobs.put(ev.job_encoder.encode(ev.SyncFolder(pair=pair, size=size)))
        want = min(max(1, account.remote.maxconnections), len(pairs))
        while len(run.procs) < want:
            self._spawn(run, jobs)
        pending = {p.far for p, _ in pairs}
        requeued: set[str] = set()
        by_far = {p.far: (p, s) for p, s in pairs}
        while pending and run.procs:
            e = await run.inbox.get()
            if isinstance(e, ev.JobStarted):
                run.busy[e.worker] = by_far[e.folder][0]
            elif isinstance(e, ev.JobDone):
                run.busy.pop(e.worker, None)
                pending.discard(e.folder)
                run.summary.stats.add(e.stats)
                run.summary.folders += 1
            elif isinstance(e, ev.JobFailed):
                run.busy.pop(e.worker, None)
                self._job_failed(run, e, pending)
            elif isinstance(e, WorkerDied):
                self._worker_died(run, e, jobs, pending, requeued, by_far)
            self.ui.event(account.name, e)

    def _job_failed(self, run: _AccountRun, e: ev.JobFailed, pending: set[str]) -> None:
        if e.scope == "account":
            run.summary.failed = True
            self.ui.error(f"account {run.account.name}: {e.message}")
            pending.clear()
            return
        pending.discard(e.folder)
        if e.scope == "interrupted":
            run.summary.interrupted = True
            pending.clear()
            return
        run.summary.folders_failed += 1
        self.ui.error(f"account {run.account.name}: folder {e.folder!r}: {e.message}")

    def _worker_died(
        self,
        run: _AccountRun,
        e: WorkerDied,
        jobs: Any,
        pending: set[str],
        requeued: set[str],
        by_far: dict[str, tuple[FolderPair, int]],
    ) -> None:
        run.procs.pop(e.worker, None)
        self.runs.pop(e.worker, None)
        pair = run.busy.pop(e.worker, None)
        if self.stopping:
            run.summary.interrupted = True
            return
        if pair is not None and pair.far in pending:
            if pair.far in requeued:
                pending.discard(pair.far)
                run.summary.folders_failed += 1
                self.ui.error(f"account {run.account.name}: folder {pair.far!r}: worker died twice; skipped")
            else:
                requeued.add(pair.far)
                self.ui.warn(
                    f"account {run.account.name}: worker died (exit {e.exitcode}) on {pair.far!r}; "
                    "trying the folder again"
                )
                jobs.put(ev.job_encoder.encode(ev.SyncFolder(pair=pair, size=by_far[pair.far][1])))
        if pending and not run.procs:
            self._spawn(run, jobs)

    async def _reap(self, run: _AccountRun) -> None:
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + 30
        for wid, proc in list(run.procs.items()):
            while proc.is_alive() and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
            if proc.is_alive():
                proc.kill()
            proc.join(1)
            with contextlib.suppress(Exception):
                loop.remove_reader(proc.sentinel)
            self.runs.pop(wid, None)
        run.procs.clear()
