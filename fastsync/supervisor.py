"""The supervisor: per account, discover folders, spread folder jobs over worker processes,
watch them, summarise, and (with ``autorefresh`` or ``idlefolders``) do it again. Runs on an
asyncio loop (uvloop when present). The workers' store code (imapclient among it) is imported
here only after the first worker of a run has started, in parallel with that worker's own
discovery, so that the workers forked after it inherit it instead of each importing it again.

Jobs go to an account's multiprocessing queue, largest folder first; events come back on one
shared queue as msgspec bytes and are routed by worker id. A worker that dies is noticed at
once through its process sentinel; the folder it was syncing is queued again (once), and the
journal makes the retry safe. With ``holdconnectionopen`` an account's workers (and their
logged-in connections) outlive a sync and serve the next one.

Signal handlers only record what was asked; the loop acts. SIGUSR1: sync every account now.
SIGUSR2: finish the current sync, then exit. SIGTERM/SIGINT: stop after the current batch
(its state is committed) and exit 0; a second one kills the workers and exits 130. SIGHUP:
re-read the configuration; it applies from each account's next sync.
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

from fastsync.config import AccountConfig, Config, ImapRepo
from fastsync.engine import EngineOptions
from fastsync.errors import AccountError, ConfigError, ExitCode, FastsyncError
from fastsync.folders import FolderPair
from fastsync.hooks import hook_env, run_hook
from fastsync.plan import PlanOptions
from fastsync.state import AccountLock, LockedError
from fastsync.ui.base import UI, AccountSummary, Controls
from fastsync.workers import events as ev
from fastsync.workers.idle import IdleSpec, idle_main
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
    quick: bool = False  # -q: every sync is a quick one


class WorkerDied(msgspec.Struct):
    worker: int
    exitcode: int | None


@dataclass
class _Pool:
    """One account's workers and their job queue; kept between syncs with holdconnectionopen."""

    account: AccountConfig
    jobs: Any
    inbox: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)
    procs: dict[int, Any] = field(default_factory=dict)
    busy: dict[int, tuple[FolderPair, int]] = field(default_factory=dict)  # worker -> (pair, part)
    summary: AccountSummary = field(default_factory=lambda: AccountSummary(name=""))
    stale: bool = False  # the config changed (SIGHUP): the workers' copy of it is old


@dataclass
class _AccountLoop:
    name: str
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    quick_next: bool = False  # an IDLE notice asked for a (quick) sync
    idlers: dict[int, Any] = field(default_factory=dict)


def quick_due(quick: int, forced: bool, index: int) -> bool:
    """Whether sync number ``index`` (0 = the first of this run) is a quick one.

    OfflineIMAP's rule: ``quick = K`` makes K quick syncs between full ones (the first is full);
    ``quick = -1`` makes all quick; ``-q`` forces quick.
    """
    if forced or quick < 0:
        return True
    return quick > 0 and index % (quick + 1) != 0


class Supervisor:
    def __init__(self, config: Config, opts: RunOptions, ui: UI, passwords: dict[str, str | None]) -> None:
        self.config = config
        self.opts = opts
        self.ui = ui
        self.passwords = passwords  # repository name -> password, resolved before the loop starts
        # fork: workers inherit what the supervisor imported instead of starting a second
        # interpreter (forkserver) — half the fixed cost of a run. Safe here: the supervisor
        # runs no threads of its own when it forks, multiprocessing queues re-arm themselves
        # after a fork, and the child drops the loop's signal plumbing (detach_from_supervisor).
        self.ctx = mp.get_context("fork")
        self.events: Any = None
        self.pools: dict[int, _Pool] = {}  # worker id -> its account's pool
        self.idlers: dict[int, _AccountLoop] = {}  # IDLE watcher id -> its account
        self.loops: dict[str, _AccountLoop] = {}
        self.next_worker = 0
        self.stopping = False
        self.aborting = False
        self.finish_after_sync = False
        self.results: dict[str, AccountSummary] = {}

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
        names = self.opts.accounts or tuple(self.config.accounts)
        self.loops = {n: _AccountLoop(n) for n in names}
        self.ui.start_screen(Controls(accounts=names, sync_now=self.sync_now, quit=self.request_stop), loop)
        self.events = self.ctx.Queue()
        loop.add_reader(self.events._reader.fileno(), self._drain_events)
        for sig, handler in (
            (signal.SIGINT, self._on_stop),
            (signal.SIGTERM, self._on_stop),
            (signal.SIGUSR1, self.sync_now),
            (signal.SIGUSR2, self._on_finish),
            (signal.SIGHUP, self._on_reload),
        ):
            loop.add_signal_handler(sig, handler)
        limit = asyncio.Semaphore(max(1, self.config.general.maxsyncaccounts))
        try:
            await asyncio.gather(*(self._account_loop(n, limit) for n in names))
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            loop.remove_reader(self.events._reader.fileno())
            self.events.close()
            self.ui.stop_screen()
        return self._exit_code()

    def _exit_code(self) -> ExitCode:
        if self.aborting:
            return ExitCode.INTERRUPTED
        worst = ExitCode.OK
        for r in self.results.values():
            if r.locked:
                worst = max(worst, ExitCode.LOCKED)
            elif r.config_error:
                worst = max(worst, ExitCode.CONFIG)
            elif r.failed:
                worst = max(worst, ExitCode.ACCOUNT)
            elif r.errors or r.folders_failed:
                worst = max(worst, ExitCode.PARTIAL)
        return worst

    # -- requests (signals, UI keys) -------------------------------------------------------------
    def _all_procs(self) -> list[Any]:
        pools = {id(p): p for p in self.pools.values()}
        procs = [proc for pool in pools.values() for proc in pool.procs.values()]
        return procs + [proc for acct in self.loops.values() for proc in acct.idlers.values()]

    def _on_stop(self) -> None:
        if self.stopping:  # second request: stop now
            self.aborting = True
            for p in self._all_procs():
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
        self.request_stop()

    def request_stop(self) -> None:
        """Stop after the current batch: workers commit what they did and leave."""
        if not self.stopping:
            self.stopping = True
            self.ui.note("stopping after the current batch (again to abort)")
            for p in self._all_procs():
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        for acct in self.loops.values():
            acct.wake.set()

    def sync_now(self, account: str | None = None) -> None:
        """Sync ``account`` (every account when None) now, or right after its current sync."""
        for name, acct in self.loops.items():
            if account is None or name == account:
                acct.wake.set()

    def _on_finish(self) -> None:
        self.finish_after_sync = True
        self.ui.note("exiting after the current sync")
        for acct in self.loops.values():
            acct.wake.set()

    def _on_reload(self) -> None:
        from fastsync.config import load_config
        from fastsync.secrets import get_password

        try:
            config = load_config(self.config.path)
            pyglobals = _expr_globals(config)
            for name in self.loops:
                acct = config.accounts.get(name)
                for repo in (acct.remote, acct.local) if acct else ():
                    if isinstance(repo, ImapRepo) and repo.name not in self.passwords:
                        self.passwords[repo.name] = get_password(repo, pyglobals, None)
        except ConfigError as e:
            self.ui.error(f"configuration not re-read: {e}")
            return
        self.config = config
        for pool in self.pools.values():
            pool.stale = True
        self.ui.note(f"configuration re-read from {config.path}; it applies from the next sync")

    # -- events -----------------------------------------------------------------------------
    def _drain_events(self) -> None:
        while True:
            try:
                raw = self.events.get_nowait()
            except queue.Empty:
                return
            event = ev.event_decoder.decode(raw)
            pool = self.pools.get(event.worker)
            if pool is not None:
                pool.inbox.put_nowait(event)
            elif event.worker in self.idlers:
                self._idle_event(self.idlers[event.worker], event)

    def _idle_event(self, acct: _AccountLoop, e: ev.Event) -> None:
        if isinstance(e, ev.Info) and e.level == "newmail":
            acct.quick_next = True
            acct.wake.set()
        elif isinstance(e, ev.JobFailed):
            self.ui.error(f"account {acct.name}: IDLE on {e.folder!r} stopped: {e.message}")
        self.ui.event(acct.name, e)

    def _on_sentinel(self, wid: int) -> None:
        loop = asyncio.get_running_loop()
        pool = self.pools.get(wid)
        if pool is not None and wid in pool.procs:
            proc = pool.procs[wid]
            loop.remove_reader(proc.sentinel)
            # The sentinel fires when the child's descriptors close, a moment before it can be
            # reaped: a blocking reap (join with a timeout) gets the real exit status, not None.
            proc.join(1)
            pool.inbox.put_nowait(WorkerDied(worker=wid, exitcode=proc.exitcode))
        elif wid in self.idlers:
            acct = self.idlers.pop(wid)
            proc = acct.idlers.pop(wid)
            loop.remove_reader(proc.sentinel)
            proc.join(0)
            if not self.stopping:
                self.ui.warn(f"account {acct.name}: IDLE watcher exited ({proc.exitcode})")

    # -- accounts ---------------------------------------------------------------------------
    def _continuous(self, account: AccountConfig) -> bool:
        return not self.opts.once and bool(account.autorefresh or account.remote.idlefolders)

    async def _account_loop(self, name: str, limit: asyncio.Semaphore) -> None:
        acct = self.loops[name]
        lock = AccountLock(Path(self.config.general.metadata), name)
        try:
            lock.acquire()
        except AccountError as e:  # LockedError included
            summary = AccountSummary(name=name, locked=isinstance(e, LockedError), failed=True)
            self.results[name] = summary
            self.ui.error(str(e))
            self.ui.account_done(summary)
            return
        pool = _Pool(account=self.config.accounts[name], jobs=self.ctx.Queue())
        index = 0
        try:
            if self._continuous(pool.account):
                self._start_idlers(acct, pool.account)
            while not self.stopping:
                account = self.config.accounts.get(name, pool.account)
                quick = quick_due(account.quick, self.opts.quick, index) or acct.quick_next
                acct.quick_next = False
                acct.wake.clear()
                async with limit:
                    summary = await self._sync_account(account, pool, quick)
                index += 1
                self.results[name] = summary
                self.ui.account_done(summary)
                if not self._continuous(account) or self.stopping or self.finish_after_sync:
                    return
                delay = account.autorefresh * 60 if account.autorefresh else None
                self.ui.account_sleeping(name, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(acct.wake.wait(), timeout=delay)
                if self.finish_after_sync:
                    return
        finally:
            self._stop_idlers(acct)
            await self._shutdown_pool(pool)
            pool.jobs.close()
            result = self.results.get(name)
            if index == 1 and result is not None and result.config_error:
                lock.discard()  # the first sync stopped before writing anything: leave no trace
            else:
                lock.release()

    async def _sync_account(self, account: AccountConfig, pool: _Pool, quick: bool) -> AccountSummary:
        summary = AccountSummary(name=account.name)
        started = time.monotonic()
        self.ui.account_started(account.name, quick)
        if account.presynchook:
            await self._hook("presynchook", account.presynchook, hook_env("presynchook", account.name))
        try:
            if self.stopping:  # asked to stop during the presynchook: nothing was started
                summary.interrupted = True
            else:
                await self._run_sync(account, pool, summary, quick)
        except FastsyncError as e:
            summary.failed = True
            self.ui.error(f"account {account.name}: {e}")
        summary.seconds = time.monotonic() - started
        for kind, command in (("postsynchook", account.postsynchook), ("newmail_hook", account.newmail_hook)):
            if command and (kind == "postsynchook" or summary.stats.to_near > 0):
                env = hook_env(kind, account.name, summary.stats, summary.folders, summary.state())
                await self._hook(kind, command, env)
        return summary

    async def _hook(self, kind: str, command: str, env: dict[str, str]) -> None:
        result = await run_hook(kind, command, env)
        for line in result.output:
            self.ui.note(f"account {env['FASTSYNC_ACCOUNT']}: {kind}: {line}")
        if not result.ok:
            self.ui.warn(result.describe(env["FASTSYNC_ACCOUNT"]))

    # -- IDLE watchers ----------------------------------------------------------------------
    def _start_idlers(self, acct: _AccountLoop, account: AccountConfig) -> None:
        from fastsync import folders

        src = account.remote.idlefolders
        if not src:
            return
        where = f"{self.config.path}: [Repository {account.remote.name}] idlefolders"
        try:
            names = folders.eval_value(src, where, _expr_globals(self.config))
        except ConfigError as e:
            self.ui.error(str(e))
            return
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            self.ui.error(f"{where}: gives a {type(names).__name__} (expected a list of folder names)")
            return
        loop = asyncio.get_running_loop()
        for folder in names:
            wid = self._new_id()
            spec = IdleSpec(
                worker=wid,
                repo=account.remote,
                password=self.passwords.get(account.remote.name),
                folder=folder,
            )
            proc = self.ctx.Process(
                target=idle_main, args=(spec, self.events), name=f"fastsync-idle-{wid}", daemon=True
            )
            proc.start()
            acct.idlers[wid] = proc
            self.idlers[wid] = acct
            loop.add_reader(proc.sentinel, self._on_sentinel, wid)

    def _stop_idlers(self, acct: _AccountLoop) -> None:
        loop = asyncio.get_running_loop()
        for wid, proc in list(acct.idlers.items()):
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(1)
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(proc.sentinel)
            self.idlers.pop(wid, None)
        acct.idlers.clear()

    # -- workers ----------------------------------------------------------------------------
    def _new_id(self) -> int:
        wid = self.next_worker
        self.next_worker += 1
        return wid

    def _spec(self, account: AccountConfig, wid: int) -> WorkerSpec:
        g = self.config.general
        remote = account.remote
        return WorkerSpec(
            worker=wid,
            account=account,
            config_path=self.config.path,
            metadata=g.metadata,
            engine=EngineOptions(
                plan=PlanOptions(
                    write_far=not remote.readonly,
                    write_near=not account.local.readonly,
                    delete_to_far=remote.sync_deletes,
                    delete_to_near=account.local.sync_deletes,
                    max_delete_percent=account.max_delete_percent,
                    force_deletes=self.opts.force_deletes,
                ),
                dry_run=self.opts.dry_run,
                maxsize=account.maxsize,
            ),
            far_password=self.passwords.get(remote.name),
            near_password=self.passwords.get(account.local.name),
            pythonfile=g.pythonfile,
            only_folders=self.opts.folders,
            fsync=g.fsync,
            debug=self.opts.debug,
            logfile=self.opts.logfile,
            keepalive=float(remote.keepalive) if remote.holdconnectionopen and remote.keepalive else None,
        )

    def _spawn(self, pool: _Pool) -> int:
        wid = self._new_id()
        proc = self.ctx.Process(
            target=worker_main,
            args=(self._spec(pool.account, wid), pool.jobs, self.events),
            name=f"fastsync-worker-{wid}",
            daemon=True,
        )
        proc.start()
        pool.procs[wid] = proc
        self.pools[wid] = pool
        asyncio.get_running_loop().add_reader(proc.sentinel, self._on_sentinel, wid)
        return wid

    def _forget_dead(self, pool: _Pool) -> None:
        """Between syncs only deaths matter: drop workers that exited while idle."""
        while not pool.inbox.empty():
            e = pool.inbox.get_nowait()
            if isinstance(e, WorkerDied):
                pool.procs.pop(e.worker, None)
                self.pools.pop(e.worker, None)
                self.ui.worker_exited(pool.account.name, e.worker)

    async def _run_sync(
        self, account: AccountConfig, pool: _Pool, summary: AccountSummary, quick: bool
    ) -> None:
        self._forget_dead(pool)
        if pool.stale or pool.account is not account:
            await self._shutdown_pool(pool)
            pool.stale = False
        pool.account, pool.summary, pool.busy = account, summary, {}
        try:
            if not pool.procs:
                self._spawn(pool)
            pool.jobs.put(ev.job_encoder.encode(ev.Discover(quick=quick)))
            _preload_worker_code()
            found = await self._await_discovery(pool)
            if found is not None:
                await self._run_jobs(pool, *found)
        finally:
            if not account.remote.holdconnectionopen or self.stopping or summary.failed:
                await self._shutdown_pool(pool)

    async def _await_discovery(
        self, pool: _Pool
    ) -> tuple[list[tuple[FolderPair, int]], dict[str, list[tuple[int, int]]]] | None:
        name = pool.account.name
        while True:
            e = await pool.inbox.get()
            if isinstance(e, ev.Discovered):
                for w in e.warnings:
                    self.ui.warn(f"account {name}: {w}")
                self.ui.event(name, e)
                return sorted(zip(e.pairs, e.sizes, strict=True), key=lambda ps: -ps[1]), e.ranges
            if isinstance(e, ev.JobFailed):
                pool.summary.failed = e.scope != "interrupted"
                pool.summary.interrupted = e.scope == "interrupted"
                pool.summary.config_error = e.scope == "config"
                if pool.summary.failed:
                    self.ui.error(f"account {name}: {e.message}")
                self.ui.event(name, e)
                return None
            if isinstance(e, WorkerDied):
                pool.procs.pop(e.worker, None)
                self.pools.pop(e.worker, None)
                self.ui.worker_exited(name, e.worker)
                if self.stopping:
                    pool.summary.interrupted = True
                    return None
                if pool.procs:  # a held worker that had died while idle; another one has the job
                    continue
                pool.summary.failed = True
                self.ui.error(f"account {name}: worker died during folder discovery")
                return None
            self.ui.event(name, e)

    async def _run_jobs(
        self, pool: _Pool, pairs: list[tuple[FolderPair, int]], ranges: dict[str, list[tuple[int, int]]]
    ) -> None:
        """Queue the jobs and follow them to the end. A folder with ``ranges`` is copied by
        CopyRange jobs first (workers/split.py); its SyncFolder job is queued when the last
        of them has ended, however it ended: that sync copies whatever they did not."""
        account = pool.account
        parts_left: dict[str, int] = {}
        for pair, _size in pairs:
            for part, (lo, hi) in enumerate(ranges.get(pair.far, ()), 1):
                pool.jobs.put(ev.job_encoder.encode(ev.CopyRange(pair=pair, lo=lo, hi=hi, part=part)))
                parts_left[pair.far] = part
        for pair, size in pairs:
            if pair.far not in parts_left:
                pool.jobs.put(ev.job_encoder.encode(ev.SyncFolder(pair=pair, size=size)))
        want = min(max(1, account.remote.maxconnections), len(pairs) + sum(parts_left.values()))
        while len(pool.procs) < want:
            self._spawn(pool)
        pending = {p.far for p, _ in pairs}
        requeued: set[str] = set()
        by_far = {p.far: (p, s) for p, s in pairs}

        def part_ended(far: str) -> None:
            parts_left[far] -= 1
            if not parts_left[far]:
                pair, size = by_far[far]
                pool.jobs.put(ev.job_encoder.encode(ev.SyncFolder(pair=pair, size=size)))

        while pending and pool.procs:
            e = await pool.inbox.get()
            if isinstance(e, ev.JobStarted):
                pool.busy[e.worker] = (by_far[e.folder][0], e.part)
            elif isinstance(e, ev.JobDone):
                pool.busy.pop(e.worker, None)
                pool.summary.stats.add(e.stats)
                if e.part:
                    part_ended(e.folder)
                else:
                    pending.discard(e.folder)
                    pool.summary.folders += 1
            elif isinstance(e, ev.JobFailed):
                pool.busy.pop(e.worker, None)
                if e.part and e.scope == "folder":
                    self.ui.warn(
                        f"account {account.name}: folder {e.folder!r}: range copy {e.part} failed: "
                        f"{e.message}; the folder's sync copies the rest"
                    )
                    part_ended(e.folder)
                else:
                    self._job_failed(pool, e, pending)
            elif isinstance(e, WorkerDied):
                self._worker_died(pool, e, pending, requeued, by_far, part_ended)
                continue
            self.ui.event(account.name, e)

    def _job_failed(self, pool: _Pool, e: ev.JobFailed, pending: set[str]) -> None:
        if e.scope in ("account", "config"):  # "config" past discovery: other folders may be written
            pool.summary.failed = True
            self.ui.error(f"account {pool.account.name}: {e.message}")
            pending.clear()
            return
        pending.discard(e.folder)
        if e.scope == "interrupted":
            pool.summary.interrupted = True
            pending.clear()
            return
        pool.summary.folders_failed += 1
        self.ui.error(f"account {pool.account.name}: folder {e.folder!r}: {e.message}")

    def _worker_died(
        self,
        pool: _Pool,
        e: WorkerDied,
        pending: set[str],
        requeued: set[str],
        by_far: dict[str, tuple[FolderPair, int]],
        part_ended: Callable[[str], None],
    ) -> None:
        name = pool.account.name
        pool.procs.pop(e.worker, None)
        self.pools.pop(e.worker, None)
        self.ui.worker_exited(name, e.worker)
        pair, part = pool.busy.pop(e.worker, (None, 0))
        if self.stopping:
            pool.summary.interrupted = True
            if not pool.procs:
                pending.clear()
            return
        if pair is not None and part:
            self.ui.warn(
                f"account {name}: worker died (exit {e.exitcode}) on range copy {part} of "
                f"{pair.far!r}; the folder's sync copies the rest"
            )
            part_ended(pair.far)
        elif pair is not None and pair.far in pending:
            if pair.far in requeued:
                pending.discard(pair.far)
                pool.summary.folders_failed += 1
                self.ui.error(f"account {name}: folder {pair.far!r}: worker died twice; skipped")
            else:
                requeued.add(pair.far)
                self.ui.warn(f"account {name}: worker died (exit {e.exitcode}) on {pair.far!r}; trying again")
                pool.jobs.put(ev.job_encoder.encode(ev.SyncFolder(pair=pair, size=by_far[pair.far][1])))
        if pending and not pool.procs:
            self._spawn(pool)

    async def _shutdown_pool(self, pool: _Pool) -> None:
        """Ask every worker of the pool to stop, wait for them (killing after a deadline)."""
        if not pool.procs:
            return
        for _ in pool.procs:
            pool.jobs.put(ev.job_encoder.encode(ev.Stop()))
        loop = asyncio.get_running_loop()
        # Each exit shows as a WorkerDied (the process sentinel); an abort kills them all.
        alive, deadline = set(pool.procs), time.monotonic() + 30
        while alive and not self.aborting:
            try:
                e = await asyncio.wait_for(pool.inbox.get(), max(0.0, deadline - time.monotonic()))
            except TimeoutError:
                break
            if isinstance(e, WorkerDied):
                alive.discard(e.worker)
        for wid, proc in list(pool.procs.items()):
            if proc.is_alive():
                proc.kill()
            proc.join(1)
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(proc.sentinel)
            self.pools.pop(wid, None)
            self.ui.worker_exited(pool.account.name, wid)
        pool.procs.clear()
        while not pool.inbox.empty():  # deaths of the workers just stopped
            pool.inbox.get_nowait()


def _preload_worker_code() -> None:
    """Import what every worker imports for its first job (a no-op after the first time)."""
    import fastsync.stores.imap
    import fastsync.stores.maildir
    import fastsync.workers.discovery  # noqa: F401


def _expr_globals(config: Config) -> dict[str, Any]:
    from fastsync.config import expr_globals

    return expr_globals(config)
