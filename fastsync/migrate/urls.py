"""``fastsync migrate`` endpoints: ``imap[s]://user@host[:port]`` and their password sources.

Contracts: a password comes from a file (first line), a command (first line of its standard
output) or an environment variable, never from the command line, and never appears in an
error message. ``imaps://`` is TLS from the first byte; ``imap://`` requires STARTTLS unless
the caller allows plaintext (``--no-tls1/2``, for a trusted local link).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path
from urllib.parse import unquote

import msgspec

from fastsync.config import ImapRepo
from fastsync.errors import ConfigError


class Endpoint(msgspec.Struct, frozen=True):
    """One side of a migration. ``tls``: "ssl" (imaps), "starttls", or "none"."""

    user: str
    host: str
    port: int
    tls: str

    def label(self) -> str:
        """user@host:port: names the side in messages (no password, ever)."""
        return f"{self.user}@{self.host}:{self.port}"


def parse_endpoint(url: str, which: str, *, plain: bool = False) -> Endpoint:
    """Parse ``imap[s]://user@host[:port]`` (user may be %-encoded); ConfigError naming ``which``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme.lower() not in ("imap", "imaps"):
        raise ConfigError(f"{which} {url!r}: expected imap://user@host[:port] or imaps://user@host[:port]")
    rest = rest.rstrip("/")
    if "/" in rest or "?" in rest:
        raise ConfigError(f"{which} {url!r}: a path or query is not allowed (expected user@host[:port])")
    user, at, hostport = rest.rpartition("@")
    if not at or not user:
        raise ConfigError(f"{which} {url!r}: no user (expected imap://user@host[:port])")
    if ":" in unquote(user) and "@" not in user:
        raise ConfigError(f"{which}: a password in the URL is not allowed (use --password{which[-1]}-file)")
    host, port_text = _split_host(hostport, which, url)
    ssl = scheme.lower() == "imaps"
    port = 993 if ssl else 143
    if port_text:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            raise ConfigError(f"{which} {url!r}: port {port_text!r} (expected 1 to 65535)")
        port = int(port_text)
    tls = "ssl" if ssl else ("none" if plain else "starttls")
    return Endpoint(user=unquote(user), host=host, port=port, tls=tls)


def _split_host(hostport: str, which: str, url: str) -> tuple[str, str]:
    if hostport.startswith("["):  # [IPv6]:port
        host, close, tail = hostport[1:].partition("]")
        if not close or (tail and not tail.startswith(":")):
            raise ConfigError(f"{which} {url!r}: bad IPv6 host (expected [addr]:port)")
        return host, tail[1:]
    host, _, port = hostport.partition(":")
    if not host:
        raise ConfigError(f"{which} {url!r}: no host (expected imap://user@host[:port])")
    return host, port


def read_password(which: str, *, file: str | None, command: str | None, env: str | None) -> str:
    """The password from the first source given (file, command, environment variable)."""
    if file is not None:
        return _first_line(_read_file(file, which), f"{which}: password file {file!r}")
    if command is not None:
        return _first_line(_run(command, which), f"{which}: password command")
    if env is not None:
        value = os.environ.get(env)
        if value is None:
            raise ConfigError(f"{which}: environment variable {env} is not set (expected the password)")
        return _first_line(value, f"{which}: environment variable {env}")
    raise ConfigError(
        f"{which}: no password source (expected a password file, a command or an environment variable)"
    )


def _read_file(path: str, which: str) -> str:
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(
            f"{which}: cannot read password file {path!r}: {e.strerror or type(e).__name__}"
        ) from None
    except UnicodeDecodeError:
        raise ConfigError(f"{which}: password file {path!r} is not UTF-8 text") from None


def _run(command: str, which: str) -> str:
    try:
        done = subprocess.run(command, shell=True, capture_output=True, timeout=60, check=False)
    except subprocess.TimeoutExpired:
        raise ConfigError(f"{which}: password command timed out after 60 s") from None
    if done.returncode != 0:  # its output is not shown: it might hold the password
        raise ConfigError(f"{which}: password command exited {done.returncode}")
    try:
        return done.stdout.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{which}: password command output is not UTF-8") from None


def _first_line(text: str, where: str) -> str:
    first = text.split("\n", 1)[0].removesuffix("\r")
    if not first:
        raise ConfigError(f"{where}: empty first line (expected the password)")
    return first


def repo_for(
    end: Endpoint,
    name: str,
    *,
    cafile: str | None,
    timeout: float,
    connections: int,
    readonly: bool,
    sync_deletes: bool,
) -> ImapRepo:
    """The repository settings the stores use for one endpoint (no password inside)."""
    return ImapRepo(
        name=name,
        remotehost=end.host,
        remoteport=end.port,
        remoteuser=end.user,
        ssl=end.tls == "ssl",
        starttls=end.tls == "starttls",
        sslcacertfile=cafile,
        maxconnections=connections,
        readonly=readonly,
        sync_deletes=sync_deletes,
        createfolders=not readonly,
        timeout=timeout,
    )


def migration_id(src: Endpoint, dst: Endpoint) -> str:
    """A stable short name for one SRC -> DST migration (its state directory and lock)."""
    text = f"{src.user}@{src.host}:{src.port} {dst.user}@{dst.host}:{dst.port}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]
