"""The benchmark corpora and the server-side changes of scenario 3."""

from __future__ import annotations

import random
from dataclasses import dataclass

from tools.corpus import DEFAULT_FOLDERS, CorpusSpec, add_messages, imap_name
from tools.dovecot import User


@dataclass(frozen=True)
class CorpusChoice:
    name: str
    spec: CorpusSpec
    description: str


def _folders(n: int) -> list[str]:
    extra = [f"Lists/list{i:02d}" for i in range(n)]
    return (list(DEFAULT_FOLDERS) + extra)[:n]


CORPORA = ("small", "medium", "huge", "million")
ONE_FOLDER = ("huge", "million")  # one big folder: scenarios 5 and 7


def corpus(name: str, quick: bool, messages: int | None = None) -> CorpusChoice:
    """small: ~2,000 msgs / ~100 MB / 10 folders (one 10-16 MB message); medium: ~20,000 /
    ~1 GB / 20 folders (4 of 10-16 MB); huge: one folder of 200,000 small messages; million:
    one folder of 1,000,000 small messages. ``quick`` shrinks each tenfold, to try the
    benchmark out; ``messages`` sets the count of a one-folder corpus instead."""
    scale = 10 if quick else 1
    if name == "small":
        spec = CorpusSpec(folders=_folders(10), messages=2000 // scale, seed=7, size_mix="real",
                          huge_count=1)
        desc = "10 folders, real size mix (most 2-20 KB, ~5 % 100 KB-2 MB), one 10-16 MB message"
    elif name == "medium":
        spec = CorpusSpec(folders=_folders(20), messages=20000 // scale, seed=8, size_mix="real",
                          huge_count=4)
        desc = "20 folders, real size mix (most 2-20 KB, ~5 % 100 KB-2 MB), four 10-16 MB messages"
    elif name in ONE_FOLDER:
        count = messages or (200000 if name == "huge" else 1000000) // scale
        spec = CorpusSpec(folders=["Huge"], messages=count, seed=9 if name == "huge" else 10,
                          size_mix="small", weird=False)
        desc = "one folder of small messages (1.4-8 KB)"
    else:
        raise SystemExit(f"bench: unknown corpus {name!r} ({', '.join(CORPORA)})")
    return CorpusChoice(name, spec, desc)


def change_server(user: User, spec: CorpusSpec, round_no: int, new: int = 100,
                  flag_changes: int = 500) -> None:
    """Scenario 3's change: ``new`` messages delivered to INBOX and ``flag_changes`` \\Flagged
    toggles (STORE) spread over the folders in proportion to their size. Deterministic."""
    add_messages(user.maildir, "INBOX", new, seed=1000 + round_no)
    rng = random.Random(round_no)
    client = user.connect()
    try:
        sizes = {}
        for folder in spec.folders:
            sizes[folder] = client.folder_status(imap_name(folder), [b"MESSAGES"])[b"MESSAGES"]
        total = sum(sizes.values())
        for folder, size in sizes.items():
            share = round(flag_changes * size / total) if total else 0
            if not share:
                continue
            client.select_folder(imap_name(folder))
            uids = client.search("ALL")
            chosen = rng.sample(uids, min(share, len(uids)))
            flags = client.get_flags(chosen)
            on = [u for u in chosen if b"\\Flagged" not in flags.get(u, ())]
            off = [u for u in chosen if b"\\Flagged" in flags.get(u, ())]
            if on:
                client.add_flags(on, [b"\\Flagged"], silent=True)
            if off:
                client.remove_flags(off, [b"\\Flagged"], silent=True)
            client.unselect_folder()  # not CLOSE: it would expunge \Deleted messages
    finally:
        client.logout()


def change_share(user: User, folder: str, round_no: int, share: float = 0.01) -> tuple[int, int]:
    """Scenario 7's change of one big folder: ``share`` of its messages changed, half as new
    messages delivered (new/ files), half as \\Flagged toggles by STORE on random UIDs (the
    corpus's UIDs are dense, so a sample of 1..UIDNEXT-1 hits messages). Deterministic;
    returns (new, toggled)."""
    client = user.connect()
    try:
        st = client.folder_status(imap_name(folder), [b"MESSAGES", b"UIDNEXT"])
        total, uidnext = st[b"MESSAGES"], st[b"UIDNEXT"]
        changes = max(2, round(total * share))
        new, toggles = changes // 2, changes - changes // 2
        rng = random.Random(7000 + round_no)
        chosen = sorted(rng.sample(range(1, uidnext), min(toggles, uidnext - 1)))
        client.select_folder(imap_name(folder))
        for k in range(0, len(chosen), 2000):
            part = chosen[k : k + 2000]
            flags = client.get_flags(part)
            on = [u for u in part if u in flags and b"\\Flagged" not in flags[u]]
            off = [u for u in part if u in flags and b"\\Flagged" in flags[u]]
            if on:
                client.add_flags(on, [b"\\Flagged"], silent=True)
            if off:
                client.remove_flags(off, [b"\\Flagged"], silent=True)
        client.unselect_folder()
    finally:
        client.logout()
    add_messages(user.maildir, folder, new, seed=5000 + round_no)
    return new, len(chosen)
