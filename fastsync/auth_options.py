"""How an IMAP repository logs in: ``auth_mechanisms`` and the OAuth2 settings.

Option names are offlineimap3's (``auth_mechanisms``, ``oauth2_request_url``,
``oauth2_client_id``, ``oauth2_client_secret``, ``oauth2_refresh_token``,
``oauth2_access_token`` and the ``*_eval`` forms of the last four). The values are plain
data: they travel to worker processes inside the repository settings, and the secrets among
them never show in a repr or in an error message. No network here (fastsync.oauth talks to
the token endpoint).
"""

from __future__ import annotations

import msgspec

# What fastsync can log in with. LOGIN is the IMAP LOGIN command (as in offlineimap3);
# PLAIN, XOAUTH2 and OAUTHBEARER are SASL mechanisms sent with AUTHENTICATE.
SUPPORTED = ("XOAUTH2", "OAUTHBEARER", "PLAIN", "LOGIN")
OAUTH_MECHANISMS = frozenset({"XOAUTH2", "OAUTHBEARER"})
# Without auth_mechanisms: OAuth2 first when it is configured (offlineimap3 tries XOAUTH2
# before passwords too), then the LOGIN command as fastsync always did, then PLAIN.
DEFAULT_ORDER = ("XOAUTH2", "OAUTHBEARER", "LOGIN", "PLAIN")
KNOWN_UNSUPPORTED = frozenset({"GSSAPI", "CRAM-MD5", "NTLM", "SCRAM-SHA-1", "SCRAM-SHA-256", "EXTERNAL"})

# Options with an ``_eval`` form (a Python expression evaluated once at load).
EVALUATED = ("oauth2_client_id", "oauth2_client_secret", "oauth2_refresh_token", "oauth2_access_token")
VALUES = ("oauth2_request_url", *EVALUATED)
SECRETS = frozenset({"oauth2_client_secret", "oauth2_refresh_token", "oauth2_access_token"})


class OAuth2Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Where an access token comes from: given (inline, or a file re-read at every login),
    and/or refreshed with ``refresh_token`` at ``request_url``."""

    request_url: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    access_token_file: str | None = None  # `fastsync migrate --oauthaccesstoken1 FILE`

    @property
    def can_refresh(self) -> bool:
        return self.refresh_token is not None and self.request_url is not None

    @property
    def usable(self) -> bool:
        return self.can_refresh or self.access_token is not None or self.access_token_file is not None

    def __repr__(self) -> str:  # tokens and the client secret must not reach logs through a repr
        shown = []
        for name in self.__struct_fields__:
            value = getattr(self, name)
            hidden = name in ("client_secret", "refresh_token", "access_token") and value is not None
            shown.append(f"{name}={'<hidden>' if hidden else repr(value)}")
        return f"OAuth2Settings({', '.join(shown)})"


def parse_mechanisms(raw: str) -> tuple[str, ...]:
    """``auth_mechanisms``: an ordered, comma-separated list; ValueError names what is wrong."""
    names = tuple(item.strip().upper() for item in raw.replace("\n", ",").split(",") if item.strip())
    if not names:
        raise ValueError(f"empty (expected some of {', '.join(SUPPORTED)})")
    for name in names:
        if name not in SUPPORTED:
            what = "is not supported by fastsync" if name in KNOWN_UNSUPPORTED else "is not a known mechanism"
            raise ValueError(f"{name} {what} (expected some of {', '.join(SUPPORTED)}, in order)")
    return tuple(dict.fromkeys(names))


def settings_from(values: dict[str, object]) -> OAuth2Settings | None:
    """Pop the oauth2_* options out of a repository's typed values; None when none is set."""
    found = {name: values.pop(name) for name in VALUES if name in values}
    if not found:
        return None
    return OAuth2Settings(**{name.removeprefix("oauth2_"): value for name, value in found.items()})  # type: ignore[arg-type]


def check(settings: OAuth2Settings | None, mechanisms: tuple[str, ...]) -> tuple[str, str] | None:
    """A contradiction in the settings, as (option, what is wrong), or None."""
    if settings is not None:
        if settings.refresh_token is not None and settings.request_url is None:
            return "oauth2_refresh_token", "set without oauth2_request_url (expected both, to refresh tokens)"
        if not settings.usable:
            return "oauth2_request_url", (
                "set without oauth2_refresh_token or oauth2_access_token (expected one of them too)"
            )
    oauth_only = bool(mechanisms) and set(mechanisms) <= OAUTH_MECHANISMS
    if oauth_only and (settings is None or not settings.usable):
        return "auth_mechanisms", (
            f"{', '.join(mechanisms)} without OAuth2 credentials "
            "(expected oauth2_access_token, or oauth2_refresh_token with oauth2_request_url)"
        )
    return None
