"""Worker processes: the folder-sync worker (worker.py) and the IDLE watcher (idle.py)."""

from __future__ import annotations

import signal


def detach_from_supervisor() -> None:
    """Drop the signal plumbing a forked child inherits from the supervisor's event loop.

    Workers are forked (the cheapest start: they inherit the supervisor's imports). The
    loop's wakeup fd and handlers must not fire in the child: the supervisor alone acts on
    SIGUSR1/SIGUSR2/SIGHUP, and the child sets its own SIGTERM/SIGINT handlers.
    """
    signal.set_wakeup_fd(-1)
    for sig in (signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
