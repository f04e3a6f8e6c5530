"""The supervisor: per account, discover folders, spread folder jobs over worker processes,
watch them, summarise, and (with ``autorefresh`` or ``idlefolders``) do it again. Runs on an
asyncio loop (uvloop when present). The workers' store code (imapclient among it) is imported
here only after the first worker of a run has started, in parallel with that worker's own
discovery, so that the workers forked after it inherit it instead of each importing it again.

Jobs are handed to an account's idle workers, largest folder first; each worker (and each IDLE
watcher) sends its events back on a pipe of its own as msgspec frames, so no lock is shared
between processes. A worker that dies is noticed at once through its process sentinel; the
folder it was syncing is queued again (once), and the journal makes the retry safe. With
``holdconnectionopen`` an account's workers (and their logged-in connections) outlive a sync
and serve the next one.

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
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from fastsync import events as ev
from fastsync.config import AccountConfig, Config, ImapRepo
from fastsync.engine import EngineOptions
from fastsync.errors import AccountError, ConfigError, ExitCode, FastsyncError
from fastsync.events import AccountSummary
from fastsync.folders import FolderPair
from fastsync.hooks import hook_env, run_hook
from fastsync.plan import PlanOptions
from fastsync.state import AccountLock, LockedError
from fastsync.supervisor.pool import Pool, WorkerDied
from fastsync.supervisor.schedule import Ranges, Schedule
from fastsync.ui.base import UI, Controls
from fastsync.workers.channel import Channel, open_channel
from fastsync.workers.idle import IdleSpec, idle_main
from fastsync.workers.worker import WorkerSpec

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


@dataclass
class RunControl:
    """Limits from outside the run (the distributed batch's slices and leases).

    ``stop_after``: stop cleanly (after the current batch, state committed) after so many
    seconds. ``watch``: called every ``watch_every`` seconds on the loop; when it returns False
    the run stops the same way and ``lost`` is set.
    """

    stop_after: float | None = None
    watch: Callable[[], bool] | None = None
    watch_every: float = 5.0
    lost: bool = False


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
    def __init__(
        self,
        config: Config,
        opts: RunOptions,
        ui: UI,
        passwords: dict[str, str | None],
        *,
        folder_pairs: dict[str, list[tuple[FolderPair, int]]] | None = None,
        folder_ranges: dict[str, Ranges] | None = None,
        engine_tune: dict[str, Any] | None = None,
        account_tune: dict[str, dict[str, Any]] | None = None,
        control: RunControl | None = None,
    ) -> None:
        """``folder_pairs`` (account -> pairs, largest first) replaces what the workers'
        discovery finds, with ``folder_ranges`` (account -> far folder -> UID ranges) for the
        huge ones; ``engine_tune`` overrides EngineOptions fields, and ``account_tune``
        (account -> fields) more of them for one account.
        Both are how ``fastsync migrate`` runs its copy through this supervisor; ``control``
        bounds the run from outside (fastsync.dist's slices)."""
        self.config = config
        self.control = control or RunControl()
        self.folder_pairs = folder_pairs
        self.folder_ranges = folder_ranges or {}
        self.engine_tune = engine_tune or {}
        self.account_tune = account_tune or {}
        self.opts = opts
        self.ui = ui
        self.passwords = passwords  # repository name -> password, resolved before the loop starts
        # fork: workers inherit what the supervisor imported instead of starting a second
        # interpreter (forkserver) — half the fixed cost of a run. Safe here: the supervisor
        # runs no threads of its own when it forks, the child closes the other workers' pipes
        # (workers.channel) and drops the loop's signal plumbing (detach_from_supervisor).
        self.ctx = mp.get_context("fork")
        self.pools: dict[int, Pool] = {}  # worker id -> its account's pool
        self.idlers: dict[int, _AccountLoop] = {}  # IDLE watcher id -> its account
        self.idle_channels: dict[int, Channel] = {}  # IDLE watcher id -> its event pipe
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
        for sig, handler in (
            (signal.SIGINT, self._on_stop),
            (signal.SIGTERM, self._on_stop),
            (signal.SIGUSR1, self.sync_now),
            (signal.SIGUSR2, self._on_finish),
            (signal.SIGHUP, self._on_reload),
        ):
            loop.add_signal_handler(sig, handler)
        limit = asyncio.Semaphore(max(1, self.config.general.maxsyncaccounts))
        c = self.control
        timer = loop.call_later(c.stop_after, self._time_up) if c.stop_after is not None else None
        watcher = asyncio.create_task(self._watch()) if c.watch is not None else None
        try:
            await asyncio.gather(*(self._account_loop(n, limit) for n in names))
        finally:
            if timer is not None:
                timer.cancel()
            if watcher is not None:
                watcher.cancel()
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
                loop.remove_signal_handler(sig)
            # remove_signal_handler leaves SIGTERM at its default: a second stop request in the
            # moments the process takes to leave would kill it by the signal (exit -15) after
            # all was committed. From here on a stop request is taken in plain Python.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self._late_stop)
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

    def _late_stop(self, signum: int, frame: object) -> None:
        """SIGTERM/SIGINT after the loop has ended. Repeating the stop that is being finished
        changes nothing (its work is committed, the process is leaving); a first request (say,
        during ``migrate --verify``, which runs after the copy) interrupts what runs: exit 130."""
        if not self.stopping:
            self.stopping = True
            raise KeyboardInterrupt

    def request_stop(self) -> None:
        """Stop after the current batch: workers commit what they did and leave."""
        if not self.stopping:
            self.stopping = True
            self._notice("info", "stopping after the current batch (again to abort)")
            for p in self._all_procs():
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        for acct in self.loops.values():
            acct.wake.set()

    def _time_up(self) -> None:
        log.info("time slice over: stopping after the current batch")
        self.request_stop()

    async def _watch(self) -> None:
        c = self.control
        assert c.watch is not None
        while not self.stopping:
            await asyncio.sleep(c.watch_every)
            if not c.watch():
                c.lost = True
                log.warning("lease lost: stopping after the current batch")
                self.request_stop()
                return

    def sync_now(self, account: str | None = None) -> None:
        """Sync ``account`` (every account when None) now, or right after its current sync."""
        for name, acct in self.loops.items():
            if account is None or name == account:
                acct.wake.set()

    def _on_finish(self) -> None:
        self.finish_after_sync = True
        self._notice("info", "exiting after the current sync")
        for acct in self.loops.values():
            acct.wake.set()

    def _on_reload(self) -> None:
        from fastsync.config import load_config
        from fastsync.credentials import get_password, password_needed

        try:
            config = load_config(self.config.path)
            pyglobals = _expr_globals(config)
            for name in self.loops:
                acct = config.accounts.get(name)
                for repo in (acct.remote, acct.local) if acct else ():
                    if isinstance(repo, ImapRepo) and repo.name not in self.passwords:
                        needed = password_needed(repo)
                        self.passwords[repo.name] = get_password(repo, pyglobals, None) if needed else None
        except ConfigError as e:
            self._notice("error", f"configuration not re-read: {e}")
            return
        self.config = config
        for pool in self.pools.values():
            pool.stale = True
        self._notice("info", f"configuration re-read from {config.path}; it applies from the next sync")

    # -- events -----------------------------------------------------------------------------
    def emit(self, e: ev.Event) -> None:
        """Every event of the run goes to the UI here, and only here."""
        self.ui.render(e)

    def _notice(self, level: ev.Level, text: str, account: str = "") -> None:
        self.emit(ev.Notice(level=level, text=text, account=account))

    def _forward(self, account: str, e: ev.WorkerEvent) -> None:
        """A worker's event, stamped with the account it belongs to."""
        e.account = account
        self.emit(e)

    def _read_idler(self, wid: int) -> None:
        acct, channel = self.idlers[wid], self.idle_channels[wid]
        events, eof = channel.read()
        if eof:
            asyncio.get_running_loop().remove_reader(channel.events)
        for e in events:
            self._idle_event(acct, e)

    def _idle_event(self, acct: _AccountLoop, e: ev.WorkerEvent) -> None:
        if isinstance(e, ev.JobFailed):  # said once, as what it is: the watcher stopped
            self._notice("error", f"IDLE on {e.folder!r} stopped: {e.message}", acct.name)
            return
        if isinstance(e, ev.Info) and e.level == "newmail":
            acct.quick_next = True
            acct.wake.set()
        self._forward(acct.name, e)

    def _on_sentinel(self, wid: int) -> None:
        loop = asyncio.get_running_loop()
        pool = self.pools.get(wid)
        if pool is not None and wid in pool.procs:
            pool.exited(wid)
        elif wid in self.idlers:
            acct = self.idlers[wid]
            proc = acct.idlers.pop(wid)
            loop.remove_reader(proc.sentinel)
            proc.join(0)
            self._read_idler(wid)
            self._close_idler(wid)
            if not self.stopping:
                self._notice("warning", f"IDLE watcher exited ({proc.exitcode})", acct.name)

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
            self._notice("error", str(e))
            self.emit(ev.AccountDone(account=name, summary=summary))
            return
        pool = Pool(account=self.config.accounts[name], ctx=self.ctx)
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
                self.emit(ev.AccountDone(account=name, summary=summary))
                if not self._continuous(account) or self.stopping or self.finish_after_sync:
                    return
                delay = account.autorefresh * 60 if account.autorefresh else None
                self.emit(ev.AccountSleeping(account=name, seconds=delay))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(acct.wake.wait(), timeout=delay)
                if self.finish_after_sync:
                    return
        finally:
            self._stop_idlers(acct)
            await self._shutdown_pool(pool)
            pool.close()
            result = self.results.get(name)
            if index == 1 and result is not None and result.config_error:
                lock.discard()  # the first sync stopped before writing anything: leave no trace
            else:
                lock.release()

    async def _sync_account(self, account: AccountConfig, pool: Pool, quick: bool) -> AccountSummary:
        summary = AccountSummary(name=account.name)
        started = time.monotonic()
        self.emit(ev.AccountStarted(account=account.name, quick=quick))
        if account.presynchook:
            await self._hook("presynchook", account.presynchook, hook_env("presynchook", account.name))
        try:
            if self.stopping:  # asked to stop during the presynchook: nothing was started
                summary.interrupted = True
            else:
                await self._run_sync(account, pool, summary, quick)
        except FastsyncError as e:
            summary.failed = True
            self._notice("error", str(e), account.name)
        summary.seconds = time.monotonic() - started
        for kind, command in (("postsynchook", account.postsynchook), ("newmail_hook", account.newmail_hook)):
            if command and (kind == "postsynchook" or summary.stats.to_near > 0):
                env = hook_env(kind, account.name, summary.stats, summary.folders, summary.state())
                await self._hook(kind, command, env)
        return summary

    async def _hook(self, kind: str, command: str, env: dict[str, str]) -> None:
        result = await run_hook(kind, command, env)
        for line in result.output:
            self._notice("info", f"{kind}: {line}", env["FASTSYNC_ACCOUNT"])
        if not result.ok:
            self._notice("warning", result.describe(env["FASTSYNC_ACCOUNT"]))

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
            self._notice("error", str(e))
            return
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            got = type(names).__name__
            self._notice("error", f"{where}: gives a {got} (expected a list of folder names)")
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
            channel, ends = open_channel(self.ctx, jobs=False)
            proc = self.ctx.Process(
                target=idle_main, args=(spec, ends.events), name=f"fastsync-idle-{wid}", daemon=True
            )
            proc.start()
            ends.close()
            acct.idlers[wid] = proc
            self.idlers[wid], self.idle_channels[wid] = acct, channel
            loop.add_reader(channel.events, self._read_idler, wid)
            loop.add_reader(proc.sentinel, self._on_sentinel, wid)

    def _close_idler(self, wid: int) -> None:
        self.idlers.pop(wid, None)
        channel = self.idle_channels.pop(wid, None)
        if channel is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(channel.events)
            channel.close()

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
            self._close_idler(wid)
        acct.idlers.clear()

    # -- workers ----------------------------------------------------------------------------
    def _new_id(self) -> int:
        wid = self.next_worker
        self.next_worker += 1
        return wid

    def _spec(self, account: AccountConfig, wid: int) -> WorkerSpec:
        g = self.config.general
        remote = account.remote
        spec = WorkerSpec(
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
            memory_limit=g.maxworkermemory << 20,
        )
        tune = {**self.engine_tune, **self.account_tune.get(account.name, {})}
        if tune:
            spec = msgspec.structs.replace(spec, engine=msgspec.structs.replace(spec.engine, **tune))
        return spec

    def _spawn(self, pool: Pool) -> None:
        wid = self._new_id()
        pool.spawn(self._spec(pool.account, wid), self._on_sentinel)
        self.pools[wid] = pool

    def _forget(self, pool: Pool, wid: int) -> None:
        pool.forget(wid)
        self.pools.pop(wid, None)
        self.emit(ev.WorkerExited(account=pool.account.name, worker=wid))

    async def _run_sync(
        self, account: AccountConfig, pool: Pool, summary: AccountSummary, quick: bool
    ) -> None:
        for wid in pool.forget_dead():
            self._forget(pool, wid)
        if pool.stale or pool.account is not account:
            await self._shutdown_pool(pool)
            pool.stale = False
        pool.account = account
        try:
            if not pool.procs:
                self._spawn(pool)
            pool.put(ev.Discover(quick=quick))
            _preload_worker_code()
            found = await self._await_discovery(pool, summary)
            if found is not None:
                pairs, ranges = found
                if self.folder_pairs is not None:  # decided by the caller (fastsync migrate)
                    pairs = self.folder_pairs.get(account.name, [])
                    ranges = self.folder_ranges.get(account.name, {})
                await self._run_jobs(pool, Schedule(pairs, ranges, summary))
        finally:
            if not account.remote.holdconnectionopen or self.stopping or summary.failed:
                await self._shutdown_pool(pool)

    async def _await_discovery(
        self, pool: Pool, summary: AccountSummary
    ) -> tuple[list[tuple[FolderPair, int]], Ranges] | None:
        name = pool.account.name
        while True:
            e = await pool.inbox.get()
            if isinstance(e, ev.Discovered):
                self._forward(name, e)
                return sorted(zip(e.pairs, e.sizes, strict=True), key=lambda ps: -ps[1]), e.ranges
            if isinstance(e, ev.JobFailed):
                summary.failed = e.scope != "interrupted"
                summary.interrupted = e.scope == "interrupted"
                summary.config_error = e.scope == "config"
                self._forward(name, e)
                return None
            if isinstance(e, WorkerDied):
                self._forget(pool, e.worker)
                if self.stopping:
                    summary.interrupted = True
                    return None
                if pool.procs:  # a held worker that had died while idle; another one has the job
                    continue
                summary.failed = True
                self._notice("error", "worker died during folder discovery", name)
                return None
            self._forward(name, e)

    async def _run_jobs(self, pool: Pool, schedule: Schedule) -> None:
        """Queue the schedule's jobs and feed it every outcome until each folder has ended."""
        name = pool.account.name
        for job in schedule.first_jobs():
            pool.put(job)
        while len(pool.procs) < schedule.workers_wanted(pool.account.remote.maxconnections):
            self._spawn(pool)
        while not schedule.finished and pool.procs:
            e = await pool.inbox.get()
            jobs: list[ev.Job] = []
            if isinstance(e, WorkerDied):
                self._forget(pool, e.worker)
                jobs, said = schedule.died(e.worker, e.exitcode, self.stopping, len(pool.procs))
                for level, text in said:
                    self._notice(level, text, name)
                recycled = e.exitcode == 0 and not self.stopping  # left over its memory limit
                if not schedule.finished and (recycled or not pool.procs):
                    self._spawn(pool)
            else:
                if isinstance(e, ev.JobStarted):
                    schedule.started(e.worker, e.folder, e.part)
                elif isinstance(e, ev.JobDone):
                    jobs = schedule.done(e)
                elif isinstance(e, ev.JobFailed):
                    jobs = schedule.failed(e)
                self._forward(name, e)
            for job in jobs:
                pool.put(job)

    async def _shutdown_pool(self, pool: Pool) -> None:
        """Ask every worker of the pool to stop, wait for them (killing after a deadline)."""
        for wid in await pool.shutdown(lambda: self.aborting):
            self.pools.pop(wid, None)
            self.emit(ev.WorkerExited(account=pool.account.name, worker=wid))


def _preload_worker_code() -> None:
    """Import what every worker imports for its first job (a no-op after the first time)."""
    import fastsync.stores.imap
    import fastsync.stores.maildir
    import fastsync.workers.discovery  # noqa: F401


def _expr_globals(config: Config) -> dict[str, Any]:
    from fastsync.config import expr_globals

    return expr_globals(config)
