"""OfflineIMAP-style configuration file -> typed, frozen, picklable msgspec Structs.

The file has a ``[general]`` section, one ``[Account NAME]`` per account listed in
``general.accounts`` and one ``[Repository NAME]`` per repository an account references.
Values are read by configparser without interpolation; indented continuation lines belong
to the value, so multi-line lambdas work as OfflineIMAP users write them.

Every error is one ConfigError line ``FILE: [Section] option: what is wrong (expected ...)``.
Options we do not know, or know from OfflineIMAP but ignore, are logged as warnings once
each. Python expressions stay source strings (the Structs travel to worker processes);
they are compiled here once only to report mistakes at load time.
"""

from __future__ import annotations

import configparser
import difflib
import logging
import os
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec

from fastsync import auth_options, folders
from fastsync import config_values as v
from fastsync.auth_options import OAuth2Settings
from fastsync.errors import ConfigError

log = logging.getLogger(__name__)

# --- the typed result --------------------------------------------------------------------


class GeneralConfig(msgspec.Struct, frozen=True, kw_only=True):
    accounts: tuple[str, ...]
    maxsyncaccounts: int = 1
    ui: tuple[str, ...] = ("Noninteractive.Basic",)
    metadata: str = os.path.expanduser("~/.fastsync")
    pythonfile: str | None = None
    socktimeout: float | None = None
    fsync: bool = True
    maxworkermemory: int = 1024  # MB of RSS after which a worker is replaced between jobs; 0: never


class MaildirRepo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    localfolders: str
    sep: str = "."
    sync_deletes: bool = True
    readonly: bool = False
    createfolders: bool = True
    folderfilter: str | None = None
    nametrans: str | None = None


class ImapRepo(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    remotehost: str
    remoteport: int | None = None
    remoteuser: str
    remotepass: str | None = None
    remotepassfile: str | None = None
    remotepasseval: str | None = None
    ssl: bool = True
    starttls: bool = False  # used only when ssl is off
    sslcacertfile: str | None = None  # None: the system trust store
    cert_fingerprint: tuple[str, ...] = ()  # lowercase hex, no colons
    folderfilter: str | None = None
    nametrans: str | None = None
    maxconnections: int = 4  # fast by default (OfflineIMAP: 1); workers start only for work
    holdconnectionopen: bool = False
    keepalive: int | None = None
    readonly: bool = False
    sync_deletes: bool = True
    createfolders: bool = True
    expunge: bool = True
    idlefolders: str | None = None
    timeout: float = 60.0
    auth_mechanisms: tuple[str, ...] = ()  # empty: auth_options.DEFAULT_ORDER
    oauth2: OAuth2Settings | None = None  # its repr hides the secrets

    @property
    def port(self) -> int:
        """The TCP port: remoteport, else 993 with ssl, else 143."""
        if self.remoteport is not None:
            return self.remoteport
        return 993 if self.ssl else 143

    def __repr__(self) -> str:  # the password must not reach logs through a repr
        shown = []
        for field in self.__struct_fields__:
            value = getattr(self, field)
            text = "<hidden>" if field == "remotepass" and value is not None else repr(value)
            shown.append(f"{field}={text}")
        return f"ImapRepo({', '.join(shown)})"


class AccountConfig(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    local: MaildirRepo | ImapRepo
    remote: ImapRepo
    autorefresh: float | None = None  # minutes
    quick: int = 0
    presynchook: str | None = None
    postsynchook: str | None = None
    newmail_hook: str | None = None  # shell command run after a sync that brought new mail near
    max_delete_percent: int = 50
    maxsize: int | None = None
    splitthreshold: int = 20000  # new far messages at which a folder is copied in UID ranges; 0: never


class Config(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    general: GeneralConfig
    accounts: dict[str, AccountConfig]


def default_config_path() -> Path:
    return Path("~/.fastsyncrc").expanduser()


# --- the option tables ---------------------------------------------------------------------

GENERAL_OPTIONS: dict[str, v.Conv] = {
    "accounts": v.names,
    "maxsyncaccounts": v.whole(1),
    "ui": v.nonempty_names,
    "metadata": v.path,
    "pythonfile": v.existing_file,
    "socktimeout": v.positive_float,
    "fsync": v.boolean,
    "maxworkermemory": v.whole(0),
}
ACCOUNT_OPTIONS: dict[str, v.Conv] = {
    "localrepository": v.nonempty,
    "remoterepository": v.nonempty,
    "autorefresh": v.positive_float,
    "quick": v.whole(-1),  # OfflineIMAP: -1 always quick, 0 never, N quick runs between full ones
    "presynchook": v.nonempty,
    "postsynchook": v.nonempty,
    "newmail_hook": v.nonempty,
    "max_delete_percent": v.whole(0, 100),
    "maxsize": v.whole(1),
    "splitthreshold": v.whole(0),
}
_REPO_COMMON: dict[str, v.Conv] = {
    "type": v.nonempty,
    "folderfilter": v.expr,
    "nametrans": v.expr,
    "sync_deletes": v.boolean,
    "readonly": v.boolean,
    "createfolders": v.boolean,
}
MAILDIR_OPTIONS: dict[str, v.Conv] = {**_REPO_COMMON, "localfolders": v.path, "sep": v.sep}
IMAP_OPTIONS: dict[str, v.Conv] = {
    **_REPO_COMMON,
    "remotehost": v.nonempty,
    "remotehosteval": v.expr,
    "remoteport": v.whole(1, 65535),
    "remoteporteval": v.expr,
    "remoteuser": v.nonempty,
    "remoteusereval": v.expr,
    "remotepass": v.text,
    "remotepassfile": v.path,
    "remotepasseval": v.expr,
    "ssl": v.boolean,
    "starttls": v.boolean,
    "sslcacertfile": v.cacert,
    "cert_fingerprint": v.fingerprints,
    "maxconnections": v.whole(1),
    "holdconnectionopen": v.boolean,
    "keepalive": v.whole(1),
    "expunge": v.boolean,
    "idlefolders": v.expr,
    "auth_mechanisms": v.mechanisms,
    **{option: v.nonempty for option in auth_options.VALUES},
    **{option + "_eval": v.expr for option in auth_options.EVALUATED},
}
# Expressions compiled at load to report mistakes early; callables vs. any expression.
_CALLABLE_EXPRS = ("folderfilter", "nametrans")
_PLAIN_EXPRS = ("remotepasseval", "idlefolders")
# Values computed once at load from an expression (OfflineIMAP's *eval options).
_EVALUATED = {"remotehost": str, "remoteport": int, "remoteuser": str}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# OfflineIMAP options we accept but do not act on: a warning, never an error.
GENERAL_IGNORED = frozenset({"ignore-readonly"})
ACCOUNT_IGNORED = _words(
    """maxage maildir-windows-compatible synclabels labelsheader ignorelabels filterheaders
    proxy utf8foldernames authproxy status_backend"""
)
_REPO_IGNORED = frozenset({"folderincludes", "foldersort"})
MAILDIR_IGNORED = (
    _REPO_IGNORED
    | {"startdate", "restoreatime", "utime_from_header", "filename_use_mail_timestamp"}
    | {f"customflag_{c}" for c in "abcdefghijklmnopqrstuvwxyz"}
)
IMAP_IGNORED = _REPO_IGNORED | _words(
    """ipv6 remote_identity sslclientcert sslclientkey ssl_version tls_level decodefoldernames
    usecompression singlethreadperfolder subscribedonly
    dynamic_folderfilter newmail_hook retrycount copy_ignore_eval sep trashfolder spamfolder
    realdelete"""
)
# OfflineIMAP options that change which server or folders are used: ignoring them would
# sync something else than the user asked for, so they stop the load.
IMAP_UNSUPPORTED = frozenset({"reference", "preauthtunnel", "transporttunnel"})
IGNORED_SECTIONS = ("mbnames", "ui.")
_LOOPBACK = ("localhost", "127.0.0.1", "::1")


# --- the reader ----------------------------------------------------------------------------


class _Reader:
    """One load of one file: parsed INI, error formatting, warnings issued once."""

    def __init__(self, path: str, parser: configparser.ConfigParser) -> None:
        self.path = path
        self.parser = parser
        self.defaults: dict[str, str] = dict(parser["DEFAULT"]) if parser.has_section("DEFAULT") else {}
        self.pyglobals: dict[str, Any] = {}
        self.repos: dict[str, MaildirRepo | ImapRepo] = {}

    def error(self, section: str, option: str | None, what: str) -> ConfigError:
        where = f"[{section}] {option}" if option else f"[{section}]"
        return ConfigError(f"{self.path}: {where}: {what}")

    def where(self, section: str, option: str) -> str:
        return f"{self.path}: [{section}] {option}"

    def read(
        self,
        section: str,
        table: Mapping[str, v.Conv],
        ignored: frozenset[str] = frozenset(),
        unsupported: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        """Typed values of the known options of ``section`` ([DEFAULT] fills in gaps)."""
        own = dict(self.parser[section])
        for option in own:
            if option in unsupported:
                raise self.error(section, option, "not supported yet (expected the option removed)")
            if option in ignored:
                log.warning(
                    "%s: [%s] %s: ignored (OfflineIMAP option fastsync does not use)",
                    self.path,
                    section,
                    option,
                )
            elif option not in table:
                close = difflib.get_close_matches(option, table, n=1)
                hint = f" (did you mean {close[0]}?)" if close else ""
                log.warning("%s: [%s] %s: unknown option, ignored%s", self.path, section, option, hint)
        values: dict[str, Any] = {}
        for option, conv in table.items():
            raw = own.get(option, self.defaults.get(option))
            if raw is None:
                continue
            try:
                values[option] = conv(raw)
            except v.Bad as e:
                raise self.error(section, option, str(e)) from None
        return values

    def check_exprs(self, section: str, values: dict[str, Any]) -> None:
        for option in _CALLABLE_EXPRS:
            if option in values:
                folders.compile_expr(values[option], self.where(section, option), self.pyglobals)
        for option in _PLAIN_EXPRS:
            if option in values:
                folders.check_syntax(values[option], self.where(section, option))


def _parse_file(path: str) -> configparser.ConfigParser:
    """Read and parse the INI text; every failure is one ConfigError line."""
    real = os.path.expanduser(path)
    try:
        text = Path(real).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file (expected a configuration file; see --config)") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory (expected a configuration file)") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror} (expected a readable file)") from None
    except UnicodeDecodeError as e:
        line = text_line_of(Path(real).read_bytes(), e.start)
        raise ConfigError(f"{path}: line {line}: not valid UTF-8 (expected a UTF-8 text file)") from None
    # default_section is a name no file can hold, so [DEFAULT] stays visible as a section
    # and unknown-option warnings only see what each section really says.
    parser = configparser.ConfigParser(interpolation=None, default_section="\x00", strict=True)
    try:
        parser.read_string(text, source=path)
    except configparser.MissingSectionHeaderError as e:
        raise ConfigError(
            f"{path}: line {e.lineno}: option outside any section (expected a [general] header first)"
        ) from None
    except configparser.DuplicateSectionError as e:
        raise ConfigError(
            f"{path}: line {e.lineno}: section [{e.section}] appears twice (expected once)"
        ) from None
    except configparser.DuplicateOptionError as e:
        raise ConfigError(
            f"{path}: line {e.lineno}: [{e.section}] {e.option}: set twice in the section (expected once)"
        ) from None
    except configparser.ParsingError as e:
        # The line itself is not echoed: it might be a stray password.
        lineno = e.errors[0][0] if e.errors else "?"
        raise ConfigError(f"{path}: line {lineno}: not 'option = value' nor a [section] header") from None
    except configparser.Error as e:
        raise ConfigError(f"{path}: {type(e).__name__} (expected INI syntax)") from None
    return parser


def text_line_of(data: bytes, offset: int) -> int:
    """1-based line number of a byte offset."""
    return data.count(b"\n", 0, offset) + 1


def _warn_file(reader: _Reader) -> None:
    """Warnings about the file as a whole: sections we skip, secrets readable by others, '%'."""
    parser, path = reader.parser, reader.path
    known = {*GENERAL_OPTIONS, *ACCOUNT_OPTIONS, *MAILDIR_OPTIONS, *IMAP_OPTIONS}
    for option in reader.defaults.keys() - known:
        log.warning("%s: [DEFAULT] %s: unknown option, ignored", path, option)
    has_pass = False
    for section in parser.sections():
        if section.startswith(IGNORED_SECTIONS):
            log.warning("%s: [%s]: ignored (OfflineIMAP section fastsync does not use)", path, section)
        elif section not in ("general", "DEFAULT") and not section.startswith(("Account ", "Repository ")):
            log.warning("%s: [%s]: unknown section, ignored", path, section)
        for option, raw in parser[section].items():
            has_pass = has_pass or option == "remotepass" or option in auth_options.SECRETS
            if "%%" in raw or "%(" in raw:
                log.warning(
                    "%s: [%s] %s: contains '%%%%' or '%%(': fastsync does not interpolate values "
                    "as OfflineIMAP did (write a single '%%')",
                    path,
                    section,
                    option,
                )
    try:
        mode = os.stat(os.path.expanduser(path)).st_mode
    except OSError:
        return
    if has_pass and mode & (stat.S_IRGRP | stat.S_IROTH):
        log.warning(
            "%s: holds remotepass or an OAuth2 secret but is readable by other users (expected chmod 600)",
            path,
        )


def _read_general(reader: _Reader) -> GeneralConfig:
    if not reader.parser.has_section("general"):
        raise reader.error("general", None, "section missing (expected [general] with accounts = ...)")
    values = reader.read("general", GENERAL_OPTIONS, GENERAL_IGNORED)
    accounts = values.get("accounts")
    if not accounts:
        raise reader.error(
            "general", "accounts", "missing or empty (expected a comma-separated list of account names)"
        )
    seen: list[str] = []
    for name in accounts:
        if name in seen:
            log.warning("%s: [general] accounts: %r listed twice, synced once", reader.path, name)
            continue
        if name in (".", "..") or "/" in name or not name.isprintable():
            raise reader.error(
                "general",
                "accounts",
                f"{name!r} cannot name an account (expected printable text without '/')",
            )
        seen.append(name)
    values["accounts"] = tuple(seen)
    values.setdefault("metadata", os.path.expanduser("~/.fastsync"))
    if "pythonfile" in values:
        where = reader.where("general", "pythonfile")
        reader.pyglobals = folders.load_pythonfile(values["pythonfile"], where)
    return GeneralConfig(**values)


def _read_repo(reader: _Reader, name: str, general: GeneralConfig) -> MaildirRepo | ImapRepo:
    if name in reader.repos:
        return reader.repos[name]
    section = f"Repository {name}"
    kind = reader.parser[section].get("type", reader.defaults.get("type"))
    if kind is None:
        raise reader.error(section, "type", "missing (expected Maildir or IMAP)")
    repo: MaildirRepo | ImapRepo
    if kind.lower() == "maildir":
        repo = _read_maildir(reader, section, name)
    elif kind.lower() == "imap":
        repo = _read_imap(reader, section, name, general)
    elif kind.lower() in ("gmail", "gmailmaildir"):
        raise reader.error(section, "type", f"{kind!r} is not supported yet (expected Maildir or IMAP)")
    else:
        raise reader.error(section, "type", f"unknown type {kind!r} (expected Maildir or IMAP)")
    reader.repos[name] = repo
    return repo


def _read_maildir(reader: _Reader, section: str, name: str) -> MaildirRepo:
    values = reader.read(section, MAILDIR_OPTIONS, MAILDIR_IGNORED)
    values.pop("type")
    if "localfolders" not in values:
        raise reader.error(section, "localfolders", "missing (expected the directory of the Maildir folders)")
    reader.check_exprs(section, values)
    return MaildirRepo(name=name, **values)


def _read_imap(reader: _Reader, section: str, name: str, general: GeneralConfig) -> ImapRepo:
    values = reader.read(section, IMAP_OPTIONS, IMAP_IGNORED, IMAP_UNSUPPORTED)
    values.pop("type")
    for option, kind in _EVALUATED.items():
        _evaluate(reader, section, values, option, kind)
    for option in auth_options.EVALUATED:
        _evaluate(reader, section, values, option, str, suffix="_eval")
    values["oauth2"] = auth_options.settings_from(values)
    wrong = auth_options.check(values["oauth2"], values.get("auth_mechanisms", ()))
    if wrong is not None:
        raise reader.error(section, *wrong)
    for option in ("remotehost", "remoteuser"):
        if option not in values:
            raise reader.error(section, option, f"missing (expected {option} or {option}eval)")
    reader.check_exprs(section, values)
    if general.socktimeout is not None:
        values["timeout"] = general.socktimeout
    repo = ImapRepo(name=name, **values)
    if not repo.ssl and not repo.starttls and repo.remotehost not in _LOOPBACK:
        log.warning(
            "%s: [%s]: ssl and starttls are off: the password crosses the network unencrypted",
            reader.path,
            section,
        )
    return repo


def _evaluate(
    reader: _Reader, section: str, values: dict[str, Any], option: str, kind: type, suffix: str = "eval"
) -> None:
    """Replace ``OPTIONeval`` by the value it computes now (in the main process)."""
    name = option + suffix
    source = values.pop(name, None)
    if source is None:
        return
    if option in values:
        raise reader.error(section, name, f"set together with {option} (expected only one)")
    value = folders.eval_value(source, reader.where(section, name), reader.pyglobals)
    if type(value) is not kind or value == "":  # the value itself is not shown: it may be a secret
        raise reader.error(
            section, name, f"gives a {type(value).__name__} (expected a non-empty {kind.__name__})"
        )
    if isinstance(value, int) and not 1 <= value <= 65535:
        raise reader.error(section, name, f"gives {value} (expected a port from 1 to 65535)")
    values[option] = value


def _read_account(reader: _Reader, name: str, general: GeneralConfig) -> AccountConfig:
    section = f"Account {name}"
    if not reader.parser.has_section(section):
        raise reader.error(section, None, "section missing (the account is listed in [general] accounts)")
    values = reader.read(section, ACCOUNT_OPTIONS, ACCOUNT_IGNORED)
    sides: dict[str, MaildirRepo | ImapRepo] = {}
    for option in ("localrepository", "remoterepository"):
        repo_name = values.pop(option, None)
        if repo_name is None:
            raise reader.error(section, option, "missing (expected the name of a [Repository NAME] section)")
        if not reader.parser.has_section(f"Repository {repo_name}"):
            raise reader.error(
                section,
                option,
                f"no section [Repository {repo_name}] (expected a repository defined in this file)",
            )
        sides[option] = _read_repo(reader, repo_name, general)
    local, remote = sides["localrepository"], sides["remoterepository"]
    if local.name == remote.name:
        raise reader.error(
            section,
            "remoterepository",
            f"same repository {local.name!r} as localrepository (expected two different repositories)",
        )
    if not isinstance(remote, ImapRepo):
        raise reader.error(
            section,
            "remoterepository",
            f"[Repository {remote.name}] is a Maildir (expected an IMAP repository)",
        )
    return AccountConfig(name=name, local=local, remote=remote, **values)


def _warn_shared_maildirs(reader: _Reader, accounts: dict[str, AccountConfig]) -> None:
    owners: dict[str, str] = {}
    for account in accounts.values():
        if isinstance(account.local, MaildirRepo):
            root = os.path.realpath(account.local.localfolders)
            if root in owners:
                log.warning(
                    "%s: [Account %s] and [Account %s] share the Maildir %s: folders may mix",
                    reader.path,
                    owners[root],
                    account.name,
                    account.local.localfolders,
                )
            owners.setdefault(root, account.name)


def load_config(path: str | Path) -> Config:
    """Read, validate and type the configuration file at ``path``; ConfigError on any mistake.

    ``~`` in ``path`` is expanded; messages show ``path`` as given.
    """
    shown = str(path)
    reader = _Reader(shown, _parse_file(shown))
    _warn_file(reader)
    general = _read_general(reader)
    accounts = {name: _read_account(reader, name, general) for name in general.accounts}
    _warn_shared_maildirs(reader, accounts)
    return Config(path=shown, general=general, accounts=accounts)


def expr_globals(config: Config) -> dict[str, Any]:
    """The globals configured expressions see (the pythonfile's); for use in worker processes."""
    if config.general.pythonfile is None:
        return {}
    return folders.load_pythonfile(config.general.pythonfile, f"{config.path}: [general] pythonfile")
