"""Signing in through an upstream identity provider: the browser's round trip.

1. ``start``: a sign-in is due for a waiting authorization request (``idp_hint``, or a
   button on the login page). A fresh random ``state`` (OIDC) / RelayState (SAML) is the
   key under which the store keeps, single use, for ``STATE_TTL`` seconds: the provider,
   the interaction (the waiting request), the binding of the browser session that started
   it, and the connector's ``saved`` data (nonce and PKCE verifier, or the AuthnRequest id).
2. ``oidc_callback`` (``GET …/{okta|azure}/callback``): consumes the state atomically,
   checks it was started by this browser, lets the connector exchange the code and verify
   the ID token, brokers the ``Identity`` into a local user, signs the browser in and
   resumes the request: the browser lands on ``redirect_uri?code=…&state=…&iss=…``.
3. SAML posts its Response cross-site, and a ``SameSite=Lax`` session cookie does not come
   with a cross-site POST. So ``saml_acs`` (``POST …/saml/acs``) consumes the RelayState's
   state and has the connector verify the Response, keeps the verified ``Identity`` under
   a fresh single-use id for ``COMPLETION_TTL`` seconds, and sends the browser (303) to
   ``GET …/saml/complete?id=…``, which does carry the cookie; ``saml_complete`` checks the
   browser and finishes as in 2. Nothing is created before the browser is checked.

A state that is unknown, expired, used, for another provider or started by another browser
ends the login with an error page and creates nothing; so does every refusal of the
connector (401) and an upstream that is down or answers garbage (503). Every SSO login is
audited (``sso.login``, with a reason category on failure).

IdP-initiated SAML (an unsolicited Response, no state) is refused unless the connection
sets ``allow_idp_initiated``; then the RelayState must be on its allowlist, where each entry
is an https URL of an application's start page. The browser is signed in at the IdP (an IdP
session, no code) and sent there; the application starts its own authorization request,
which the session answers without a form. No request of a relying party is involved, so
nothing binds the Response to the browser: an enabled IdP-initiated login lets whoever can
post a fresh Response of the IdP sign a browser in (login CSRF) — which is why it is off by
default.
"""

from __future__ import annotations

import math
import re
import secrets
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

from federation.connector import ConnectorError, Identity, UpstreamUnavailable
from federation.saml import sp_metadata
from idp.authorize import (AuthorizationFlow, Interaction, Outcome, Redirect,
                           freshness_asked)
from idp.clock import now
from idp.errors import IdpError, NotFound, Unavailable
from idp.sessions import BrowserSession, SessionStore
from idp.store import Store

from . import DISPLAY_NAMES, acs_url, callback_url, sp_entity_id
from .identities import BrokeredLogin, FederatedAccounts, link_id
from .registry import Connection, ConnectorRegistry, SamlUnavailable

STATE_TTL = 600
COMPLETION_TTL = 120
# token_urlsafe(32): what the server hands out as state, RelayState and completion ids
_SERVER_ID = re.compile(r"^[A-Za-z0-9_-]{43}$")


class SignInExpired(IdpError):
    status = 400
    reason = "state"
    message = ("This sign-in has expired or was already used. Go back to the application "
               "and sign in again.")


class OtherBrowser(SignInExpired):
    reason = "browser"
    message = ("This sign-in was started in another browser. Go back to the application "
               "and sign in again from this one.")


class _ConnectorFailure:
    """A ``ConnectorError`` as the app answers it: its message is safe to show, ``detail``
    (the connector's reason) goes to the audit log."""

    def __init__(self, message: str, detail: str | None = None):
        super().__init__(message)
        self.detail = detail


class UpstreamRefused(_ConnectorFailure, IdpError):
    """The connector refused the login."""
    status = 401
    code = "UNAUTHORIZED"
    oauth_error = "access_denied"
    reason = "rejected"


class UpstreamDown(_ConnectorFailure, Unavailable):
    """The upstream is unreachable or answered something that is not the protocol."""
    reason = "unavailable"


class NotConfigured(NotFound):
    reason = "not_configured"
    message = "Sign-in through this identity provider is not configured."


@dataclass(frozen=True)
class PendingLogin:
    """What the store keeps under a state until the upstream sends the browser back."""

    provider: str
    interaction: str
    session: str  # binding of the browser session that started the login
    saved: dict
    expires_at: float


class SsoLogins:
    def __init__(self, registry: ConnectorRegistry, accounts: FederatedAccounts,
                 flow: AuthorizationFlow, sessions: SessionStore, store: Store, audit, *,
                 issuer: str, clock=now):
        self.registry = registry
        self.accounts = accounts
        self.flow = flow
        self.sessions = sessions
        self.store = store
        self.audit = audit
        self.issuer = issuer
        self.clock = clock
        self._metadata: str | None = None

    # -- what the login page offers ------------------------------------------------------
    def providers(self) -> list[tuple[str, str]]:
        """(provider, display name) of every connection a user may sign in through."""
        return [(provider, DISPLAY_NAMES[provider]) for provider in self.registry.available()]

    # -- 1. to the upstream --------------------------------------------------------------
    def start(self, provider: str, interaction: Interaction) -> str:
        """Where to send the browser to sign in for ``interaction`` at ``provider``.

        A relying party's ``prompt=login`` (or ``select_account``) or ``max_age`` (OIDC Core
        §3.1.2.1) goes upstream too: the upstream's own session must not stand in for the
        fresh sign-in it asked for, which the ID token's ``auth_time`` would then claim."""
        with self._audited(provider):
            connection = self._connection(provider)
            state = secrets.token_urlsafe(32)
            force_authn, max_age = freshness_asked(interaction.params)
            started = self._call(lambda: connection.connector.login(
                self._return_url(provider), state, force_authn=force_authn, max_age=max_age))
            pending = PendingLogin(provider=provider, interaction=interaction.id,
                                   session=interaction.session, saved=dict(started.saved),
                                   expires_at=self.clock() + STATE_TTL)
            self.store.put(self._key("sso", state), asdict(pending), STATE_TTL)
            return started.redirect_url

    # -- 2. OpenID Connect: back from the upstream ---------------------------------------
    def oidc_callback(self, provider: str, params: dict[str, str],
                      session: BrowserSession | None) -> tuple[Outcome, BrowserSession]:
        with self._audited(provider):
            pending = self._take(provider, params.get("state"))
            self._check_browser(pending, session)
            connection = self._connection(provider)
            identity = self._call(lambda: connection.connector.handle_callback(
                self._return_url(provider), params, pending.saved))
            return self._finish(connection, identity, pending.interaction, session)

    # -- 3. SAML: the Response, then the browser -----------------------------------------
    def saml_acs(self, saml_response: str | None, relay_state: str | None) -> str:
        """Verify a posted Response; the id to complete it with in the browser's session."""
        with self._audited("saml"):
            connection = self._connection("saml")
            pending = self._take("saml", relay_state, solicited=False)
            saved = None if pending is None else pending.saved
            identity = self._call(lambda: connection.connector.handle_post(
                acs_url(self.issuer), saml_response or "", saved, seen=self._seen(connection),
                relay_state=relay_state))
            completion = secrets.token_urlsafe(32)
            self.store.put(self._key("sso-done", completion), {
                # unset fields left out: a worker of the previous release, which knows
                # fewer fields, can still complete what this one started
                "identity": {name: value for name, value in asdict(identity).items()
                             if value is not None},
                "pending": None if pending is None else asdict(pending),
                "relay_state": relay_state if pending is None else None,
                "connection": connection.version.isoformat(),
                "expires_at": self.clock() + COMPLETION_TTL,
            }, COMPLETION_TTL)
            return completion

    def saml_complete(self, completion: str | None,
                      session: BrowserSession | None) -> tuple[Outcome, BrowserSession]:
        with self._audited("saml"):
            record = self._consume(completion)
            if record is None:
                raise SignInExpired()
            identity = Identity(**{**record["identity"],
                                   "groups": tuple(record["identity"]["groups"])})
            connection = self._connection("saml")
            if record.get("connection") != connection.version.isoformat():
                # the connection changed since it verified the Response: its subject is
                # unique only at the IdP that signed it (SAML Core §8.3), and brokered
                # under a replacement it could reach that IdP's user of the same name.
                # The previous release's records name no connection: refused too (only
                # the sign-ins in flight during a rolling deploy start again).
                raise SignInExpired()
            if record["pending"] is None:
                return self._idp_initiated(connection, identity, record["relay_state"], session)
            pending = PendingLogin(**record["pending"])
            self._check_browser(pending, session)
            return self._finish(connection, identity, pending.interaction, session)

    def metadata(self) -> str:
        """Our SP metadata (entity id, ACS, NameID formats)."""
        self.require_saml()
        if self._metadata is None:
            self._metadata = sp_metadata(sp_entity_id(self.issuer), acs_url(self.issuer))
        return self._metadata

    def require_saml(self) -> None:
        if self.registry.saml_unavailable:
            raise SamlUnavailable()

    # -- finishing -----------------------------------------------------------------------
    def _finish(self, connection: Connection, identity: Identity, interaction_id: str,
                session: BrowserSession | None) -> tuple[Outcome, BrowserSession]:
        """Broker the identity, sign the browser in, and resume the waiting request."""
        interaction = self.flow.waiting(interaction_id, session)
        brokered = self.accounts.sign_in(connection, identity)
        outcome, signed_in = self.flow.sign_in_as(interaction, session, brokered.account)
        self._signed_in(connection, brokered)
        return outcome, signed_in

    def _idp_initiated(self, connection: Connection, identity: Identity, relay_state: str,
                       session: BrowserSession | None) -> tuple[Outcome, BrowserSession]:
        """An IdP session and the allowlisted page: no request of a relying party waits."""
        config = connection.config  # checked again: the connection may have changed
        if not config.allow_idp_initiated or relay_state not in config.relay_state_allowlist:
            raise UpstreamRefused("The SAML response does not answer a sign-in started here")
        brokered = self.accounts.sign_in(connection, identity)
        signed_in = self.sessions.sign_in(session, brokered.account.id, brokered.account.read_at)
        self._signed_in(connection, brokered, idp_initiated=True)
        return Redirect(relay_state), signed_in

    def _signed_in(self, connection: Connection, brokered: BrokeredLogin, **details) -> None:
        self.audit("sso.login", "success", actor=brokered.account.id, target=connection.provider,
                   created=brokered.created, memberships_changed=brokered.memberships_changed,
                   **details)

    # -- state ---------------------------------------------------------------------------
    def _key(self, kind: str, server_id: str) -> str:
        return self.store.key(kind, server_id)

    def _consume(self, server_id: object, kind: str = "sso-done") -> dict | None:
        if not isinstance(server_id, str) or not _SERVER_ID.fullmatch(server_id):
            return None
        record = self.store.consume(self._key(kind, server_id))
        if record is None or record["expires_at"] <= self.clock():
            return None
        return record

    def _take(self, provider: str, state: object, solicited: bool = True) -> PendingLogin | None:
        """The login kept under ``state``, consumed. An unknown one is ``SignInExpired``,
        or None for a SAML Response that may be unsolicited (the connector decides)."""
        record = self._consume(state, "sso")
        if record is None and not solicited:
            return None
        if record is None or record["provider"] != provider:
            raise SignInExpired()
        return PendingLogin(**record)

    def _check_browser(self, pending: PendingLogin, session: BrowserSession | None) -> None:
        if session is None or self.sessions.binding(session.id) != pending.session:
            raise OtherBrowser()

    def _seen(self, connection: Connection):
        """The SAML replay cache: ``SET NX`` until the assertion would expire."""
        def seen(assertion_id: str, expires_at: float) -> bool:
            digest = link_id(connection.provider, connection.upstream, assertion_id)
            ttl = max(1, math.ceil(expires_at - time.time()))
            return not self.store.add(self._key("sso-seen", digest), {}, ttl)
        return seen

    # -- connections and connectors ------------------------------------------------------
    def _connection(self, provider: str) -> Connection:
        if provider == "saml":
            self.require_saml()
        connection = self.registry.get(provider)
        if connection is None:
            raise NotConfigured()
        return connection

    def _return_url(self, provider: str) -> str:
        return acs_url(self.issuer) if provider == "saml" else callback_url(self.issuer, provider)

    @staticmethod
    def _call(step):
        """A connector step; its refusals become errors the app shows (401 / 503), with the
        connector's reason kept for the audit log."""
        try:
            return step()
        except ConnectorError as error:
            failure = UpstreamDown if isinstance(error, UpstreamUnavailable) else UpstreamRefused
            raise failure(error.message, error.reason) from None

    @contextmanager
    def _audited(self, provider: str):
        """A step of the login that fails is audited, with a reason category (``state``,
        ``browser``, ``rejected``, ``unavailable``, ``disabled``, ...) and, for a refusal
        of the connector, its reason."""
        try:
            yield
        except IdpError as error:
            # the errors of this package name their reason; others (InteractionExpired, ...)
            # are audited under their class name
            reason = getattr(error, "reason", type(error).__name__)
            detail = getattr(error, "detail", None)
            extra = {"detail": detail[:300]} if detail else {}
            self.audit("sso.login", "failure", actor=getattr(error, "user_id", None),
                       target=provider, reason=reason, **extra)
            raise
