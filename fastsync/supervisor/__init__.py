"""The supervisor: the run. It starts each account's part (accounts.py: lock, pool of workers,
IDLE watchers, one sync or many), owns the signals and the UI, and gives the exit code. Runs on
an asyncio loop (uvloop when present). The workers' store code (imapclient among it) is imported
only after the first worker of a run has started, in parallel with that worker's own discovery,
so that the workers forked after it inherit it instead of each importing it again.

Jobs are handed to an account's idle workers, largest folder first (pool.py); each worker (and
each IDLE watcher) sends its events back on a pipe of its own as msgspec frames, so no lock is
shared between processes. A worker that dies is noticed at once through its process sentinel;
the folder it was syncing is queued again (once, schedule.py), and the journal makes the retry
safe. With ``holdconnectionopen`` an account's workers (and their logged-in connections)
outlive a sync and serve the next one.

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
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from fastsync import events as ev
from fastsync.config import Config, ImapRepo, expr_globals
from fastsync.errors import ConfigError, ExitCode
from fastsync.events import AccountSummary
from fastsync.folders import FolderPair
from fastsync.supervisor.accounts import Account, quick_due
from fastsync.supervisor.schedule import Ranges
from fastsync.ui.base import UI, Controls

__all__ = ["RunControl", "RunOptions", "Supervisor", "quick_due"]

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
        self.accounts: dict[str, Account] = {}
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
        self.accounts = {n: Account(self, n) for n in names}
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
            await asyncio.gather(*(a.live(limit) for a in self.accounts.values()))
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
        return [proc for acct in self.accounts.values() for proc in acct.procs()]

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
            self.notice("info", "stopping after the current batch (again to abort)")
            for p in self._all_procs():
                with contextlib.suppress(ProcessLookupError):
                    p.terminate()
        for acct in self.accounts.values():
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
        for name, acct in self.accounts.items():
            if account is None or name == account:
                acct.wake.set()

    def _on_finish(self) -> None:
        self.finish_after_sync = True
        self.notice("info", "exiting after the current sync")
        for acct in self.accounts.values():
            acct.wake.set()

    def _on_reload(self) -> None:
        from fastsync.config import load_config
        from fastsync.credentials import get_password, password_needed

        try:
            config = load_config(self.config.path)
            pyglobals = expr_globals(config)
            for name in self.accounts:
                conf = config.accounts.get(name)
                for repo in (conf.remote, conf.local) if conf else ():
                    if isinstance(repo, ImapRepo) and repo.name not in self.passwords:
                        needed = password_needed(repo)
                        self.passwords[repo.name] = get_password(repo, pyglobals, None) if needed else None
        except ConfigError as e:
            self.notice("error", f"configuration not re-read: {e}")
            return
        self.config = config
        for acct in self.accounts.values():
            if acct.pool is not None:
                acct.pool.stale = True
        self.notice("info", f"configuration re-read from {config.path}; it applies from the next sync")

    # -- events -----------------------------------------------------------------------------
    def emit(self, e: ev.Event) -> None:
        """Every event of the run goes to the UI here, and only here."""
        self.ui.render(e)

    def notice(self, level: ev.Level, text: str, account: str = "") -> None:
        self.emit(ev.Notice(level=level, text=text, account=account))

    def new_id(self) -> int:
        """A worker id, unique in the run (workers and IDLE watchers of every account)."""
        wid = self.next_worker
        self.next_worker += 1
        return wid
