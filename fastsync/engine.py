"""One folder pair: select both sides, load state, list, plan, apply in batches, commit.

Order of writes (so that a crash at any point loses nothing and duplicates nothing):
message data is stored and made durable (store.flush) before the journal record that pairs
it; deletions happen before the record that forgets their pair; the snapshot is committed
last. New messages that were stored but not recorded show up as new on both sides on the
next run and are paired by content (plan.py), not copied again.
"""

from __future__ import annotations

import logging
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import msgspec

from fastsync import events as ev
from fastsync.errors import DeletionGuard, FolderError, MessageError
from fastsync.events import FolderStats
from fastsync.folders import FolderPair
from fastsync.model import Fetched, Outgoing, Side, flags_repr, header_section, message_id
from fastsync.plan import Plan, PlanOptions, new_messages, plan
from fastsync.state import FlagsSet, FolderState, Header, Paired, Retry, StateFile, Unpaired, apply_record
from fastsync.stored_check import altered_messages
from fastsync.stores.base import Changes, FolderStatus, Listing, Store, uid_set
from fastsync.uidmap import FLAGS_CODE, UID_CODE, Cursor, UidMap

log = logging.getLogger(__name__)

Emit = Callable[[ev.Progress | ev.Info], None]  # the engine's events; the worker sends them on


class EngineOptions(msgspec.Struct, frozen=True):
    plan: PlanOptions = msgspec.field(default_factory=PlanOptions)
    dry_run: bool = False
    batch_bytes: int = 8 << 20  # per stored chunk: bounds memory and the work a crash can lose
    batch_count: int = 1000
    max_message_errors: int = 20
    maxsize: int | None = None  # messages larger than this are not copied
    since: float | None = None  # far messages older than this (INTERNALDATE, by day) are not copied
    before: float | None = None  # far messages this new or newer are not copied
    # far folder -> far UIDs not to copy (sorted, packed UID_CODE array): Gmail's other labels
    skip_far: dict[str, bytes] = msgspec.field(default_factory=dict)


@dataclass
class _Run:
    far: Store
    near: Store
    pair: FolderPair
    statefile: StateFile
    opts: EngineOptions
    emit: Emit
    worker: int  # the worker this runs in (0 outside a pool)
    state: FolderState = field(default_factory=FolderState)
    stats: FolderStats = field(default_factory=FolderStats)
    fatal: str | None = None  # the destination cannot take more: the folder stops after this chunk
    max_new_far: int = 0  # highest UID this run created on each side
    max_new_near: int = 0

    def note_new_uid(self, side: Side, uid: int) -> None:
        if side is Side.FAR:
            self.max_new_far = max(self.max_new_far, uid)
        else:
            self.max_new_near = max(self.max_new_near, uid)

    def record(self, rec: Paired | Unpaired | FlagsSet | Header | Retry) -> None:
        apply_record(self.state, rec)  # first: a record that does not apply never reaches the disk
        self.statefile.journal(rec)

    def info(self, level: ev.Level, text: str) -> None:
        self.emit(ev.Info(worker=self.worker, folder=self.pair.far, level=level, text=text))

    def progress(self, what: ev.WorkKind, done: int, total: int, nbytes: int = 0) -> None:
        self.emit(
            ev.Progress(
                worker=self.worker, folder=self.pair.far, what=what, done=done, total=total, bytes=nbytes
            )
        )

    def message_error(self, text: str) -> None:
        self.stats.errors += 1
        self.info("error", text)
        if self.stats.errors >= self.opts.max_message_errors:
            raise FolderError(f"{self.pair.far!r}: stopped after {self.stats.errors} message errors")


def sync_folder(
    far: Store,
    near: Store,
    pair: FolderPair,
    statefile: StateFile,
    opts: EngineOptions,
    emit: Emit,
    worker: int = 0,
) -> FolderStats:
    """Sync one folder pair both ways; return what was done. Raises FolderError/StoreError."""
    run = _Run(far, near, pair, statefile, opts, emit, worker)
    fst, lf = _open(far, pair.far, pair.far_exists, opts.dry_run)
    nst, ln = _open(near, pair.near, pair.near_exists, opts.dry_run)
    state = _load_state(run, fst, nst)
    if state is None and lf is None and _pull_all(fst, nst, opts, pair.far):
        return _first_pull(run, fst, nst)
    sizes = opts.maxsize is not None or opts.dry_run  # only a size limit and a dry run's report use them
    if lf is None:
        lf = _listing(
            far, Side.FAR, state, (state.far_modseq if state else 0, fst.highestmodseq), opts, sizes=sizes
        )
    if ln is None:
        if state is not None and lf.moved:
            near.will_change(_renamed_near(state, lf))
        ln = _listing(
            near, Side.NEAR, state, (state.near_modseq if state else 0, nst.highestmodseq), opts, sizes=sizes
        )
    new_far, new_near = new_messages(state, lf.flags, ln.flags)
    far_keys = near_keys = far_loose = near_loose = None
    if new_far and new_near:
        # Not pair.*_exists: a retried job (worker died, reconnect) carries the pair as
        # discovered, but the folder it created may already hold unrecorded copies.
        far_keys, far_loose = far.identity_keys(new_far)
        near_keys, near_loose = near.identity_keys(new_near)
    p = plan(state, lf.flags, ln.flags, opts.plan, far_keys, near_keys, far_loose, near_loose)
    if p.guard:
        raise DeletionGuard(f"{pair.far!r} <-> {pair.near!r}: {p.guard}")
    _drop_unselected(p, far, lf, ln, opts, pair.far)
    if opts.dry_run:
        _describe(p, run)
        run.stats = _planned_stats(p)
        run.stats.bytes = sum(lf.sizes.get(u, 0) for u in p.copy_to_near) + sum(
            ln.sizes.get(u, 0) for u in p.copy_to_far
        )
        return run.stats
    # The listings are done with: on a huge folder they are megabytes, and _finish lists again.
    del lf, ln, new_far, new_near, far_keys, near_keys, far_loose, near_loose
    run.state = state if state is not None else _fresh_state(statefile, fst, nst)
    _apply(p, run)
    _finish(p, fst, nst, run)
    return run.stats


def _renamed_near(state: FolderState, lf: Listing) -> list[int]:
    """The near twins of the far messages whose flags moved since the state (as a listing by
    difference says): the near messages a flag sync will most likely change. Told before its
    listing, a Maildir finds their files in that same scan instead of one more."""
    pairs, out = state.pairs, []
    for fu in lf.moved or ():
        nu = pairs.near_of(fu)
        if nu is not None and pairs.flags_of(fu) != lf.flags.get(fu):
            out.append(nu)
    return out


def _pull_all(fst: FolderStatus, nst: FolderStatus, opts: EngineOptions, folder: str) -> bool:
    """A first sync into an empty near folder copies every far message, so it needs no
    listing: a fetch of the whole UID range does (when UIDs are dense enough for that, and
    nothing is to be left out)."""
    return (
        nst.messages == 0
        and fst.messages > 0
        and fst.uidnext > fst.messages  # a server that did not tell UIDNEXT gets a listing
        and fst.uidnext - 1 <= 2 * fst.messages + 1000
        and opts.plan.write_near
        and not opts.dry_run
        and opts.maxsize is None
        and opts.since is None
        and opts.before is None
        and not opts.skip_far.get(folder)
    )


def _fresh_state(
    statefile: StateFile, fst: FolderStatus, nst: FolderStatus, far_modseq: int = 0
) -> FolderState:
    """An empty state for these UIDVALIDITYs, committed: from here on the journal applies to it."""
    state = FolderState(far_validity=fst.validity, near_validity=nst.validity, far_modseq=far_modseq)
    statefile.commit(state)
    return state


def _first_pull(run: _Run, fst: FolderStatus, nst: FolderStatus) -> FolderStats:
    run.state = _fresh_state(run.statefile, fst, nst)
    _copy(run, run.far, run.near, range(1, fst.uidnext), Side.NEAR, gaps=True)
    # Far UIDs below UIDNEXT count as seen only once the closing check found every far
    # message paired; until then they all stay new, and the next run copies what was missed.
    _finish(Plan(), fst, nst, run, seen_if_settled=fst.uidnext - 1)
    return run.stats


def copy_range(
    far: Store,
    near: Store,
    pair: FolderPair,
    statefile: StateFile,
    uids: tuple[int, int],
    opts: EngineOptions,
    emit: Emit,
    worker: int = 0,
) -> FolderStats:
    """Copy the far messages with UIDs in ``uids`` (lo, hi) to near, pairs into ``statefile``
    (a part state: workers/split.py says when this is safe). Resumes: UIDs the part state
    already pairs are skipped. UIDs that do not exist are simply not there."""
    run = _Run(far, near, pair, statefile, opts, emit, worker)
    fst = far.select(pair.far)
    nst = near.select(pair.near)
    state = statefile.load()
    if state is None or (state.far_validity, state.near_validity) != (fst.validity, nst.validity):
        # far_modseq: changes after this mark (flags of messages already copied) are listed
        # by the folder's sync that merges this part
        state = _fresh_state(statefile, fst, nst, fst.highestmodseq)
    run.state = state
    lo, hi = uids
    done = state.pairs
    skip = opts.skip_far.get(pair.far)
    left_out = array(UID_CODE, skip or b"")
    wanted = [u for u in range(lo, hi + 1) if u not in done and not (skip and _holds(left_out, u))]
    _copy(run, far, near, wanted, Side.NEAR, gaps=True)
    statefile.commit(state)
    return run.stats


_NO_SIZES = 2**32 - 2  # sizes of UIDs above this: at most the last one's (4294967295:* is valid)


def _sizes_above(max_uid: int, retry: set[int]) -> int:
    return min(max_uid, min(retry, default=max_uid + 1) - 1)


def _listing(
    store: Store,
    side: Side,
    state: FolderState | None,
    marks: tuple[int, int],
    opts: EngineOptions,
    *,
    sizes: bool = True,
) -> Listing:
    """Every UID of the selected folder with its flags, and sizes of new ones (and retries).

    ``sizes``: False when nothing will be copied (no sizes are asked for then).
    ``marks``: (the change mark the state was recorded at, the folder's mark now). With a
    store that can list by difference (CONDSTORE), only what changed since is fetched; the
    other messages' flags are those the state recorded. Not when a side is read-only (a flag
    change it could not take is recorded as not synced, and only a full listing still shows
    it), nor when the mark went back (a server restored from backup): then all is listed.
    """
    if state is None:
        return store.list_messages(0)
    if not sizes:
        above = _NO_SIZES
    elif side is Side.FAR:
        above = _sizes_above(state.far_max_uid, state.retry_far)
    else:
        above = _sizes_above(state.near_max_uid, state.retry_near)
    since, now = marks
    changes = None
    if 0 < since <= now and opts.plan.write_far and opts.plan.write_near:
        changes = store.list_changes(since, above)
    if changes is None:
        return store.list_messages(above)
    moved = list(changes.flags)
    return Listing(flags=_flags_by_difference(state, side, changes), sizes=changes.sizes, moved=moved)


def _flags_by_difference(state: FolderState, side: Side, changes: Changes) -> UidMap:
    """Flags of every UID present: those changed since the mark as listed, the others as the
    state recorded them (0 for the unpaired: new ones get theirs with their copy). Sorted
    arrays throughout; when nothing came or went, the recorded flags are copied whole."""
    present = changes.uids
    recorded = state.pairs.flags_by(side)
    if present == recorded.uids:
        values = array(FLAGS_CODE, recorded.vals)
    else:
        find = Cursor(recorded).find
        values = array(FLAGS_CODE, bytes(len(present)))
        for i, u in enumerate(present):
            fl = find(u)
            if fl:
                values[i] = fl
    flags = UidMap(present, values)
    for u, fl in changes.flags.items():
        i = flags.index(u)
        if i >= 0:
            values[i] = fl
    return flags


def _open(store: Store, name: str, exists: bool, dry_run: bool) -> tuple[FolderStatus, Listing | None]:
    """Select a folder, creating it first if it is new; in a dry run a new folder lists as empty."""
    if not exists:
        if dry_run:
            return FolderStatus(validity=0, uidnext=1, messages=0), Listing(flags={}, sizes={})
        store.create_folder(name)
    return store.select(name), None


def _load_state(run: _Run, fst: FolderStatus, nst: FolderStatus) -> FolderState | None:
    try:
        state = run.statefile.load()
    except FolderError as e:  # corrupt state: said once, then treated as none (never deletes)
        run.info("warning", str(e))
        return None
    if state is None:
        return None
    for side, old, new in (
        (Side.FAR, state.far_validity, fst.validity),
        (Side.NEAR, state.near_validity, nst.validity),
    ):
        if old != new and new != 0:
            name = run.pair.far if side is Side.FAR else run.pair.near
            run.info(
                "warning",
                f"UIDVALIDITY of {side.value} folder {name!r} changed ({old} -> {new}): "
                "re-pairing messages by content, nothing is deleted",
            )
            return None
    return state


def _drop_unselected(p: Plan, far: Store, lf: Listing, ln: Listing, opts: EngineOptions, folder: str) -> None:
    """Leave out of the copies what the selection excludes: too large, outside the date
    window, or a Gmail message another label folder copies (migrate.gmail)."""
    skip = opts.skip_far.get(folder)
    if skip and p.copy_to_near:
        left_out = array(UID_CODE, skip)
        p.copy_to_near = [u for u in p.copy_to_near if not _holds(left_out, u)]
    if opts.maxsize is not None:
        limit = opts.maxsize
        p.copy_to_near = [u for u in p.copy_to_near if lf.sizes.get(u, 0) <= limit]
        p.copy_to_far = [u for u in p.copy_to_far if ln.sizes.get(u, 0) <= limit]
    if (opts.since is not None or opts.before is not None) and p.copy_to_near:
        inside = far.uids_in_dates(opts.since, opts.before)
        if inside is not None:
            p.copy_to_near = [u for u in p.copy_to_near if u in inside]


def _holds(sorted_uids: array[int], uid: int) -> bool:
    i = bisect_left(sorted_uids, uid)
    return i < len(sorted_uids) and sorted_uids[i] == uid


def _describe(p: Plan, run: _Run) -> None:
    """Dry run: say exactly what would be done, per kind, with the UIDs."""
    pair = run.pair
    lines = []
    if not pair.far_exists:
        lines.append(f"would create far folder {pair.far!r}")
    if not pair.near_exists:
        lines.append(f"would create near folder {pair.near!r}")
    if p.copy_to_near:
        lines.append(f"would copy {len(p.copy_to_near)} far->near: far UIDs {uid_set(p.copy_to_near)}")
    if p.copy_to_far:
        lines.append(f"would copy {len(p.copy_to_far)} near->far: near UIDs {uid_set(p.copy_to_far)}")
    for side, changes in (("far", p.flags_far), ("near", p.flags_near)):
        for ch in changes:
            lines.append(
                f"would change flags on {side} (+{flags_repr(ch.add)} -{flags_repr(ch.remove)}): "
                f"UIDs {uid_set(ch.uids)}"
            )
    if p.delete_far:
        lines.append(f"would delete {len(p.delete_far)} on far: UIDs {uid_set(p.delete_far)}")
    if p.delete_near:
        lines.append(f"would delete {len(p.delete_near)} on near: UIDs {uid_set(p.delete_near)}")
    if p.paired:
        lines.append(f"would pair {len(p.paired)} messages found on both sides (no copy)")
    for line in lines:
        run.info("info", line)


def _planned_stats(p: Plan) -> FolderStats:
    c = p.counts()
    return FolderStats(
        to_near=c["to_near"],
        to_far=c["to_far"],
        flags_far=c["flags_far"],
        flags_near=c["flags_near"],
        del_far=c["del_far"],
        del_near=c["del_near"],
    )


def _apply(p: Plan, run: _Run) -> None:
    if p.paired:
        run.record(Paired(pairs=p.paired))
    touched = [uid for ch in p.flags_near for uid in ch.uids]
    if (touched and p.delete_near) or len(p.flags_near) > 1:  # else the one call finds its own
        run.near.will_change(p.delete_near + touched)
    _apply_deletions(p, run)
    _apply_flags(p, run)
    _copy(run, run.far, run.near, p.copy_to_near, Side.NEAR)
    _copy(run, run.near, run.far, p.copy_to_far, Side.FAR)


def _apply_deletions(p: Plan, run: _Run) -> None:
    if p.delete_far:
        run.far.delete(p.delete_far)
        run.stats.del_far += len(p.delete_far)
    if p.delete_near:
        run.near.delete(p.delete_near)
        run.near.flush()
        run.stats.del_near += len(p.delete_near)
    if p.delete_far or p.delete_near:
        run.progress("delete", len(p.delete_far) + len(p.delete_near), 0)
    if p.unpaired:
        run.record(Unpaired(far_uids=p.unpaired))


def _apply_flags(p: Plan, run: _Run) -> None:
    for ch in p.flags_far:
        run.far.set_flags(ch.uids, ch.add, ch.remove)
        run.stats.flags_far += len(ch.uids)
    for ch in p.flags_near:
        run.near.set_flags(ch.uids, ch.add, ch.remove)
        run.stats.flags_near += len(ch.uids)
    if p.flags_near:
        run.near.flush()
    if p.synced_flags:
        run.record(FlagsSet(items=p.synced_flags))


def _copy(
    run: _Run, src: Store, dst: Store, uids: list[int] | range, to: Side, *, gaps: bool = False
) -> None:
    """Copy messages src -> dst: one streaming fetch, stored and paired in capped chunks.

    Each chunk is made durable (dst.flush) before the journal record that pairs it.
    Messages that vanished from src since the listing are simply not copied (and retried
    next run), unless ``gaps``: ``uids`` is a range that need not all exist.
    """
    if not uids:
        return
    progress = _CopyProgress(run, to, len(uids))
    chunk: list[Fetched] = []
    chunk_bytes = 0
    wanted = set() if gaps else set(uids)  # a range need not all exist: no set of a million UIDs
    for m in src.fetch(uids):
        wanted.discard(m.uid)
        chunk.append(m)
        chunk_bytes += len(m.data)
        if chunk_bytes >= run.opts.batch_bytes or len(chunk) >= run.opts.batch_count:
            _commit_chunk(run, dst, chunk, to, progress)
            chunk, chunk_bytes = [], 0
    if chunk:
        _commit_chunk(run, dst, chunk, to, progress)
    if wanted and not gaps:
        # Expunged meanwhile, or a response that did not parse: either way not copied, and
        # not to be forgotten (their UIDs are below the max UID recorded at the end).
        missing = sorted(wanted)
        run.info(
            "warning",
            f"{len(missing)} message(s) not received "
            f"({_src_side(to)} UIDs {uid_set(missing)}); retried next run",
        )
        run.record(Retry(side=_src_side(to), uids=missing, add=True))


@dataclass
class _CopyProgress:
    run: _Run
    to: Side
    total: int
    done: int = 0
    sent_bytes: int = 0

    def advance(self, count: int, nbytes: int) -> None:
        self.done += count
        self.sent_bytes += nbytes
        self.run.stats.bytes += nbytes
        what: ev.WorkKind = "to_near" if self.to is Side.NEAR else "to_far"
        self.run.progress(what, self.done, self.total, self.sent_bytes)


def _commit_chunk(run: _Run, dst: Store, chunk: list[Fetched], to: Side, progress: _CopyProgress) -> None:
    new_uids = _store_batch(run, dst, chunk)
    pairs: list[tuple[int, int, int]] = []
    retry: list[int] = []
    unknown: list[int] = []
    stored: list[tuple[Outgoing, int]] = []
    nbytes = 0
    for m, nu in zip(chunk, new_uids, strict=True):
        if nu is None:
            unknown.append(m.uid)
        elif nu < 0:
            retry.append(m.uid)
        else:
            pairs.append((m.uid, nu, m.flags) if to is Side.NEAR else (nu, m.uid, m.flags))
            stored.append((Outgoing(m.uid, m.flags, m.internaldate, m.data), nu))
            run.note_new_uid(to, nu)
            nbytes += len(m.data)
    dst.flush()
    _report_altered(run, dst, stored)
    if pairs:
        run.record(Paired(pairs=pairs))
    if retry or unknown:
        # unknown: stored, but the server did not say under which UID; the next run finds
        # it as new on both sides and pairs it by content.
        run.record(Retry(side=_src_side(to), uids=retry + unknown, add=True))
    if to is Side.NEAR:
        run.stats.to_near += len(pairs) + len(unknown)
    else:
        run.stats.to_far += len(pairs) + len(unknown)
    progress.advance(len(chunk), nbytes)
    if run.fatal:
        raise FolderError(run.fatal)


def _report_altered(run: _Run, dst: Store, stored: list[tuple[Outgoing, int]]) -> None:
    """One warning per message the destination kept differently from what was sent."""
    for a in altered_messages(dst, stored):
        run.stats.altered += 1
        run.info(
            "warning",
            f"{run.pair.far!r} -> {run.pair.near!r}: message UID {a.src_uid} (stored as UID {a.dst_uid}) "
            f"Message-ID {a.message_id}: altered by the destination server: {a.what}",
        )


def _src_side(to: Side) -> Literal["far", "near"]:
    return "far" if to is Side.NEAR else "near"


def _store_batch(run: _Run, dst: Store, fetched: list[Fetched]) -> list[int | None]:
    """Append a batch; if the store refuses it, retry one by one. -1 marks a failed message."""
    outs = [Outgoing(m.uid, m.flags, m.internaldate, m.data, m.keywords) for m in fetched]
    if not outs:
        return []
    try:
        return dst.append(outs)
    except (MessageError, FolderError) as e:
        if len(outs) == 1 and not getattr(e, "fatal", False):
            run.message_error(
                f"{run.pair.far!r} <-> {run.pair.near!r}: message UID {outs[0].src_uid} "
                f"Message-ID {_message_id(outs[0].data)}: {e}"
            )
            return [-1]
        done = getattr(e, "done", None)
        result: list[int | None] = list(done) if isinstance(done, list) else []
        if getattr(e, "fatal", False):  # disk full and the like: keep what was stored, stop
            run.fatal = f"{run.pair.far!r} <-> {run.pair.near!r}: {e}"
            return result + [-1] * (len(outs) - len(result))
        for m in outs[len(result) :]:
            result.extend(
                _store_batch(run, dst, [Fetched(m.src_uid, m.flags, m.internaldate, m.data, m.keywords)])
            )
        return result


def _message_id(data: bytes) -> str:
    """The Message-ID of a message for error reports ("none" when it has none)."""
    mid = message_id(header_section(data))
    return mid.decode("ascii", "replace")[:200] if mid else "none"


def _finish(p: Plan, fst: FolderStatus, nst: FolderStatus, run: _Run, *, seen_if_settled: int = 0) -> None:
    st = run.state
    far_max = max(st.far_max_uid, p.far_max_uid, run.max_new_far)
    near_max = max(st.near_max_uid, p.near_max_uid, run.max_new_near)
    unknown_mark = any(
        status.highestmodseq == 0 and store.mark_tick for status, store in ((fst, run.far), (nst, run.near))
    )
    if (unknown_mark or seen_if_settled or run.stats.changed()) and not run.stats.errors:
        marks = _settled_marks(run, fst, nst, far_max, near_max)
        if marks is not None:
            fst, nst = marks
            far_max = max(far_max, seen_if_settled)
    header = Header(
        far_validity=fst.validity,
        near_validity=nst.validity,
        far_max_uid=far_max,
        near_max_uid=near_max,
        far_modseq=fst.highestmodseq,
        far_uidnext=fst.uidnext,
        near_uidnext=nst.uidnext,
        far_messages=fst.messages,
        near_messages=nst.messages,
        near_modseq=nst.highestmodseq,
    )
    run.record(header)
    _settle_retries(run)
    run.statefile.commit(st)


def _settled_marks(
    run: _Run, fst: FolderStatus, nst: FolderStatus, far_max: int, near_max: int
) -> tuple[FolderStatus, FolderStatus] | None:
    """The change marks to record after this run's own writes.

    The marks read at SELECT predate our writes; recorded as they are, the next run would see
    its own writes as a change and visit the folder once more. So: read each side's status
    now, then list again and plan against the state as it stands; when that finds nothing to
    do, nobody else changed the folder meanwhile and the new marks are safe to record. A
    change made after the status was read moves the marks past it, so it is seen next run;
    when anything is found, None: the old marks stay (the next run visits and does it).
    """
    far_now = _status_past_tick(run.far, run.pair.far)
    near_now = _status_past_tick(run.near, run.pair.near)
    view = FolderState(
        far_max_uid=far_max,
        near_max_uid=near_max,
        retry_far=run.state.retry_far,
        retry_near=run.state.retry_near,
        pairs=run.state.pairs,
    )
    lf = _listing(run.far, Side.FAR, view, (fst.highestmodseq, far_now.highestmodseq), run.opts, sizes=False)
    ln = _listing(
        run.near, Side.NEAR, view, (nst.highestmodseq, near_now.highestmodseq), run.opts, sizes=False
    )
    # Every message listed at the start is at or below far_max/near_max now, so a message the
    # selection (maxsize, dates) left out is not new here: no need to leave it out again.
    again = plan(view, lf.flags, ln.flags, run.opts.plan)
    if not again.is_empty() or again.guard:
        return None
    return far_now, near_now


def _status_past_tick(store: Store, name: str) -> FolderStatus:
    """Status whose change mark is trustworthy: a Maildir mark taken within the file system's
    time granularity of the last change reads as 0 (unknown), so wait that out once."""
    st = store.status(name)
    if st.highestmodseq == 0 and store.mark_tick:
        time.sleep(store.mark_tick)
        st = store.status(name)
    return st


def _settle_retries(run: _Run) -> None:
    """Retries that are paired now are no longer due."""
    st = run.state
    if not (st.retry_far or st.retry_near):
        return
    done_far = [u for u in st.retry_far if st.pairs.near_of(u) is not None]
    done_near = [u for u in st.retry_near if st.pairs.far_of_near(u) is not None]
    if done_far:
        run.record(Retry(side="far", uids=done_far, add=False))
    if done_near:
        run.record(Retry(side="near", uids=done_near, add=False))
