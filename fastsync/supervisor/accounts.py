"""One account's part of a run: its lock, its pool of workers, its IDLE watchers, and its syncs
(one, or one after another with ``autorefresh``/``idlefolders``), each between its hooks.

A sync: a worker discovers the folder pairs, the schedule (schedule.py) turns them into jobs,
the pool (pool.py) hands the jobs to its workers, and every outcome goes back to the schedule
until each folder has ended. Everything the account sees goes to the run's UI through
``Supervisor.emit``; what the run decides (stop, abort, finish, a re-read config) is read from
the supervisor, which owns the signals.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from fastsync import events as ev
from fastsync.config import AccountConfig, expr_globals
from fastsync.engine import EngineOptions
from fastsync.errors import AccountError, ConfigError, FastsyncError
from fastsync.events import AccountSummary
from fastsync.folders import FolderPair
from fastsync.hooks import hook_env, run_hook
from fastsync.plan import PlanOptions
from fastsync.state import AccountLock, LockedError
from fastsync.supervisor.pool import Pool, WorkerDied
from fastsync.supervisor.schedule import Ranges, Schedule
from fastsync.workers.channel import Channel, open_channel
from fastsync.workers.idle import IdleSpec, idle_main
from fastsync.workers.worker import WorkerSpec

if TYPE_CHECKING:
    from fastsync.supervisor import Supervisor


def quick_due(quick: int, forced: bool, index: int) -> bool:
    """Whether sync number ``index`` (0 = the first of this run) is a quick one.

    OfflineIMAP's rule: ``quick = K`` makes K quick syncs between full ones (the first is full);
    ``quick = -1`` makes all quick; ``-q`` forces quick.
    """
    if forced or quick < 0:
        return True
    return quick > 0 and index % (quick + 1) != 0


class Account:
    def __init__(self, run: Supervisor, name: str) -> None:
        self.run = run
        self.name = name
        self.wake = asyncio.Event()  # sync now (a request, an IDLE notice, a stop)
        self.quick_next = False  # an IDLE notice asked for a (quick) sync
        self.pool: Pool | None = None
        self.idlers: dict[int, Any] = {}  # IDLE watcher id -> its process
        self.idle_channels: dict[int, Channel] = {}  # IDLE watcher id -> its event pipe

    def procs(self) -> list[Any]:
        """Every process of this account now running: workers and IDLE watchers."""
        workers = list(self.pool.procs.values()) if self.pool is not None else []
        return workers + list(self.idlers.values())

    def notice(self, level: ev.Level, text: str) -> None:
        self.run.emit(ev.Notice(level=level, text=text, account=self.name))

    def forward(self, e: ev.WorkerEvent) -> None:
        """A worker's event, stamped with the account it belongs to."""
        e.account = self.name
        self.run.emit(e)

    def continuous(self, account: AccountConfig) -> bool:
        return not self.run.opts.once and bool(account.autorefresh or account.remote.idlefolders)

    # -- the account's life ---------------------------------------------------------------------
    async def live(self, limit: asyncio.Semaphore) -> None:
        """Lock the account, sync it (again and again when continuous) until done or stopped."""
        run, name = self.run, self.name
        lock = AccountLock(Path(run.config.general.metadata), name)
        try:
            lock.acquire()
        except AccountError as e:  # LockedError included
            summary = AccountSummary(name=name, locked=isinstance(e, LockedError), failed=True)
            run.results[name] = summary
            run.notice("error", str(e))
            run.emit(ev.AccountDone(account=name, summary=summary))
            return
        pool = self.pool = Pool(account=run.config.accounts[name], ctx=run.ctx)
        index = 0
        try:
            if self.continuous(pool.account):
                self._start_idlers(pool.account)
            while not run.stopping:
                account = run.config.accounts.get(name, pool.account)
                quick = quick_due(account.quick, run.opts.quick, index) or self.quick_next
                self.quick_next = False
                self.wake.clear()
                async with limit:
                    summary = await self._sync(account, pool, quick)
                index += 1
                run.results[name] = summary
                run.emit(ev.AccountDone(account=name, summary=summary))
                if not self.continuous(account) or run.stopping or run.finish_after_sync:
                    return
                delay = account.autorefresh * 60 if account.autorefresh else None
                run.emit(ev.AccountSleeping(account=name, seconds=delay))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.wake.wait(), timeout=delay)
                if run.finish_after_sync:
                    return
        finally:
            self._stop_idlers()
            await self._shutdown_pool(pool)
            pool.close()
            result = run.results.get(name)
            if index == 1 and result is not None and result.config_error:
                lock.discard()  # the first sync stopped before writing anything: leave no trace
            else:
                lock.release()

    async def _sync(self, account: AccountConfig, pool: Pool, quick: bool) -> AccountSummary:
        summary = AccountSummary(name=account.name)
        started = time.monotonic()
        self.run.emit(ev.AccountStarted(account=account.name, quick=quick))
        if account.presynchook:
            await self._hook("presynchook", account.presynchook, hook_env("presynchook", account.name))
        try:
            if self.run.stopping:  # asked to stop during the presynchook: nothing was started
                summary.interrupted = True
            else:
                await self._run_sync(account, pool, summary, quick)
        except FastsyncError as e:
            summary.failed = True
            self.notice("error", str(e))
        summary.seconds = time.monotonic() - started
        for kind, command in (("postsynchook", account.postsynchook), ("newmail_hook", account.newmail_hook)):
            if command and (kind == "postsynchook" or summary.stats.to_near > 0):
                env = hook_env(kind, account.name, summary.stats, summary.folders, summary.state())
                await self._hook(kind, command, env)
        return summary

    async def _hook(self, kind: str, command: str, env: dict[str, str]) -> None:
        result = await run_hook(kind, command, env)
        for line in result.output:
            self.notice("info", f"{kind}: {line}")
        if not result.ok:
            self.run.notice("warning", result.describe(self.name))

    # -- IDLE watchers ----------------------------------------------------------------------
    def _start_idlers(self, account: AccountConfig) -> None:
        from fastsync import folders

        run, src = self.run, account.remote.idlefolders
        if not src:
            return
        where = f"{run.config.path}: [Repository {account.remote.name}] idlefolders"
        try:
            names = folders.eval_value(src, where, expr_globals(run.config))
        except ConfigError as e:
            run.notice("error", str(e))
            return
        if not isinstance(names, list | tuple) or not all(isinstance(n, str) for n in names):
            got = type(names).__name__
            run.notice("error", f"{where}: gives a {got} (expected a list of folder names)")
            return
        loop = asyncio.get_running_loop()
        for folder in names:
            wid = run.new_id()
            spec = IdleSpec(
                worker=wid,
                repo=account.remote,
                password=run.passwords.get(account.remote.name),
                folder=folder,
            )
            channel, ends = open_channel(run.ctx, jobs=False)
            proc = run.ctx.Process(
                target=idle_main, args=(spec, ends.events), name=f"fastsync-idle-{wid}", daemon=True
            )
            proc.start()
            ends.close()
            self.idlers[wid], self.idle_channels[wid] = proc, channel
            loop.add_reader(channel.events, self._read_idler, wid)
            loop.add_reader(proc.sentinel, self._idler_exited, wid)

    def _read_idler(self, wid: int) -> None:
        channel = self.idle_channels[wid]
        events, eof = channel.read()
        if eof:
            asyncio.get_running_loop().remove_reader(channel.events)
        for e in events:
            self._idle_event(e)

    def _idle_event(self, e: ev.WorkerEvent) -> None:
        if isinstance(e, ev.JobFailed):  # said once, as what it is: the watcher stopped
            self.notice("error", f"IDLE on {e.folder!r} stopped: {e.message}")
            return
        if isinstance(e, ev.Info) and e.level == "newmail":
            self.quick_next = True
            self.wake.set()
        self.forward(e)

    def _idler_exited(self, wid: int) -> None:
        proc = self.idlers.pop(wid)
        asyncio.get_running_loop().remove_reader(proc.sentinel)
        proc.join(0)
        self._read_idler(wid)
        self._close_idler(wid)
        if not self.run.stopping:
            self.notice("warning", f"IDLE watcher exited ({proc.exitcode})")

    def _close_idler(self, wid: int) -> None:
        channel = self.idle_channels.pop(wid, None)
        if channel is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(channel.events)
            channel.close()

    def _stop_idlers(self) -> None:
        loop = asyncio.get_running_loop()
        for wid, proc in list(self.idlers.items()):
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(1)
            with contextlib.suppress(ValueError, OSError):
                loop.remove_reader(proc.sentinel)
            self._close_idler(wid)
        self.idlers.clear()

    # -- workers ----------------------------------------------------------------------------
    def _spec(self, account: AccountConfig, wid: int) -> WorkerSpec:
        run = self.run
        g, remote, opts = run.config.general, account.remote, run.opts
        spec = WorkerSpec(
            worker=wid,
            account=account,
            config_path=run.config.path,
            metadata=g.metadata,
            engine=EngineOptions(
                plan=PlanOptions(
                    write_far=not remote.readonly,
                    write_near=not account.local.readonly,
                    delete_to_far=remote.sync_deletes,
                    delete_to_near=account.local.sync_deletes,
                    max_delete_percent=account.max_delete_percent,
                    force_deletes=opts.force_deletes,
                ),
                dry_run=opts.dry_run,
                maxsize=account.maxsize,
            ),
            far_password=run.passwords.get(remote.name),
            near_password=run.passwords.get(account.local.name),
            pythonfile=g.pythonfile,
            only_folders=opts.folders,
            fsync=g.fsync,
            debug=opts.debug,
            logfile=opts.logfile,
            keepalive=float(remote.keepalive) if remote.holdconnectionopen and remote.keepalive else None,
            memory_limit=g.maxworkermemory << 20,
        )
        tune = {**run.engine_tune, **run.account_tune.get(account.name, {})}
        if tune:
            spec = msgspec.structs.replace(spec, engine=msgspec.structs.replace(spec.engine, **tune))
        return spec

    def _spawn(self, pool: Pool) -> None:
        pool.spawn(self._spec(pool.account, self.run.new_id()), self._worker_exited)

    def _worker_exited(self, wid: int) -> None:
        if self.pool is not None and wid in self.pool.procs:
            self.pool.exited(wid)

    def _forget(self, pool: Pool, wid: int) -> None:
        pool.forget(wid)
        self.run.emit(ev.WorkerExited(account=self.name, worker=wid))

    async def _run_sync(
        self, account: AccountConfig, pool: Pool, summary: AccountSummary, quick: bool
    ) -> None:
        run = self.run
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
                if run.folder_pairs is not None:  # decided by the caller (fastsync migrate)
                    pairs = run.folder_pairs.get(account.name, [])
                    ranges = run.folder_ranges.get(account.name, {})
                await self._run_jobs(pool, Schedule(pairs, ranges, summary))
        finally:
            if not account.remote.holdconnectionopen or run.stopping or summary.failed:
                await self._shutdown_pool(pool)

    async def _await_discovery(
        self, pool: Pool, summary: AccountSummary
    ) -> tuple[list[tuple[FolderPair, int]], Ranges] | None:
        while True:
            e = await pool.inbox.get()
            if isinstance(e, ev.Discovered):
                self.forward(e)
                return sorted(zip(e.pairs, e.sizes, strict=True), key=lambda ps: -ps[1]), e.ranges
            if isinstance(e, ev.JobFailed):
                summary.failed = e.scope != "interrupted"
                summary.interrupted = e.scope == "interrupted"
                summary.config_error = e.scope == "config"
                self.forward(e)
                return None
            if isinstance(e, WorkerDied):
                self._forget(pool, e.worker)
                if self.run.stopping:
                    summary.interrupted = True
                    return None
                if pool.procs:  # a held worker that had died while idle; another one has the job
                    continue
                summary.failed = True
                self.notice("error", "worker died during folder discovery")
                return None
            self.forward(e)

    async def _run_jobs(self, pool: Pool, schedule: Schedule) -> None:
        """Queue the schedule's jobs and feed it every outcome until each folder has ended."""
        for job in schedule.first_jobs():
            pool.put(job)
        while len(pool.procs) < schedule.workers_wanted(pool.account.remote.maxconnections):
            self._spawn(pool)
        while not schedule.finished and pool.procs:
            e = await pool.inbox.get()
            jobs: list[ev.Job] = []
            if isinstance(e, WorkerDied):
                self._forget(pool, e.worker)
                jobs, said = schedule.died(e.worker, e.exitcode, self.run.stopping, len(pool.procs))
                for level, text in said:
                    self.notice(level, text)
                recycled = e.exitcode == 0 and not self.run.stopping  # left over its memory limit
                if not schedule.finished and (recycled or not pool.procs):
                    self._spawn(pool)
            else:
                if isinstance(e, ev.JobStarted):
                    schedule.started(e.worker, e.folder, e.part)
                elif isinstance(e, ev.JobDone):
                    jobs = schedule.done(e)
                elif isinstance(e, ev.JobFailed):
                    jobs = schedule.failed(e)
                self.forward(e)
            for job in jobs:
                pool.put(job)

    async def _shutdown_pool(self, pool: Pool) -> None:
        """Ask every worker of the pool to stop, wait for them (killing after a deadline)."""
        for wid in await pool.shutdown(lambda: self.run.aborting):
            self.run.emit(ev.WorkerExited(account=self.name, worker=wid))


def _preload_worker_code() -> None:
    """Import what every worker imports for its first job (a no-op after the first time)."""
    import fastsync.stores.imap
    import fastsync.stores.maildir
    import fastsync.workers.discovery  # noqa: F401
