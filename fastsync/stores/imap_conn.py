"""imapclient's connection without the round trips a sync does not need.

- Capabilities come from the greeting when it carries them (``* OK [CAPABILITY ...]``, as
  Dovecot's does): imaplib would otherwise always send CAPABILITY right after connecting.
  Only that first, pre-login list is taken from the greeting; after STARTTLS imaplib asks
  the server again, as it must (RFC 3501 6.2.1), and after LOGIN imapclient takes the list
  from LOGIN's ``OK [CAPABILITY ...]`` when the server sends one.
- ``login_pipelined`` sends LOGIN and the first command after it in one write.
- ``logout_nowait`` sends LOGOUT and closes without waiting for the answer.
"""

from __future__ import annotations

import base64
import contextlib
import imaplib
import re
import socket
from typing import Any

import imapclient
from imapclient.exceptions import LoginError
from imapclient.imap4 import IMAP4WithTimeout
from imapclient.tls import IMAP4_TLS, wrap_socket

from fastsync.stores import early
from fastsync.stores.imap_text import quotable, quoted

__all__ = ["Client", "login_pipelined", "logout_nowait", "quotable"]

_GREETING_CAPS = re.compile(rb"\* (?:OK|PREAUTH) \[CAPABILITY ([^\]]*)\]", re.I)


def _caps_from_greeting(imap: Any) -> bool:
    """Set ``imap.capabilities`` from the greeting's CAPABILITY code; False if it has none."""
    m = _GREETING_CAPS.match(imap.welcome)
    if m is None:
        return False
    # The code was also filed as an untagged CAPABILITY response; the CAPABILITY command
    # would have consumed it. Left there, imapclient would take it for LOGIN's list.
    imap.untagged_responses.pop("CAPABILITY", None)
    imap.capabilities = tuple(m.group(1).decode("ascii", "replace").upper().split())
    return True


def _socket(host: str, port: int, timeout: float | None) -> socket.socket:
    """The connection started early for this address (stores/early.py), else a new one."""
    return early.take(host, port, timeout) or socket.create_connection((host, port), timeout)


class _Plain(IMAP4WithTimeout):  # type: ignore[misc]
    _greeted = False

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return _socket(self.host, self.port, timeout if timeout is not None else self._timeout)

    def _get_capabilities(self) -> None:
        # imaplib calls this once after the greeting, and again after a STARTTLS handshake:
        # only the first call may use the greeting.
        if self._greeted or not _caps_from_greeting(self):
            super()._get_capabilities()
        self._greeted = True


class _TLS(IMAP4_TLS):  # type: ignore[misc]
    _greeted = False

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        sock = _socket(self.host, self.port, timeout if timeout is not None else self._timeout)
        wrapped: socket.socket = wrap_socket(sock, self.ssl_context, self.host)
        return wrapped

    def _get_capabilities(self) -> None:
        if self._greeted or not _caps_from_greeting(self):
            super()._get_capabilities()
        self._greeted = True


class Client(imapclient.IMAPClient):  # type: ignore[misc]
    """An IMAPClient whose imaplib connection reads capabilities from the greeting."""

    def _create_IMAP4(self) -> Any:
        timeout = getattr(self._timeout, "connect", None)
        if self.ssl:
            return _TLS(self.host, self.port, self.ssl_context, timeout)
        return _Plain(self.host, self.port, timeout)


def logout_nowait(imap: Any) -> None:
    """Send LOGOUT and close the socket without reading the answer; never raises.

    Every command before it has completed, so the server's BYE and OK carry nothing we need,
    and waiting for them would add a round trip to the end of every run. The server still
    reads LOGOUT and ends the session cleanly; if it has already gone away, the write fails
    or is lost, and either is fine: there is nothing left to tell it.
    """
    imap.state = "LOGOUT"
    line = imap._new_tag() + b" LOGOUT"
    if imap.debug >= 4:  # the protocol trace, as imaplib's own commands write it
        imap._mesg(f"> {line!r}")
    with contextlib.suppress(OSError):
        imap.send(line + b"\r\n")
    with contextlib.suppress(OSError):
        imap.shutdown()


def login_pipelined(client: Any, user: str, password: str, command: str) -> bool:
    """LOGIN and then ``command`` (an authenticated-state command line, untagged) in one write.

    The server reads the second command only once LOGIN has succeeded, so what comes after
    login costs no round trip of its own. Raises LoginError as client.login() does (the
    second answer is then left unread: the caller drops the connection). Returns True when
    ``command`` completed OK, its untagged responses waiting in ``client._imap``; False when
    the server refused it (NO, or BAD from one that does not know the command). Both
    ``user`` and ``password`` must be quotable().
    """
    line = b"LOGIN " + quoted(user) + b" " + quoted(password)
    return bool(send_login(client, "LOGIN", line, command))


def authenticate_ir(client: Any, mechanism: str, response: bytes, command: str | None) -> bool | None:
    """``AUTHENTICATE mechanism <response>`` with the response inline (RFC 4959 SASL-IR), and
    ``command`` after it in the same write when given; as login_pipelined() otherwise.

    A server that refuses the response asks for more (XOAUTH2 and OAUTHBEARER send their
    error as a challenge) and takes the next line as the answer, so on failure ``command`` is
    eaten as a bad SASL response: the login fails either way, and the caller drops the
    connection. Returns None without ``command``."""
    line = b"AUTHENTICATE " + mechanism.encode("ascii") + b" " + base64.b64encode(response)
    return send_login(client, f"AUTHENTICATE {mechanism}", line, command)


def _cancel_challenges(imap: Any, tag: bytes) -> None:
    """Read until ``tag`` is answered; a challenge (``+``: the server refused the initial
    response and says why) is answered with ``*``, which cancels the exchange (RFC 3501
    6.2.2), so the server ends it with a tagged NO or BAD instead of waiting."""
    while imap.tagged_commands.get(tag) is None:
        if imap._get_response() is None:
            if imap.debug >= 4:
                imap._mesg("> * (cancel the authentication)")
            imap.send(b"*\r\n")


def send_login(client: Any, trace: str, line: bytes, command: str | None) -> bool | None:
    """Send a login ``line`` (LOGIN or AUTHENTICATE, credentials inside: the protocol trace
    shows only ``trace``) and ``command`` in one write; read the login's answer, then the
    command's. LoginError when the login is refused; see login_pipelined()."""
    imap = client._imap
    login_tag = imap._new_tag()
    next_tag = imap._new_tag() if command is not None else None
    for tag in (login_tag, next_tag):
        if tag is not None:
            imap.tagged_commands[tag] = None  # imaplib rejects answers to tags it does not know
    for name in ("OK", "NO", "BAD"):  # as imaplib's _command: only this command's codes count
        imap.untagged_responses.pop(name, None)
    data = login_tag + b" " + line + b"\r\n"
    if imap.debug >= 4:  # the protocol trace, without the credentials
        imap._mesg(f"> {login_tag!r} {trace} **REDACTED**")
    if command is not None and next_tag is not None:
        data += next_tag + b" " + command.encode("ascii") + b"\r\n"
        if imap.debug >= 4:
            imap._mesg(f"> {next_tag!r} {command}")
    imap.send(data)
    try:
        if command is None:
            _cancel_challenges(imap, login_tag)
        typ, answer = imap._command_complete(trace.split(" ", 1)[0], login_tag)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as e:  # BAD
        raise LoginError(f"login failed: {e}") from None
    if typ != "OK":
        raise LoginError(f"login failed: {answer[-1].decode('utf-8', 'replace')}")
    imap.state = "AUTH"
    if command is None or next_tag is None:
        return None
    try:
        typ, _ = imap._command_complete(command.split(" ", 1)[0], next_tag)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error:  # BAD
        return False
    return bool(typ == "OK")
