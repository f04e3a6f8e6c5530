"""Account hooks: ``presynchook``, ``postsynchook`` and ``newmail_hook`` shell commands.

Each runs with ``/bin/sh -c`` in the supervisor's environment plus ``FASTSYNC_*`` variables
naming the account and, after a sync, its counts. A hook never gets a password. Its output is
handed back line by line for the UI; a hook that fails or outlasts its time limit is
reported and does not stop the sync (OfflineIMAP behaves the same).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from dataclasses import dataclass

from fastsync.events import FolderStats

log = logging.getLogger(__name__)

HOOK_TIMEOUT = 300.0  # seconds; a hook that hangs must not hang continuous sync


@dataclass
class HookResult:
    kind: str
    returncode: int | None  # None: killed after the time limit
    output: list[str]

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self, account: str) -> str:
        if self.returncode is None:
            return f"account {account}: {self.kind} killed after {HOOK_TIMEOUT:.0f} s"
        return f"account {account}: {self.kind} exited {self.returncode}"


def hook_env(
    kind: str, account: str, stats: FolderStats | None = None, folders: int = 0, status: str = ""
) -> dict[str, str]:
    """The variables a hook sees besides the inherited environment."""
    env = {"FASTSYNC_HOOK": kind, "FASTSYNC_ACCOUNT": account}
    if stats is not None:
        env.update(
            FASTSYNC_NEW_MESSAGES=str(stats.to_near),
            FASTSYNC_COPIED_TO_NEAR=str(stats.to_near),
            FASTSYNC_COPIED_TO_FAR=str(stats.to_far),
            FASTSYNC_FLAGS_CHANGED=str(stats.flags_far + stats.flags_near),
            FASTSYNC_DELETED=str(stats.del_far + stats.del_near),
            FASTSYNC_ERRORS=str(stats.errors),
            FASTSYNC_FOLDERS=str(folders),
            FASTSYNC_STATUS=status,
        )
    return env


async def run_hook(kind: str, command: str, env: dict[str, str], timeout: float = HOOK_TIMEOUT) -> HookResult:
    """Run one hook to its end (or its time limit); stdout and stderr together, as lines."""
    proc = await asyncio.create_subprocess_shell(
        command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **env},
        start_new_session=True,  # a Ctrl-C meant for fastsync does not kill the hook mid-way
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, 9)
        await proc.wait()
        return HookResult(kind, None, [])
    lines = out.decode("utf-8", "replace").splitlines()
    log.debug("%s exited %s", kind, proc.returncode)
    return HookResult(kind, proc.returncode, lines)
