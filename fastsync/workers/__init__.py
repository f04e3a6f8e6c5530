"""Worker processes: the folder-sync worker (worker.py) and the IDLE watcher (idle.py)."""

from __future__ import annotations

import signal


def detach_from_supervisor() -> None:
    """Drop what a forked child inherits from the supervisor: its loop's signal plumbing, and
    its ends of the workers' pipes.

    Workers are forked (the cheapest start: they inherit the supervisor's imports). The
    loop's wakeup fd and handlers must not fire in the child: the supervisor alone acts on
    SIGUSR1/SIGUSR2/SIGHUP, and the child sets its own SIGTERM/SIGINT handlers.
    """
    from fastsync.workers.channel import close_inherited

    signal.set_wakeup_fd(-1)
    close_inherited()  # the supervisor's ends of every worker's pipes: none of this child's business
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
