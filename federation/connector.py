"""The connector contract shared by the OIDC (Okta, Azure AD) and SAML connectors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping, Protocol

from federation.grants import is_group_name


@dataclass(frozen=True)
class Identity:
    """Who the upstream says signed in. ``subject`` is stable per upstream; e-mail is not."""

    subject: str
    email: str | None = None
    email_verified: bool = False
    name: str | None = None
    username: str | None = None
    groups: tuple[str, ...] = ()
    # the subject links were keyed by before this connection took another claim (Azure AD:
    # sub, before oid): a link found under it is re-keyed to ``subject`` at the sign-in
    former_subject: str | None = None


@dataclass(frozen=True)
class LoginStart:
    """Where to send the browser, and what the server must keep (single-use) until it returns.

    ``saved`` holds connector data such as the nonce and PKCE verifier (OIDC) or the
    AuthnRequest id (SAML); the server stores it under the ``state`` / RelayState it chose
    and passes it back to the callback exactly once.
    """

    redirect_url: str
    saved: dict = field(default_factory=dict)


class ConnectorError(Exception):
    """An upstream login failed. ``message`` is safe to show; ``reason`` is for the log."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.message = message
        self.reason = reason or message


class UpstreamUnavailable(ConnectorError):
    """The upstream cannot be used right now: unreachable, timing out, failing, or answering
    with something that is not the protocol. The server answers 503 rather than 401."""


# an optional string of an upstream (name, e-mail, user name) longer than this is dropped
MAX_TEXT_LENGTH = 1024


def checked_subject(value: object, max_length: int, message: str, *, name: str = "subject",
                    ascii_only: bool = False) -> str:
    """``value`` as an ``Identity.subject``: a non-empty string of at most ``max_length``
    printable characters (ASCII only with ``ascii_only``); else ``ConnectorError(message)``
    whose reason calls it ``name``. A subject the database could not store fails the login
    here, where it is audited, and not at the insert."""
    if not isinstance(value, str) or not value:
        raise ConnectorError(message, f"{name} is missing, empty or not a string")
    if len(value) > max_length:
        raise ConnectorError(message, f"{name} is longer than {max_length} characters")
    if not value.isprintable() or (ascii_only and not value.isascii()):
        kinds = "control or non-ASCII" if ascii_only else "control"
        raise ConnectorError(message, f"{name} has {kinds} characters")
    return value


def optional_text(value: object, max_length: int = MAX_TEXT_LENGTH) -> str | None:
    """An optional string of the upstream, or None when it is not a non-empty string of
    at most ``max_length`` printable characters: such a value is dropped, not refused."""
    if isinstance(value, str) and value and len(value) <= max_length and value.isprintable():
        return value
    return None


def group_names(values: Iterable[object]) -> tuple[str, ...]:
    """The groups an ``Identity`` keeps: each once, in order, without those no group mapping
    could name (``grants.is_group_name``)."""
    return tuple(dict.fromkeys(value for value in values if is_group_name(value)))


class CallbackConnector(Protocol):
    """Redirect-based upstreams (OpenID Connect).

    ``force_authn``: the user must authenticate at the upstream again, even with a session
    there (a relying party's ``prompt=login`` or ``select_account``); ``max_age``: their
    authentication there may be at most that many seconds old (OIDC Core §3.1.2.1).
    """

    def login(self, callback_url: str, state: str, *, force_authn: bool = False,
              max_age: int | None = None) -> LoginStart: ...

    def handle_callback(self, callback_url: str, params: Mapping[str, str],
                        saved: Mapping) -> Identity: ...


# ``seen(assertion_id, expires_at)``: record the id until ``expires_at`` (Unix time) and say
# whether it was already recorded, in one atomic step (Redis ``SET key 1 NX EXAT expires_at``).
SeenAssertion = Callable[[str, float], bool]


class SAMLConnector(Protocol):
    """SAML 2.0 upstreams: AuthnRequest by HTTP-Redirect, Response by HTTP-POST.

    ``saved`` is what ``login`` asked the server to keep under the RelayState, or None when
    the server holds nothing for it (an IdP-initiated, unsolicited Response); ``relay_state``
    is the RelayState the browser posted, checked against the connection's allowlist for
    unsolicited Responses. ``seen`` is the server's replay cache: the connector calls it
    once, last, for an assertion that passed every other check, and refuses the Response
    when it answers True.

    ``force_authn`` and ``max_age`` ask for a fresh authentication as for a
    ``CallbackConnector``; SAML can only ask for one of no age (``ForceAuthn``), which any
    ``max_age`` asks for too.
    """

    def login(self, acs_url: str, relay_state: str, *, force_authn: bool = False,
              max_age: int | None = None) -> LoginStart: ...

    def handle_post(self, acs_url: str, saml_response: str, saved: Mapping | None, *,
                    seen: SeenAssertion, relay_state: str | None = None) -> Identity: ...
