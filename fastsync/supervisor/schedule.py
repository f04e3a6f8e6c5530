"""One account's sync as a pure schedule: which jobs to queue, and what each outcome means.

The supervisor feeds it what the workers report (started, done, failed, died) and queues the
jobs it answers with; it knows nothing of processes, queues or UIs, so its rules are tested
as properties (tests/test_schedule.py), as the planner's are.

Rules:
- Jobs go out largest folder first. A folder with UID ranges (workers/split.py) is copied by
  its CopyRange jobs first; its SyncFolder job is queued once the last of them has ended,
  however it ended, and copies whatever they did not.
- Every folder ends exactly once: done, or failed (counted in ``folders_failed``), unless the
  account fails or the run is interrupted, which ends every folder at once.
- A worker that dies on a folder's sync gets that folder queued again, once; a second death
  on it fails the folder. A death during a range copy ends that range (the sync follows).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastsync import events as ev
from fastsync.events import AccountSummary
from fastsync.folders import FolderPair

Ranges = dict[str, list[tuple[int, int]]]  # far folder name -> UID ranges to copy first
Said = list[tuple[ev.Level, str]]  # lines for the UI, in the account's name


@dataclass
class Schedule:
    pairs: list[tuple[FolderPair, int]]  # (pair, size), largest first
    ranges: Ranges
    summary: AccountSummary
    pending: set[str] = field(default_factory=set)  # far names not ended yet
    parts_left: dict[str, int] = field(default_factory=dict)
    requeued: set[str] = field(default_factory=set)
    busy: dict[int, tuple[str, int]] = field(default_factory=dict)  # worker -> (far name, part)

    def __post_init__(self) -> None:
        self.by_far = {p.far: (p, size) for p, size in self.pairs}
        self.pending = set(self.by_far)

    @property
    def finished(self) -> bool:
        return not self.pending

    def first_jobs(self) -> list[ev.Job]:
        jobs: list[ev.Job] = []
        for pair, _size in self.pairs:
            for part, (lo, hi) in enumerate(self.ranges.get(pair.far, ()), 1):
                jobs.append(ev.CopyRange(pair=pair, lo=lo, hi=hi, part=part))
                self.parts_left[pair.far] = part
        jobs += [self._sync(far) for far in self.by_far if far not in self.parts_left]
        return jobs

    def workers_wanted(self, maxconnections: int) -> int:
        return min(max(1, maxconnections), len(self.pairs) + sum(self.parts_left.values()))

    def started(self, worker: int, folder: str, part: int) -> None:
        self.busy[worker] = (folder, part)

    def done(self, e: ev.JobDone) -> list[ev.Job]:
        self.busy.pop(e.worker, None)
        self.summary.stats.add(e.stats)
        if e.part:
            return self._part_ended(e.folder)
        if e.folder in self.pending:
            self.pending.discard(e.folder)
            self.summary.folders += 1
        return []

    def failed(self, e: ev.JobFailed) -> list[ev.Job]:
        self.busy.pop(e.worker, None)
        if e.scope in ("account", "config"):  # "config" past discovery: other folders may be written
            self.summary.failed = True
            self.pending.clear()
        elif e.scope == "interrupted":
            self.summary.stats.add(e.stats)  # what the folder had done before it stopped
            self.summary.interrupted = True
            self.pending.clear()
        elif e.part:
            return self._part_ended(e.folder)
        elif e.folder in self.pending:
            self.pending.discard(e.folder)
            self.summary.folders_failed += 1
        return []

    def died(
        self, worker: int, exitcode: int | None, stopping: bool, workers_left: int
    ) -> tuple[list[ev.Job], Said]:
        """A worker is gone. Returns the jobs to queue and what to say about it."""
        far, part = self.busy.pop(worker, ("", 0))
        if stopping:
            self.summary.interrupted = True
            if not workers_left:
                self.pending.clear()
            return [], []
        if far and part:
            said: Said = [(
                "warning",
                f"worker died (exit {exitcode}) on range copy {part} of {far!r}; "
                "the folder's sync copies the rest",
            )]
            return self._part_ended(far), said
        if far not in self.pending:
            return [], []
        if far in self.requeued:
            self.pending.discard(far)
            self.summary.folders_failed += 1
            return [], [("error", f"folder {far!r}: worker died twice; skipped")]
        self.requeued.add(far)
        return [self._sync(far)], [("warning", f"worker died (exit {exitcode}) on {far!r}; trying again")]

    def _part_ended(self, far: str) -> list[ev.Job]:
        if not self.parts_left.get(far):
            return []  # not a range this schedule queued (or its last one ended already)
        self.parts_left[far] -= 1
        return [] if self.parts_left[far] else [self._sync(far)]

    def _sync(self, far: str) -> ev.SyncFolder:
        pair, size = self.by_far[far]
        return ev.SyncFolder(pair=pair, size=size)
