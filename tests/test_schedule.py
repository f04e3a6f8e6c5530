"""The per-account schedule (supervisor/schedule.py): pure, so its rules are checked as properties
over every order in which workers can finish, fail and die."""

from __future__ import annotations

from collections import Counter, deque

from hypothesis import given, settings
from hypothesis import strategies as st

from fastsync import events as ev
from fastsync.events import AccountSummary, FolderStats
from fastsync.folders import FolderPair
from fastsync.supervisor.schedule import Schedule


def _pairs(sizes: list[int]) -> list[tuple[FolderPair, int]]:
    return [(FolderPair(f"F{i}", f"F{i}", True, False), size) for i, size in enumerate(sizes)]


folders = st.lists(st.integers(0, 10_000), min_size=1, max_size=6)
# per folder: how many UID ranges it is split into (0 = not split)
splits = st.lists(st.integers(0, 3), min_size=6, max_size=6)
outcomes = st.lists(st.sampled_from(["done", "done", "done", "failed", "died"]), max_size=60)


def _simulate(sizes, parts, script, workers=2):
    """Run the schedule with ``workers`` workers taking jobs in queue order; each job ends as the
    script says (then always "done" once the script is used up). Dead workers are replaced."""
    pairs = _pairs(sizes)
    ranges = {
        p.far: [(k * 10 + 1, k * 10 + 10) for k in range(n)]
        for (p, _), n in zip(pairs, parts, strict=False)
        if n
    }
    summary = AccountSummary(name="A")
    sched = Schedule(sorted(pairs, key=lambda ps: -ps[1]), ranges, summary)
    queue: deque[ev.Job] = deque(sched.first_jobs())
    issued: list[ev.Job] = list(queue)
    history: list[tuple[str, str, int]] = []  # (what ended, folder, part) in order
    script = deque(script)
    next_id = workers
    alive = list(range(workers))
    steps = 0
    while not sched.finished:
        steps += 1
        assert steps < 1000, "the schedule never finishes"
        assert queue, f"nothing queued but folders pending: {sched.pending}"
        job = queue.popleft()
        assert isinstance(job, ev.SyncFolder | ev.CopyRange)
        w = alive[steps % len(alive)]
        part = job.part if isinstance(job, ev.CopyRange) else 0
        sched.started(w, job.pair.far, part)
        what = script.popleft() if script else "done"
        if what == "done":
            done = ev.JobDone(worker=w, folder=job.pair.far, stats=FolderStats(to_near=1), part=part)
            new = sched.done(done)
        elif what == "failed":
            failed = ev.JobFailed(worker=w, folder=job.pair.far, scope="folder", message="x", part=part)
            new = sched.failed(failed)
        else:
            alive.remove(w)
            new, _said = sched.died(w, -9, stopping=False, workers_left=len(alive))
            alive.append(next_id)
            next_id += 1
        history.append((what, job.pair.far, part))
        queue.extend(new)
        issued.extend(new)
    return pairs, ranges, summary, issued, history, queue


@settings(max_examples=300, deadline=None)
@given(sizes=folders, parts=splits, script=outcomes)
def test_every_folder_ends_exactly_once_whatever_the_workers_do(sizes, parts, script):
    pairs, _ranges, summary, _issued, history, queue = _simulate(sizes, parts, script)
    assert summary.folders + summary.folders_failed == len(pairs)
    assert not summary.failed and not summary.interrupted
    assert not queue, f"jobs left over after the end: {queue}"
    # a folder's sync that ended (done, failed, or died twice) is never run again
    syncs = Counter((far, what) for what, far, part in history if not part)
    for p, _ in pairs:
        assert syncs[(p.far, "done")] + syncs[(p.far, "failed")] <= 1
        assert syncs[(p.far, "died")] <= 2


@settings(max_examples=300, deadline=None)
@given(sizes=folders, parts=splits, script=outcomes)
def test_a_split_folder_is_synced_only_after_all_its_ranges_ended(sizes, parts, script):
    _, ranges, _summary, issued, history, _queue = _simulate(sizes, parts, script)
    for far, rs in ranges.items():
        ended = [i for i, (what, f, part) in enumerate(history) if f == far and part]
        first_sync = next((i for i, (_w, f, part) in enumerate(history) if f == far and not part), None)
        assert len(ended) == len(rs), "every range runs once (a range is never retried)"
        assert first_sync is not None and first_sync > max(ended)
        assert sum(1 for j in issued if isinstance(j, ev.CopyRange) and j.pair.far == far) == len(rs)


@settings(max_examples=200, deadline=None)
@given(sizes=folders, script=outcomes)
def test_a_folder_is_retried_once_after_a_death_and_fails_after_a_second(sizes, script):
    _, _ranges, summary, issued, history, _queue = _simulate(sizes, [0] * 6, script)
    runs = Counter(j.pair.far for j in issued)
    deaths = Counter(f for what, f, _p in history if what == "died")
    for far, n in runs.items():
        assert n == 1 + min(deaths[far], 1), (far, n, deaths[far])
    assert summary.folders_failed == sum(1 for what, _f, _p in history if what == "failed") + sum(
        1 for n in deaths.values() if n >= 2
    )


def test_jobs_go_out_largest_folder_first_ranges_before_syncs():
    pairs = _pairs([5, 500, 50])
    sched = Schedule(sorted(pairs, key=lambda ps: -ps[1]), {"F2": [(1, 10), (11, 20)]}, AccountSummary("A"))
    jobs = sched.first_jobs()
    assert [(type(j).__name__, j.pair.far) for j in jobs] == [
        ("CopyRange", "F2"), ("CopyRange", "F2"), ("SyncFolder", "F1"), ("SyncFolder", "F0")
    ]
    assert sched.workers_wanted(8) == 5 and sched.workers_wanted(2) == 2 and sched.workers_wanted(0) == 1


def test_an_account_failure_or_a_stop_ends_every_folder_at_once():
    sched = Schedule(_pairs([1, 2, 3]), {}, AccountSummary("A"))
    sched.first_jobs()
    sched.failed(ev.JobFailed(worker=0, folder="F1", scope="account", message="login refused"))
    assert sched.finished and sched.summary.failed and sched.summary.folders == 0

    sched = Schedule(_pairs([1, 2]), {}, AccountSummary("A"))
    sched.first_jobs()
    sched.started(0, "F0", 0)
    jobs, said = sched.died(0, -15, stopping=True, workers_left=0)
    assert jobs == [] and said == [] and sched.finished and sched.summary.interrupted
