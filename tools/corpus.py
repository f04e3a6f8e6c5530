"""Deterministic mail corpus written straight into a user's server-side Maildir.

Contract:
- Same ``CorpusSpec`` (and separator) -> byte-identical files with identical names and mtimes.
- Folder names in a spec are UTF-8 with "/" as hierarchy; on disk they follow Dovecot's
  Maildir layouts: Maildir++ (``.A.B``) for separator ".", ``A/B`` directories (LAYOUT=fs) for
  "/", components in modified UTF-7, INBOX being the Maildir root itself.
- Files use LF line endings (Dovecot's Maildir convention) and carry ``S=`` (file size) and
  ``W=`` (size with CRLF, i.e. RFC822.SIZE) in their names; the mtime is the INTERNALDATE.
- Dovecot is not told anything: it indexes the files on first access.
- When run as root, everything written takes the owner of the user's Maildir root, so that
  Dovecot's unprivileged mail processes can read and change it.
"""

from __future__ import annotations

import argparse
import base64
import calendar
import functools
import os
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from imapclient import imap_utf7

DEFAULT_FOLDERS: tuple[str, ...] = (
    "INBOX",
    "Archive/2023",
    "Archive/2024",
    "Sent",
    "Old Stuff",
    "Entwürfe",
    "日本語",
    "Drafts",
    "Archive",
)
SIZE_MIXES = ("small", "real")
HOST_TAG = "corpus.fastsync.test"
WEIRD_KINDS = ("no_message_id", "raw_8bit_headers", "duplicate_message_id", "bare_cr",
               "long_header", "empty_body")
KB = 1024
MB = 1024 * 1024
_EPOCH_2019 = 1546300800  # 2019-01-01T00:00:00Z
_SPAN_5Y = 5 * 365 * 86400
_DAY = 86400
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_NAMES = ("Alice Martin", "Bob Okafor", "Chloé Dubois", "Dmitri Ivanov", "Eva Schäfer", "Farid Haddad",
          "Grace Lee", "Hiro Tanaka", "Ines García", "Jonas Berg", "Kavya Rao", "Liam O'Brien")
_DOMAINS = ("example.org", "example.net", "mail.example.com", "lists.example.org")
_UTF8_LINES = ("Grüße aus München, schöne Grüße an Jörg!", "日本語のテキストです。よろしくお願いします。",
               "Ça va très bien, merci — à bientôt.", "Привет! Как дела?", "Emoji test: 📬✉️🚀",
               "Ελληνικά: καλημέρα σας.")


@dataclass
class CorpusSpec:
    """What to generate. ``messages`` is the total over all folders (weird and huge included)."""

    folders: list[str] = field(default_factory=lambda: list(DEFAULT_FOLDERS))
    messages: int = 1000
    seed: int = 1
    size_mix: str = "small"
    huge_count: int = 0
    weird: bool = True

    def __post_init__(self) -> None:
        if self.size_mix not in SIZE_MIXES:
            raise ValueError(f"CorpusSpec.size_mix must be one of {SIZE_MIXES}, not {self.size_mix!r}")
        if self.messages < 0 or self.huge_count < 0 or self.huge_count > self.messages:
            raise ValueError(f"CorpusSpec needs 0 <= huge_count ({self.huge_count}) <= messages "
                             f"({self.messages})")
        if not self.folders or len(set(self.folders)) != len(self.folders):
            raise ValueError(f"CorpusSpec.folders must be non-empty and distinct: {self.folders!r}")


@dataclass
class FolderSummary:
    """What one folder received: ``imap_bytes`` is the sum of RFC822.SIZE (CRLF counted),
    ``unseen`` the messages without \\Seen."""

    name: str
    path: Path
    count: int = 0
    unseen: int = 0
    imap_bytes: int = 0
    disk_bytes: int = 0
    message_ids: list[str] = field(default_factory=list)


@dataclass
class CorpusSummary:
    """Per-folder counts and sizes, keyed by the spec's folder name ("Archive/2023")."""

    folders: dict[str, FolderSummary]
    seconds: float = 0.0

    @property
    def total_messages(self) -> int:
        return sum(f.count for f in self.folders.values())

    @property
    def total_imap_bytes(self) -> int:
        return sum(f.imap_bytes for f in self.folders.values())

    @property
    def counts(self) -> dict[str, int]:
        """Messages per folder, keyed by the spec's folder name."""
        return {name: f.count for name, f in self.folders.items()}

    @property
    def sizes(self) -> dict[str, int]:
        """Sum of RFC822.SIZE per folder, keyed by the spec's folder name."""
        return {name: f.imap_bytes for name, f in self.folders.items()}


# -- folder names ----------------------------------------------------------------------------


def _components(name: str) -> list[str]:
    parts = name.split("/")
    if any(not p for p in parts):
        raise ValueError(f"corpus folder name {name!r} has an empty hierarchy component")
    return parts


def imap_name(name: str, separator: str = ".") -> str:
    """The folder's name as an IMAP client sees it (decoded), for a server with ``separator``."""
    parts = _components(name)
    if separator != "/" and any(separator in p for p in parts):
        raise ValueError(f"corpus folder name {name!r} contains the server separator {separator!r}")
    return separator.join(parts)


def folder_path(user_maildir: Path, name: str, separator: str = ".") -> Path:
    """The Maildir directory Dovecot uses for folder ``name`` (spec form, "/" hierarchy)."""
    imap_name(name, separator)  # validates
    if name == "INBOX":
        return user_maildir
    encoded = [imap_utf7.encode(p).decode("ascii") for p in _components(name)]
    if separator == ".":
        return user_maildir / ("." + ".".join(encoded))
    if separator == "/":
        return user_maildir.joinpath(*encoded)
    raise ValueError(f"corpus supports separators '.' and '/', not {separator!r}")


def imap_size(data: bytes) -> int:
    """RFC822.SIZE of a message stored with LF endings: every LF not after a CR becomes CRLF."""
    return len(data) + data.count(b"\n") - data.count(b"\r\n")


class _Owner:
    """Gives created paths the owner of the Maildir root (only when running as root)."""

    def __init__(self, user_maildir: Path) -> None:
        st = user_maildir.stat()
        self.ids: tuple[int, int] | None = None
        if os.geteuid() == 0 and (st.st_uid, st.st_gid) != (0, 0):
            self.ids = (st.st_uid, st.st_gid)

    def mkdir(self, path: Path) -> None:
        if path.is_dir():
            return
        path.mkdir(mode=0o700)
        if self.ids is not None:
            os.chown(path, *self.ids)

    def fd(self, fd: int) -> None:
        if self.ids is not None:
            os.fchown(fd, *self.ids)


def _make_folder(user_maildir: Path, name: str, separator: str, owner: _Owner) -> Path:
    path = folder_path(user_maildir, name, separator)
    if separator == "/":
        # LAYOUT=fs nests directories; parents that are not folders stay plain directories.
        for parent in reversed(path.relative_to(user_maildir).parents):
            owner.mkdir(user_maildir / parent)
    owner.mkdir(path)
    for sub in ("cur", "new", "tmp"):
        owner.mkdir(path / sub)
    if separator == "." and name != "INBOX":
        marker = path / "maildirfolder"
        if not marker.exists():
            _write_file(marker, b"", None, owner)
    return path


def _write_file(path: Path | str, data: bytes, mtime: int | None, owner: _Owner) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, data)
        owner.fd(fd)
        if mtime is not None:
            os.utime(fd, (mtime, mtime))
    finally:
        os.close(fd)


# -- content pools ---------------------------------------------------------------------------


@functools.cache
def _text_pool() -> str:
    """~512 KB of wrapped pseudo-English, fixed for all seeds (bodies differ by offset)."""
    rng = random.Random(0x5EED)
    syllables = ["ka", "lo", "mi", "ne", "ru", "sa", "ti", "vo", "wen", "dar", "pel", "quo", "zin",
                 "bra", "cho", "fi", "gu", "hex", "jo", "ly", "mor", "nix", "pra", "ste", "ul"]
    words = ["".join(rng.choices(syllables, k=rng.randint(1, 4))) for _ in range(3000)]
    words += ["the", "and", "of", "to", "in", "is", "that", "for", "it", "with", "as", "on"] * 60
    lines: list[str] = []
    size = 0
    while size < 512 * KB:
        line = " ".join(rng.choices(words, k=rng.randint(6, 13)))
        if rng.random() < 0.12:
            line = ""
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"


@functools.cache
def _b64_pool() -> str:
    """~2.7 MB of base64 text in 76-char lines, from fixed random bytes."""
    raw = random.Random(0xB64).randbytes(2 * MB)
    return base64.encodebytes(raw).decode("ascii")


def _text(rng: random.Random, size: int) -> str:
    """About ``size`` characters of whole lines of the text pool."""
    pool = _text_pool()
    size = max(1, min(size, len(pool) // 2))
    start = pool.find("\n", rng.randrange(len(pool) - size - 200)) + 1
    chunk = pool[start:start + size]
    return chunk[: chunk.rfind("\n") + 1] or "hello\n"


def _base64(rng: random.Random, size: int) -> str:
    """At least ``size`` characters of whole base64 lines, stitched from runs of the pool."""
    pool = _b64_pool()
    line = 77  # 76 characters and LF, as base64.encodebytes writes them
    pool_lines = len(pool) // line
    need = -(-size // line)
    parts: list[str] = []
    while need > 0:
        take = min(need, pool_lines // 2)
        start = rng.randrange(pool_lines - take) * line
        parts.append(pool[start:start + take * line])
        need -= take
    return "".join(parts)


# -- messages --------------------------------------------------------------------------------


def _rfc2822_date(ts: int, tz_minutes: int) -> str:
    t = time.gmtime(ts + tz_minutes * 60)
    sign = "+" if tz_minutes >= 0 else "-"
    hh, mm = divmod(abs(tz_minutes), 60)
    return (f"{_WEEKDAYS[t.tm_wday]}, {t.tm_mday:02d} {_MONTHS[t.tm_mon - 1]} {t.tm_year} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {sign}{hh:02d}{mm:02d}")


def _address(rng: random.Random) -> str:
    name = rng.choice(_NAMES)
    local = name.split()[0].lower().encode("ascii", "ignore").decode() or "user"
    return f"{name} <{local}{rng.randrange(100)}@{rng.choice(_DOMAINS)}>"


def _encode_word(text: str) -> str:
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode("ascii") + "?="


@dataclass
class _Draft:
    """One message in the making; ``raw`` replaces the built bytes for weird ones."""

    n: int
    mtime: int
    message_id: str | None
    flags: str
    size: int
    raw: bytes | None = None


def _target_size(rng: random.Random, size_mix: str) -> int:
    if size_mix == "small":
        # Margins: a body is cut at a line end, and MIME parts add a few hundred bytes.
        return rng.randint(KB + 400, 8 * KB - 100)
    if rng.random() < 0.05:
        return rng.randint(100 * KB, 2 * MB)
    # Log-uniform between 2 and 20 KB: more small messages than large ones, as in real mail.
    return int(2 * KB * 10 ** rng.random())


def _headers(rng: random.Random, d: _Draft, folder: str, seed: int, ctype: str) -> str:
    tz = rng.choice((-480, -300, 0, 60, 120, 330, 540))
    subject = f"{rng.choice(('Re: ', '', '', 'Fwd: '))}{_text(rng, 60).strip().split(chr(10))[0][:50]} #{d.n}"
    if rng.random() < 0.1:
        subject = _encode_word(rng.choice(_UTF8_LINES) + f" #{d.n}")
    lines = [
        f"Return-Path: <bounce{d.n}@{rng.choice(_DOMAINS)}>",
        f"Received: from mx{rng.randrange(9)}.{rng.choice(_DOMAINS)} by {HOST_TAG}; "
        f"{_rfc2822_date(d.mtime, 0)}",
        f"Date: {_rfc2822_date(d.mtime - rng.randrange(600), tz)}",
        f"From: {_address(rng)}",
        f"To: {_address(rng)}",
    ]
    if rng.random() < 0.3:
        lines.append(f"Cc: {_address(rng)}, {_address(rng)}")
    lines.append(f"Subject: {subject}")
    if d.message_id is not None:
        lines.append(f"Message-ID: {d.message_id}")
    if d.n > 0 and rng.random() < 0.25:
        lines.append(f"In-Reply-To: <c{seed}.{rng.randrange(d.n)}@{HOST_TAG}>")
    lines += ["MIME-Version: 1.0", f"Content-Type: {ctype}",
              f"X-Corpus: seed={seed}; n={d.n}; folder={folder.encode('unicode_escape').decode()}"]
    return "\n".join(lines) + "\n"


def _build(rng: random.Random, d: _Draft, folder: str, seed: int, huge: bool) -> bytes:
    """A realistic message of about ``d.size`` bytes with LF endings."""
    kind = rng.random()
    boundary = f"=_fastsync_{seed}_{d.n}"
    if huge or d.size > 40 * KB or 0.80 <= kind < 0.92:
        ctype = f'multipart/mixed; boundary="{boundary}"'
        head = _headers(rng, d, folder, seed, ctype)
        text = _text(rng, rng.randint(200, 1500))
        b64 = _base64(rng, max(100, d.size - len(head) - len(text) - 500))
        body = (f"This is a multi-part message in MIME format.\n\n--{boundary}\n"
                "Content-Type: text/plain; charset=us-ascii\nContent-Transfer-Encoding: 7bit\n\n"
                f"{text}\n--{boundary}\n"
                f'Content-Type: application/octet-stream; name="file{d.n}.bin"\n'
                f'Content-Disposition: attachment; filename="file{d.n}.bin"\n'
                f"Content-Transfer-Encoding: base64\n\n{b64}\n--{boundary}--\n")
    elif kind >= 0.92:
        ctype = f'multipart/alternative; boundary="{boundary}"'
        head = _headers(rng, d, folder, seed, ctype)
        text = _text(rng, max(100, (d.size - len(head) - 250) // 2))
        html = "<html><body><p>" + text.replace("\n\n", "</p>\n<p>") + "</p></body></html>\n"
        body = (f"--{boundary}\nContent-Type: text/plain; charset=us-ascii\n\n{text}\n"
                f"--{boundary}\nContent-Type: text/html; charset=us-ascii\n\n{html}\n--{boundary}--\n")
    elif kind >= 0.70:
        head = _headers(rng, d, folder, seed, "text/plain; charset=utf-8") + \
            "Content-Transfer-Encoding: 8bit\n"
        extra = "\n".join(rng.choices(_UTF8_LINES, k=rng.randint(2, 6))) + "\n\n"
        body = extra + _text(rng, max(50, d.size - len(head) - len(extra.encode())))
    else:
        head = _headers(rng, d, folder, seed, "text/plain; charset=us-ascii") + \
            "Content-Transfer-Encoding: 7bit\n"
        body = _text(rng, max(50, d.size - len(head)))
    return (head + "\n" + body).encode("utf-8")


def _weird(kind: str, rng: random.Random, d: _Draft, folder: str, seed: int, prev_id: str) -> bytes:
    """One of the odd messages real mailboxes hold; each breaks one assumption."""
    text = _text(rng, 1500)
    if kind == "no_message_id":
        d.message_id = None
        return (_headers(rng, d, folder, seed, "text/plain") + "\n" + text).encode()
    if kind == "raw_8bit_headers":
        head = _headers(rng, d, folder, seed, "text/plain; charset=utf-8").encode()
        return (head + "X-Raw-UTF8: Grüße, 日本語 unencoded\n".encode()
                + "X-Raw-Latin1: Jörg Müller, garçon\n".encode("latin-1")
                + b"\n" + text.encode())
    if kind == "duplicate_message_id":
        d.message_id = prev_id
        return (_headers(rng, d, folder, seed, "text/plain") + "\nDifferent content, same id.\n"
                + text).encode()
    if kind == "bare_cr":
        return (_headers(rng, d, folder, seed, "text/plain") + "\nline with a bare\rCR inside\n"
                + text).encode()
    if kind == "long_header":
        refs = " ".join(f"<ref{i}.{d.n}@{HOST_TAG}>" for i in range(400))
        return (_headers(rng, d, folder, seed, "text/plain") + f"References: {refs}\n\n"
                + text).encode()
    if kind == "empty_body":
        return (_headers(rng, d, folder, seed, "text/plain") + "\n").encode()
    raise ValueError(f"unknown weird message kind {kind!r}")


_FLAG_TABLE = (("D", 0.02), ("F", 0.08), ("R", 0.12), ("S", 0.60), ("T", 0.01))


def _flags(rng: random.Random, folder: str) -> str:
    letters = [c for c, p in _FLAG_TABLE if rng.random() < p]
    if folder == "Drafts" and "D" not in letters:
        letters.insert(0, "D")
    return "".join(letters)  # table order is ASCII order, as Maildir requires


def _mtime(rng: random.Random, folder: str) -> int:
    # A year in the folder name ("Archive/2023") pins its dates into that year.
    for part in reversed(folder.split("/")):
        if part.isdigit() and len(part) == 4 and 1971 <= int(part) <= 2037:
            start = calendar.timegm((int(part), 1, 1, 0, 0, 0, 0, 0, 0))
            return start + rng.randrange(365 * _DAY)
    return _EPOCH_2019 + rng.randrange(_SPAN_5Y)


def _allocate(total: int, folders: list[str]) -> list[int]:
    """Skewed split: folder i weighs 1/(i+1), so earlier folders are larger; exact total."""
    weights = [1.0 / (i + 1) for i in range(len(folders))]
    scale = total / sum(weights)
    counts = [int(w * scale) for w in weights]
    by_remainder = sorted(range(len(folders)), key=lambda i: (counts[i] - weights[i] * scale, i))
    for i in by_remainder[: total - sum(counts)]:
        counts[i] += 1
    if total >= len(folders):
        for i, c in enumerate(counts):
            if c == 0:
                counts[i] = 1
                counts[counts.index(max(counts))] -= 1
    return counts


def _deliver(folder_dir: str, d: _Draft, data: bytes, vsize: int, tag: str, where: str,
             owner: _Owner, existing: set[str] | None) -> None:
    """Write through tmp/ and rename, so a running Dovecot never sees a partial file.

    ``existing`` holds base names (before ":2,") already in the folder, when worth checking.
    Plain string paths: pathlib costs more than the system calls at 20,000 files.
    """
    base = f"{d.mtime}.M{d.n}P{tag}.{HOST_TAG},S={len(data)},W={vsize}"
    tmp = f"{folder_dir}/tmp/{base}"
    final = f"{folder_dir}/{where}/{base}" if where == "new" else f"{folder_dir}/cur/{base}:2,{d.flags}"
    if existing is not None and base in existing:
        raise FileExistsError(f"corpus message {base} already exists in {folder_dir} (same seed twice?)")
    _write_file(tmp, data, d.mtime, owner)
    os.rename(tmp, final)


def _huge_slots(rng: random.Random, total: int, huge_count: int) -> set[int]:
    return set(rng.sample(range(total), huge_count)) if huge_count else set()


def _weird_slots(spec: CorpusSpec) -> dict[int, str]:
    """Where the weird messages go: evenly spaced, each after an ordinary message."""
    if not spec.weird or spec.messages < 2 * len(WEIRD_KINDS) + 2:
        return {}
    step = spec.messages // (len(WEIRD_KINDS) + 1)
    return {step * (k + 1): kind for k, kind in enumerate(WEIRD_KINDS)}


def _messages(spec: CorpusSpec, rng: random.Random, folder: str, first_n: int, count: int,
              huge: set[int], weird: dict[int, str], prev_id: str) -> Iterator[tuple[_Draft, bytes]]:
    for n in range(first_n, first_n + count):
        d = _Draft(n=n, mtime=_mtime(rng, folder), message_id=f"<c{spec.seed}.{n}@{HOST_TAG}>",
                   flags=_flags(rng, folder), size=_target_size(rng, spec.size_mix))
        if n in huge:
            d.size = rng.randint(10 * MB, 16 * MB)
        data = (_weird(weird[n], rng, d, folder, spec.seed, prev_id) if n in weird
                else _build(rng, d, folder, spec.seed, n in huge))
        if d.message_id is not None:
            prev_id = d.message_id
        yield d, data


def generate(user_maildir: Path, spec: CorpusSpec, separator: str = ".") -> CorpusSummary:
    """Write ``spec``'s corpus into ``user_maildir`` (which must exist) and subscribe its folders."""
    began = time.monotonic()
    user_maildir = Path(user_maildir)
    owner = _Owner(user_maildir)
    rng = random.Random(spec.seed)
    huge = _huge_slots(rng, spec.messages, spec.huge_count)
    weird = _weird_slots(spec)
    summary = CorpusSummary(folders={})
    n = 0
    prev_id = f"<c{spec.seed}.none@{HOST_TAG}>"
    for folder, count in zip(spec.folders, _allocate(spec.messages, spec.folders), strict=True):
        path = _make_folder(user_maildir, folder, separator, owner)
        fs = summary.folders[folder] = FolderSummary(name=folder, path=path)
        for d, data in _messages(spec, rng, folder, n, count, huge, weird, prev_id):
            where = "new" if not d.flags and rng.random() < 0.3 else "cur"
            vsize = imap_size(data)
            _deliver(str(path), d, data, vsize, f"{spec.seed}", where, owner, None)
            _count(fs, d, data, vsize)
            if d.message_id is not None:
                prev_id = d.message_id
        n += count
    write_subscriptions(user_maildir, spec.folders, owner)
    summary.seconds = time.monotonic() - began
    return summary


def _count(fs: FolderSummary, d: _Draft, data: bytes, vsize: int) -> None:
    fs.count += 1
    fs.unseen += "S" not in d.flags
    fs.imap_bytes += vsize
    fs.disk_bytes += len(data)
    if d.message_id is not None:
        fs.message_ids.append(d.message_id)


def add_messages(user_maildir: Path, folder: str, n: int, seed: int, separator: str = ".") -> FolderSummary:
    """Deliver ``n`` new unseen messages into ``folder`` (created if missing) as new/ files.

    Deterministic per ``seed``; a different seed gives different messages and file names,
    while the same seed twice into the same folder raises FileExistsError.
    """
    user_maildir = Path(user_maildir)
    owner = _Owner(user_maildir)
    spec = CorpusSpec(folders=[folder], messages=n, seed=seed, weird=False)
    rng = random.Random(seed)
    path = _make_folder(user_maildir, folder, separator, owner)
    fs = FolderSummary(name=folder, path=path)
    # Dovecot moves files from new/ to cur/ and appends flags, so compare base names.
    existing = {name.split(":")[0] for sub in ("new", "cur") for name in os.listdir(path / sub)}
    # Numbers far above any generate() run keep Message-IDs apart from the base corpus.
    first = 10_000_000 + seed * 100_000
    for d, data in _messages(spec, rng, folder, first, n, set(), {}, ""):
        d.flags = ""
        vsize = imap_size(data)
        _deliver(str(path), d, data, vsize, f"{seed}A", "new", owner, existing)
        _count(fs, d, data, vsize)
    return fs


def write_subscriptions(user_maildir: Path, folders: list[str], owner: _Owner | None = None) -> None:
    """Add ``folders`` to Dovecot's ``subscriptions`` file (v2 format: tab as hierarchy)."""
    owner = owner or _Owner(user_maildir)
    path = Path(user_maildir) / "subscriptions"
    names: list[str] = []
    if path.exists():
        lines = path.read_text(encoding="ascii").split("\n")
        names = [ln for ln in (lines[2:] if lines[0].startswith("V\t") else lines) if ln]
    for folder in folders:
        line = "\t".join(imap_utf7.encode(p).decode("ascii") for p in _components(folder))
        if line not in names:
            names.append(line)
    tmp = path.with_name("subscriptions.fastsync-tmp")
    tmp.unlink(missing_ok=True)
    _write_file(tmp, ("V\t2\n\n" + "".join(f"{n}\n" for n in names)).encode("ascii"), None, owner)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    """CLI: write a corpus into a Maildir and print per-folder counts."""
    parser = argparse.ArgumentParser(prog="python -m tools.corpus", description=main.__doc__)
    parser.add_argument("maildir", type=Path, help="the user's Maildir root (INBOX); created if missing")
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--size-mix", choices=SIZE_MIXES, default="small")
    parser.add_argument("--huge-count", type=int, default=0)
    parser.add_argument("--no-weird", action="store_true", help="only well-formed messages")
    parser.add_argument("--separator", choices=(".", "/"), default=".")
    parser.add_argument("--folder", action="append", help="folder (repeatable); default: DEFAULT_FOLDERS")
    args = parser.parse_args(argv)
    args.maildir.mkdir(parents=True, exist_ok=True)
    spec = CorpusSpec(folders=args.folder or list(DEFAULT_FOLDERS), messages=args.messages,
                      seed=args.seed, size_mix=args.size_mix, huge_count=args.huge_count,
                      weird=not args.no_weird)
    summary = generate(args.maildir, spec, args.separator)
    for name, fs in summary.folders.items():
        print(f"{fs.count:8d} {fs.imap_bytes:14d}  {name}")
    print(f"{summary.total_messages:8d} {summary.total_imap_bytes:14d}  total in {summary.seconds:.2f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
