"""Errors graded by scope, and the process exit codes they lead to.

Each scope has one policy: a MessageError skips that message and is reported; a FolderError
stops that folder pair (it is retried on the next run); a StoreError is a lost connection or
broken server dialogue (reconnect, then the folder fails); an AccountError (login refused,
certificate refused, bad configuration of that account) stops the account; ConfigError stops
the run before anything is written.
"""

from __future__ import annotations

import enum


class FastsyncError(Exception):
    """Base of every error fastsync reports as one line."""


class ConfigError(FastsyncError):
    """The configuration is wrong; the message names file, section and option."""


class MessageError(FastsyncError):
    """One message could not be copied or changed."""


class FolderError(FastsyncError):
    """One folder pair could not be synced this run."""


class DeletionGuard(FolderError):
    """A run would delete more of a folder than allowed."""


class StoreError(FastsyncError):
    """A store failed below folder level (connection dropped, protocol error)."""


class ConnectionLimit(StoreError):
    """The server refuses one more connection now (too many); the ones open still work."""


class AccountError(FastsyncError):
    """The account cannot be synced at all this run (login, TLS, config of that account)."""


class AuthError(AccountError):
    """The credentials were refused: by the server (login), or by the OAuth2 token endpoint."""


class ExitCode(enum.IntEnum):
    OK = 0  # everything synced
    PARTIAL = 1  # run finished, but some messages or folders failed (see the log)
    CONFIG = 2  # command line or configuration error; nothing was synced
    ACCOUNT = 3  # at least one account failed entirely (login, TLS, connection)
    LOCKED = 4  # another fastsync holds the lock of an account
    INTERRUPTED = 130  # aborted by a second SIGINT/SIGTERM (the first one stops cleanly, exit 0)
