"""The IMAP store, on imapclient.

TLS is verified by default (system CAs, or ``sslcacertfile``); ``cert_fingerprint`` pins the
server certificate. ``starttls = yes`` is a requirement: a server that does not offer it is
refused, never used in plaintext, and everything the server said before the handshake is
discarded. Message sets are sent as compressed UID ranges, in chunks that keep command lines
short.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import ssl
from array import array
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from imapclient.exceptions import IMAPClientAbortError, IMAPClientError, LoginError
from imapclient.imapclient import datetime_to_INTERNALDATE
from imapclient.response_parser import parse_response

from fastsync.auth_options import OAUTH_MECHANISMS
from fastsync.config import ImapRepo
from fastsync.errors import AccountError, AuthError, ConnectionLimit, FolderError, MessageError, StoreError
from fastsync.folders import imap_decode
from fastsync.model import (
    Fetched,
    Outgoing,
    content_key,
    flags_from_imap,
    flags_to_imap,
    keywords_of,
    loose_key,
)
from fastsync.stores.base import (
    Changes,
    FolderEntry,
    FolderStatus,
    Listing,
    Store,
    iter_uid_set,
    parse_uid_set,
    uid_set_chunks,
)
from fastsync.stores.imap_auth import Login
from fastsync.stores.imap_conn import Client, logout_nowait
from fastsync.stores.imap_fetch import FetchStream
from fastsync.stores.imap_text import keeps_pipelined_login
from fastsync.uidmap import FLAGS_CODE, SIZES_CODE, UID_CODE, UidMapBuilder, uid_array

log = logging.getLogger(__name__)

# RFC 5530 [LIMIT], or the text servers use (Dovecot: "Maximum number of connections ...")
_LIMIT = re.compile(r"\[LIMIT\]|too many connections|maximum number of connections", re.I)
_APPENDUID = re.compile(rb"\[APPENDUID (\d+) ([\d:,]+)\]", re.I)
_LIST_STATUS = 'LIST "" "*" RETURN (STATUS ('
_STATUS_ITEMS = "MESSAGES UIDNEXT UIDVALIDITY"
# A server that ends a session because the OAuth2 token ran out (Microsoft 365:
# "BYE Session invalidated - AccessTokenExpired")
_TOKEN_EXPIRED = re.compile(r"AccessTokenExpired|token (?:has )?expired|expired token", re.I)
_SPECIAL_USE = (b"\\All", b"\\Archive", b"\\Drafts", b"\\Flagged", b"\\Junk", b"\\Sent", b"\\Trash")


class _Refused(AuthError):
    """The server refused the login (not the token endpoint): a refreshed token may do."""


def make_tls_context(cafile: str | None, pinned: bool) -> ssl.SSLContext:
    """A verifying context; with only a pinned fingerprint the chain is not checked (it is pinned)."""
    ctx = ssl.create_default_context(cafile=cafile)
    if pinned and cafile is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class ImapStore(Store):
    def __init__(
        self, settings: ImapRepo, password: str, *, readonly: bool = False, dry_run: bool = False
    ) -> None:
        self.s = settings
        self.readonly = readonly
        self.dry_run = dry_run
        self.client: Any = None
        self._sep: str | None = None
        self._condstore_on = False
        self._status_cache: dict[str, FolderStatus] | None = None
        self._prefetched: tuple[list[Any], list[Any]] | None = None  # raw LIST, STATUS answers
        self._selected: str | None = None
        self._caps: frozenset[bytes] = frozenset()
        self.where = f"{settings.remoteuser}@{settings.remotehost}:{settings.port}"
        self._login = Login(settings, password, self.where)

    # -- connection -------------------------------------------------------------------------
    def connect(self, *, prefetch_listing: bool = False) -> None:
        """Log in. With ``prefetch_listing`` the LIST-STATUS that list_folders() would send goes
        out in the same write as the login, so a discovery's listing costs no round trip of its
        own (kept only for a list_folders() that comes before any other command). A refused
        OAuth2 token is refreshed once, on a new connection."""
        try:
            self._connect(prefetch_listing)
        except _Refused:
            if not self._login.may_retry():
                raise
            log.info("%s: OAuth2 login refused; refreshing the token and logging in again", self.where)
            self._connect(prefetch_listing)

    def _connect(self, prefetch_listing: bool) -> None:
        s = self.s
        ctx = make_tls_context(s.sslcacertfile, bool(s.cert_fingerprint)) if (s.ssl or s.starttls) else None
        try:
            client = Client(s.remotehost, port=s.port, ssl=s.ssl, ssl_context=ctx, timeout=s.timeout)
        except ssl.SSLCertVerificationError as e:
            raise AccountError(f"{self.where}: TLS certificate refused: {e.verify_message}") from None
        except IMAPClientAbortError as e:  # accepted, then dropped (e.g. after the greeting): retry
            raise StoreError(f"{self.where}: connection closed by the server: {e}") from None
        except (OSError, IMAPClientError) as e:
            raise AccountError(f"{self.where}: cannot connect: {e}") from None
        self.client = client
        client.normalise_times = False
        try:
            if s.starttls and not s.ssl:
                self._starttls(ctx)
            if s.cert_fingerprint:
                self._check_fingerprint()
            listed = self._log_in(prefetch_listing)
        except LoginError as e:
            self.close()
            if isinstance(e.__context__, IMAPClientAbortError):  # imapclient wraps a dropped link too
                raise StoreError(f"{self.where}: connection lost while logging in: {e}") from None
            if _LIMIT.search(str(e)):
                raise ConnectionLimit(f"{self.where}: the server refuses more connections: {e}") from None
            if _TOKEN_EXPIRED.search(str(e)):
                self._login.server_expired()
            raise _Refused(f"{self.where}: login refused ({self._refused_hint()})") from None
        except AccountError:  # STARTTLS, fingerprint, no mechanism, the OAuth2 token endpoint
            self.close()
            raise
        except ssl.SSLCertVerificationError as e:
            self.close()
            raise AccountError(f"{self.where}: TLS certificate refused: {e.verify_message}") from None
        except (IMAPClientAbortError, OSError) as e:  # dropped mid-login: transient, retry
            self.close()
            if _TOKEN_EXPIRED.search(str(e)):
                self._login.server_expired()
            raise StoreError(f"{self.where}: connection lost while logging in: {e}") from None
        except IMAPClientError as e:
            self.close()
            raise AccountError(f"{self.where}: cannot log in: {e}") from None
        self._caps = frozenset(c.upper() for c in client.capabilities())
        # Nothing else is asked here: a run that finds nothing changed costs LOGIN and one
        # LIST-STATUS (one round trip for both with prefetch_listing); LOGOUT is not awaited.
        # The separator comes with the folder list, and CONDSTORE is enabled before the
        # first SELECT (select()).
        self._sep = None
        self._condstore_on = False
        self._status_cache = None
        self._prefetched = None
        if listed and self.has(b"LIST-STATUS") and self.has(b"CONDSTORE"):  # what we asked for
            untagged = client._imap.untagged_responses
            self._prefetched = (untagged.pop("LIST", []), untagged.pop("STATUS", []))

    def _log_in(self, prefetch_listing: bool) -> bool:
        """The login; True when a LIST-STATUS went with it and was answered (see connect())."""
        if not (prefetch_listing and keeps_pipelined_login(getattr(self.client, "welcome", None))):
            return self._login.log_in(self.client, None)
        # Before login the server's capabilities do not tell whether it knows LIST-STATUS
        # (Dovecot lists it only after): one without it answers BAD, and list_folders()
        # then takes the ordinary way.
        imap = self.client._imap
        imap.untagged_responses.pop("LIST", None)
        imap.untagged_responses.pop("STATUS", None)
        return self._login.log_in(self.client, f"{_LIST_STATUS}{_STATUS_ITEMS} HIGHESTMODSEQ))")

    def _refused_hint(self) -> str:
        mech = self._login.mechanism
        if mech in OAUTH_MECHANISMS:
            return f"{mech}: the OAuth2 access token was not accepted"
        return "wrong user or password?"

    def _starttls(self, ctx: ssl.SSLContext | None) -> None:
        client = self.client
        if b"STARTTLS" not in {c.upper() for c in client.capabilities()}:
            raise AccountError(
                f"{self.where}: starttls = yes but the server does not offer STARTTLS; "
                "refusing to continue in plaintext"
            )
        try:
            client.starttls(ctx)
        except ssl.SSLCertVerificationError:
            raise
        except (OSError, IMAPClientError) as e:
            raise AccountError(f"{self.where}: STARTTLS failed: {e}") from None
        # Nothing said before the handshake may survive it (RFC 3501 6.2.1; injected
        # responses): drop buffered untagged data and cached capabilities.
        client._imap.untagged_responses.clear()
        client._cached_capabilities = None

    def _check_fingerprint(self) -> None:
        der = self.client._imap.sock.getpeercert(binary_form=True)
        seen = {hashlib.new(algo, der).hexdigest() for algo in ("sha256", "sha512", "sha1")}
        wanted = {fp.replace(":", "").lower() for fp in self.s.cert_fingerprint}
        if not seen & wanted:
            raise AccountError(
                f"{self.where}: server certificate fingerprint sha256 {hashlib.sha256(der).hexdigest()} "
                "matches none of cert_fingerprint"
            )

    def close(self) -> None:
        client, self.client = self.client, None
        self._selected = None
        self._prefetched = None
        if client is None:
            return
        logout_nowait(client._imap)  # the answer is not awaited: see there why

    def noop(self) -> None:
        with self._errors("NOOP"):
            self.client.noop()

    @property
    def separator(self) -> str:
        if self._sep is None:
            self._sep = self._find_separator()
        return self._sep

    def has(self, capability: bytes) -> bool:
        return capability in self._caps

    @contextlib.contextmanager
    def _errors(self, what: str, *, folder: str | None = None) -> Iterator[None]:
        """Map library failures to our grades: NO/BAD -> FolderError, broken link -> StoreError."""
        if self.client is None:
            raise StoreError(f"{self.where}: not connected")
        if folder is not None and any(ch in folder for ch in "\r\n\x00"):
            # sent quoted, CR/LF would end the command line: the rest would run as a command
            raise FolderError(f"{self.where}: folder name {folder!r} contains CR, LF or NUL; refused")
        self._prefetched = None  # any other command may change what it listed
        try:
            yield
        except (IMAPClientAbortError, OSError) as e:  # includes socket timeouts
            if _TOKEN_EXPIRED.search(str(e)):  # the next login takes a fresh token
                self._login.server_expired()
            _stop_at_daily_limit(self.where, what, e)
            raise StoreError(f"{self.where}: connection lost during {what}: {e}") from None
        except IMAPClientError as e:
            _stop_at_daily_limit(self.where, what, e)
            name = folder if folder is not None else self._selected
            raise FolderError(f"{self.where}: {name!r}: {what} failed: {e}") from None

    def _writable(self) -> bool:
        if self.readonly:
            raise FolderError(f"[Repository {self.s.name}] is read-only")
        return not self.dry_run

    # -- folders ----------------------------------------------------------------------------
    def _find_separator(self) -> str:
        with self._errors("LIST"):
            entries = self.client.list_folders(pattern="")
        for _flags, delim, _name in entries:
            if delim:
                return delim.decode() if isinstance(delim, bytes) else str(delim)
        return "/"

    def list_folders(self) -> list[FolderEntry]:
        """Every folder; with LIST-STATUS the same round trip brings their status (list_status)."""
        raw, self._prefetched = self._prefetched, None
        if raw is not None:
            with self._errors("LIST RETURN (STATUS)"):
                entries, self._status_cache = self._parse_listing(*raw)
        elif self.has(b"LIST-STATUS"):
            entries, self._status_cache = self._list_with_status()
        else:
            with self._errors("LIST"):
                entries = self.client.list_folders()
        out = []
        for flags, delim, name in entries:
            if delim and self._sep is None:
                self._sep = delim.decode() if isinstance(delim, bytes) else str(delim)
            if isinstance(name, bytes):  # a name that is not valid modified UTF-7
                name = name.decode("utf-8", "replace")
            attrs = {f.lower() for f in flags}
            special = next((su.decode() for su in _SPECIAL_USE if su.lower() in attrs), None)
            selectable = b"\\noselect" not in attrs and b"\\nonexistent" not in attrs
            out.append(FolderEntry(name=name, selectable=selectable, special_use=special))
        return out

    def create_folder(self, name: str) -> None:
        if not self._writable():
            return
        with self._errors("CREATE", folder=name):
            try:
                self.client.create_folder(name)
            except IMAPClientError as e:
                if "ALREADYEXISTS" not in str(e).upper() and not self.client.folder_exists(name):
                    raise
            with contextlib.suppress(IMAPClientError):
                self.client.subscribe_folder(name)

    def list_status(self) -> dict[str, FolderStatus] | None:
        """Status of every folder in one round trip (RFC 5819 LIST-STATUS), or None if not offered.

        Right after list_folders() this costs nothing: that listing brought the statuses.
        """
        if not self.has(b"LIST-STATUS"):
            return None
        cached, self._status_cache = self._status_cache, None
        return cached if cached is not None else self._list_with_status()[1]

    def _list_with_status(self) -> tuple[list[Any], dict[str, FolderStatus]]:
        items = _STATUS_ITEMS + (" HIGHESTMODSEQ" if self.has(b"CONDSTORE") else "")
        imap = self.client._imap
        with self._errors("LIST RETURN (STATUS)"):
            imap.untagged_responses.pop("STATUS", None)
            imap.untagged_responses.pop("LIST", None)
            tag = imap._command("LIST", '""', '"*"', "RETURN", f"(STATUS ({items}))")
            typ, data = imap._command_complete("LIST", tag)
            if typ != "OK":
                raise IMAPClientError(f"LIST-STATUS failed: {_text(data)}")
            untagged = imap.untagged_responses
            return self._parse_listing(untagged.pop("LIST", []), untagged.pop("STATUS", []))

    def _parse_listing(
        self, lists: list[Any], statuses: list[Any]
    ) -> tuple[list[Any], dict[str, FolderStatus]]:
        """The untagged LIST and STATUS answers of a LIST-STATUS: folder entries, statuses."""
        entries = self.client._proc_folder_list(lists)
        out: dict[str, FolderStatus] = {}
        for entry in statuses:
            parsed = parse_response([entry] if isinstance(entry, bytes) else list(entry))
            if len(parsed) < 2:
                continue
            name, values = parsed[0], parsed[1]
            name = imap_decode(name if isinstance(name, bytes) else str(name).encode())
            kv = dict(zip(values[::2], values[1::2], strict=False))
            out[name] = FolderStatus(
                validity=int(kv.get(b"UIDVALIDITY", 0)),
                uidnext=int(kv.get(b"UIDNEXT", 0)),
                messages=int(kv.get(b"MESSAGES", 0)),
                highestmodseq=int(kv.get(b"HIGHESTMODSEQ", 0)),
            )
        return entries, out

    def status(self, name: str) -> FolderStatus:
        items = [b"MESSAGES", b"UIDNEXT", b"UIDVALIDITY"]
        if self.has(b"CONDSTORE"):
            items.append(b"HIGHESTMODSEQ")
        with self._errors("STATUS", folder=name):
            st = self.client.folder_status(name, items)
        out = FolderStatus(
            validity=int(st.get(b"UIDVALIDITY", 0)),
            uidnext=int(st.get(b"UIDNEXT", 0)),
            messages=int(st.get(b"MESSAGES", 0)),
            highestmodseq=int(st.get(b"HIGHESTMODSEQ", 0)),
        )
        if name == self._selected:
            self._exists = out.messages  # after our own APPENDs the count from SELECT is stale
        return out

    def select(self, name: str) -> FolderStatus:
        if self.has(b"CONDSTORE") and not self._condstore_on:
            # SELECT then reports HIGHESTMODSEQ, the change mark quick checks rely on
            with self._errors("ENABLE CONDSTORE"):
                self.client.enable("CONDSTORE")
            self._condstore_on = True
        with self._errors("SELECT", folder=name):
            st = self.client.select_folder(name, readonly=self.readonly or self.dry_run)
        self._selected = name
        self._exists = int(st.get(b"EXISTS", 0))
        uidnext = int(st.get(b"UIDNEXT", 0))
        if not uidnext:
            # RFC 3501 requires UIDNEXT in SELECT's answer; Courier-IMAP 5 leaves it out, and
            # first syncs fetch the range below it: ask for it
            with self._errors("STATUS (UIDNEXT)", folder=name):
                uidnext = int(self.client.folder_status(name, [b"UIDNEXT"]).get(b"UIDNEXT", 0))
        return FolderStatus(
            validity=int(st.get(b"UIDVALIDITY", 0)),
            uidnext=uidnext,
            messages=self._exists,
            highestmodseq=int(st.get(b"HIGHESTMODSEQ", 0)),
        )

    # -- messages ---------------------------------------------------------------------------
    def list_messages(self, sizes_above: int) -> Listing:
        if not self._exists:
            return Listing(flags={}, sizes={})
        stream = FetchStream(self.client._imap)
        flags = UidMapBuilder(FLAGS_CODE)
        sizes = UidMapBuilder(SIZES_CODE)
        with self._errors("UID FETCH (FLAGS)"):
            # both commands in flight at once: the listing costs one round trip
            tags = (stream.send("1:*", "UID FLAGS"), stream.send(f"{sizes_above + 1}:*", "UID RFC822.SIZE"))
            for it in stream.read(*tags):  # answers may interleave: told apart by their items
                if it.flags is not None:
                    flags.add(it.uid, flags_from_imap(it.flags))
                if it.uid > sizes_above and it.size is not None:
                    sizes.add(it.uid, it.size)
        return Listing(flags=flags.finish(), sizes=sizes.finish())

    def list_changes(self, since_modseq: int, sizes_above: int) -> Changes | None:
        """What changed since ``since_modseq`` (CONDSTORE + ESEARCH), in one round trip.

        Returns every UID now in the folder, the flags of the messages changed since (new
        ones included) and sizes above ``sizes_above``; None when the server cannot tell.
        """
        if not (self.has(b"CONDSTORE") and self.has(b"ESEARCH")) or since_modseq <= 0:
            return None
        if not self._exists:
            return Changes(uids=uid_array(()), flags={}, sizes={})
        stream = FetchStream(self.client._imap)
        with self._errors("UID FETCH (CHANGEDSINCE)"):
            tags = (
                stream.send_search_all(),
                stream.send("1:*", "UID FLAGS", f"CHANGEDSINCE {since_modseq}"),
                stream.send(f"{sizes_above + 1}:*", "UID RFC822.SIZE"),
            )
            items, uid_text = stream.read_with_search(*tags)
        flags = {it.uid: flags_from_imap(it.flags) for it in items if it.flags is not None}
        sizes = {it.uid: it.size for it in items if it.uid > sizes_above and it.size is not None}
        present = uid_array(iter_uid_set(uid_text) if uid_text else ())
        return Changes(uids=present, flags=flags, sizes=sizes)

    def gmail_ids(self, name: str) -> tuple[array[int], array[int]]:
        """Gmail (X-GM-EXT-1): each message's UID and X-GM-MSGID in folder ``name`` (selected
        here), in one round trip; a message has the same id in every label folder."""
        self.select(name)
        uids, ids = array(UID_CODE), array("Q")
        if self._exists:
            stream = FetchStream(self.client._imap)
            with self._errors("UID FETCH (X-GM-MSGID)", folder=name):
                for it in stream.read(stream.send("1:*", "UID X-GM-MSGID")):
                    if it.gm_msgid is not None:
                        uids.append(it.uid)
                        ids.append(it.gm_msgid)
        return uids, ids

    def uids_in_dates(self, since: float | None, before: float | None) -> set[int] | None:
        criteria: list[Any] = []
        if since is not None:
            criteria += [b"SINCE", datetime.fromtimestamp(since, UTC).date()]
        if before is not None:
            criteria += [b"BEFORE", datetime.fromtimestamp(before, UTC).date()]
        if not criteria or not self._exists:
            return None if not criteria else set()
        with self._errors("UID SEARCH"):
            return set(self.client.search(criteria))

    def fetch(self, uids: Sequence[int]) -> Iterator[Fetched]:
        stream = FetchStream(self.client._imap)
        for chunk in uid_set_chunks(uids):
            with self._errors("UID FETCH (BODY.PEEK[])"):
                items = stream.read(stream.send(chunk, "UID FLAGS INTERNALDATE BODY.PEEK[]"))
                for it in items:
                    if it.body is None:  # an unsolicited FETCH (a flag change), not our message
                        continue
                    yield Fetched(
                        uid=it.uid,
                        flags=flags_from_imap(it.flags or ()),
                        internaldate=it.internaldate or 0.0,
                        data=it.body,
                        keywords=keywords_of(it.flags or ()),
                    )

    def append(self, msgs: list[Outgoing]) -> list[int | None]:
        if not self._writable() or not msgs:
            return [None] * len(msgs)
        folder = self._selected
        if self.has(b"LITERAL+") and (len(msgs) == 1 or self.has(b"MULTIAPPEND")):
            return self._append_streamed(msgs)
        if len(msgs) > 1 and self.has(b"MULTIAPPEND"):
            items = [
                {
                    "msg": m.data,
                    "flags": flags_to_imap(m.flags) + list(m.keywords),
                    "date": _date(m.internaldate),
                }
                for m in msgs
            ]
            with self._errors("MULTIAPPEND"):
                typ, data = self.client.multiappend(folder, items)
            if typ != "OK":
                raise FolderError(f"{self.where}: {folder!r}: MULTIAPPEND refused: {_text(data)}")
            return _appended_uids(data, len(msgs))
        out: list[int | None] = []
        for m in msgs:
            try:
                with self._errors("APPEND"):
                    resp = self.client.append(
                        folder, m.data, flags_to_imap(m.flags) + list(m.keywords), _date(m.internaldate)
                    )
            except FolderError as e:
                if len(msgs) == 1:
                    raise MessageError(str(e)) from None
                raise
            out.extend(_appended_uids([resp], 1))
        return out

    def _append_streamed(self, msgs: list[Outgoing]) -> list[int | None]:
        """One (MULTI)APPEND command with LITERAL+: one round trip, message bytes never copied."""
        items = [
            (
                b" ".join(flags_to_imap(m.flags) + list(m.keywords)),
                b'"' + datetime_to_INTERNALDATE(d).encode() + b'"' if (d := _date(m.internaldate)) else b"",
                m.data,
            )
            for m in msgs
        ]
        try:
            with self._errors("APPEND"):
                line = FetchStream(self.client._imap).append(
                    self.client._normalise_folder(self._selected), items
                )
        except FolderError as e:
            if len(msgs) == 1:
                raise MessageError(str(e)) from None
            raise
        return _appended_uids(line, len(msgs))

    def set_flags(self, uids: list[int], add: int, remove: int) -> None:
        if not self._writable():
            return
        for chunk in uid_set_chunks(uids):
            with self._errors("UID STORE"):
                if add:
                    self.client.add_flags(chunk, flags_to_imap(add), silent=True)
                if remove:
                    self.client.remove_flags(chunk, flags_to_imap(remove), silent=True)

    def delete(self, uids: list[int]) -> None:
        if not self._writable():
            return
        for chunk in uid_set_chunks(uids):
            with self._errors("UID STORE +FLAGS (\\Deleted)"):
                self.client.add_flags(chunk, [b"\\Deleted"], silent=True)
            if not self.s.expunge:
                continue
            with self._errors("EXPUNGE"):
                if self.has(b"UIDPLUS"):
                    self.client.uid_expunge(chunk)
                else:
                    self.client.expunge()

    checks_stored = True

    def identities(self, uids: list[int]) -> dict[int, bytes]:
        return self.identity_keys(uids)[0]

    def identity_keys(self, uids: list[int]) -> tuple[dict[int, bytes], dict[int, bytes]]:
        keys: dict[int, bytes] = {}
        loose: dict[int, bytes] = {}
        stream = FetchStream(self.client._imap)
        for chunk in uid_set_chunks(uids):
            with self._errors("UID FETCH (BODY.PEEK[HEADER])"):
                for it in stream.read(stream.send(chunk, "UID RFC822.SIZE INTERNALDATE BODY.PEEK[HEADER]")):
                    if it.header is not None and it.size is not None:
                        keys[it.uid] = content_key(it.header, it.size)
                        second = loose_key(it.header, it.internaldate or 0.0, it.size)
                        if second is not None:
                            loose[it.uid] = second
        return keys, loose


# What a server says when the account has used up its allowance for the day: Gmail answers
# "[ALERT] Account exceeded command or bandwidth limits" (2,500 MB a day down, 500 MB up) with
# NO or BYE. Retrying, or moving on to the next folder, only meets the same answer.
_DAILY_LIMIT = re.compile(rb"exceeded command or bandwidth limits|bandwidth limit exceeded", re.I)


def _stop_at_daily_limit(where: str, what: str, e: BaseException) -> None:
    """Raise AccountError when ``e`` is the server's daily-limit answer."""
    if _DAILY_LIMIT.search(str(e).encode("utf-8", "replace")):
        raise AccountError(
            f"{where}: the server's daily limit is reached during {what} ({e}); this account stops "
            "here, what was copied is recorded, and the next run (tomorrow) resumes from there"
        ) from None


def _date(ts: float) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts > 0 else None


def _text(data: Any) -> str:
    if isinstance(data, list | tuple):
        data = b" ".join(x if isinstance(x, bytes) else str(x).encode() for x in data)
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)


def _appended_uids(data: Any, count: int) -> list[int | None]:
    m = _APPENDUID.search(_text(data).encode())
    if not m:
        return [None] * count
    uids = parse_uid_set(m.group(2).decode())
    if len(uids) != count:
        return [None] * count
    return list(uids)
