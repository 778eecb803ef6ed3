"""The authorization endpoint (RFC 6749 §4.1.1, OpenID Connect Core 1.0 §3.1.2) as a pipeline.

Authlib validates the request: the client, the exact ``redirect_uri``, the response type,
the scope, PKCE, ``nonce`` and the ``prompt`` syntax. Then this module decides what the
user still has to do:

* sign in — when the browser has no IdP session, ``prompt=login`` (or ``select_account``)
  asks for a fresh sign-in, or the last one is older than ``max_age`` (§3.1.2.1), when the
  request arrives or later when the code would be issued (a sign-in made for the request
  meets it throughout);
* consent — a third-party client asking for scopes the user has not allowed it yet, or
  ``prompt=consent``;

and, when nothing is left, issues the code. ``prompt=none`` turns "something is left"
into the ``login_required`` / ``consent_required`` error (§3.1.2.6).

A non-standard ``idp_hint`` (Keycloak's ``kc_idp_hint``) naming an upstream identity
provider that is configured sends a sign-in that is due there instead of to the login page
(``SignInUpstream``); the web layer starts the upstream login, whose callback signs the
browser in (``sign_in_as``) and resumes the request. A hint naming no configured provider
is ignored: the login page, which lists the ones there are.

While the user is on the login or consent page, the request waits in the store as an
*interaction* (``ia:{<id>}``, 30 minutes), bound to the browser session that started it —
as node-oidc-provider's interactions do — and is validated again when it resumes, so a
client or user changed meanwhile is noticed. Errors are Authlib's ``OAuth2Error``: those
that know a registered ``redirect_uri`` go back to it, the others (unknown client,
unregistered ``redirect_uri``) never redirect (the web layer shows a page).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, fields, replace
from typing import Callable, Mapping, Union

from authlib.oauth2.base import OAuth2Error
from authlib.oauth2.rfc6749.errors import AccessDeniedError, InvalidRequestError
from authlib.oauth2.rfc6749.util import scope_to_list
from authlib.oidc.core.errors import ConsentRequiredError, LoginRequiredError

from .accounts import Account
from .clients import RegisteredClient
from .clock import now
from .consents import ConsentDirectory
from .errors import IdpError, InvalidRequest, NotFound
from .oauth_request import refuse_repeated_parameters
from .sessions import BrowserSession, SessionStore
from .store import Store
from .token_service import TokenService

INTERACTION_TTL = 1800
_SECONDS = re.compile(r"^[0-9]{1,10}$")


class InteractionExpired(NotFound):
    message = ("This sign-in request has expired or does not belong to this browser. "
               "Go back to the application and start again.")


@dataclass(frozen=True)
class Interaction:
    id: str
    params: dict[str, list[str]]
    session: str  # binding of the browser session it belongs to
    login: bool  # a sign-in is still due
    consent: bool  # the consent page is due even if consent was given (prompt=consent)
    # the session's sign-in was made for this request: it meets prompt=login and max_age
    # however long the consent page then takes (as a login in node-oidc-provider's
    # interaction does); a sign-in found in place is held to max_age again until the code
    signed_in_for_it: bool = False


# what an interaction's stored record holds (_save); a later release's fields are ignored
_RECORD_FIELDS = frozenset(f.name for f in fields(Interaction)) - {"id", "signed_in_for_it"}

# KEYS[1] the waiting request, KEYS[2] the mark beside it; ARGV: the record, the mark ('' for
# none), seconds to live, '1' when it must still be waiting: a request saved again after a
# sign-in or a consent never comes back once another tab has had its answer
_SAVE = """
if ARGV[4] == '1' and redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
if ARGV[2] ~= '' then redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3]) end
return 1
"""

# KEYS as above: the request is answered once, by whoever removes it (two tabs, a double
# click: the other finds it gone)
_SPEND = """
local spent = redis.call('DEL', KEYS[1])
redis.call('DEL', KEYS[2])
return spent
"""


@dataclass(frozen=True)
class Redirect:
    location: str


@dataclass(frozen=True)
class ShowLogin:
    interaction: Interaction
    client: RegisteredClient


@dataclass(frozen=True)
class SignInUpstream:
    """The sign-in happens at the upstream identity provider ``provider`` (``idp_hint``)."""
    interaction: Interaction
    provider: str


@dataclass(frozen=True)
class ShowConsent:
    interaction: Interaction
    client: RegisteredClient
    scopes: list[str]
    username: str  # who is signed in, as the page says


@dataclass(frozen=True)
class Refused:
    """The request is refused right after a sign-in: the browser keeps its new session,
    then gets the error (the web layer raises it)."""
    error: OAuth2Error


Outcome = Union[Redirect, ShowLogin, SignInUpstream, ShowConsent, Refused]


def prompts_of(data: Mapping[str, str]) -> set[str]:
    return set((data.get("prompt") or "").split())


def max_age_of(data: Mapping[str, str]) -> int | None:
    """The request's ``max_age`` in seconds; ``ValueError`` when it is not one."""
    raw = data.get("max_age")
    if raw is None or raw == "":
        return None
    if not _SECONDS.fullmatch(raw):
        raise ValueError("'max_age' must be a number of seconds")
    return int(raw)


def asks_for_a_sign_in(prompts: set[str]) -> bool:
    """``prompt=login``, or ``select_account`` (OIDC Core §3.1.2.1: the user chooses the
    account, on the login page or at the upstream, which must not answer from its session)."""
    return not prompts.isdisjoint({"login", "select_account"})


def freshness_asked(params: Mapping[str, list[str]]) -> tuple[bool, int | None]:
    """Whether a waiting request asks for a sign-in (``asks_for_a_sign_in``), and its
    ``max_age`` (``authorize`` validated both, and refused repeated parameters)."""
    data = {name: values[0] for name, values in params.items() if values}
    return asks_for_a_sign_in(prompts_of(data)), max_age_of(data)


def _max_age(grant) -> int | None:
    try:
        return max_age_of(grant.request.payload.data)
    except ValueError as error:
        raise _error(grant, InvalidRequestError, str(error)) from None


def _compact(value: dict) -> str:
    return json.dumps(value, separators=(",", ":"))


def _error(grant, error_class, description: str | None = None):
    """An authorization error that goes back to the request's (verified) redirect_uri."""
    return error_class(description, redirect_uri=grant.redirect_uri,
                       state=grant.request.payload.state)


class AuthorizationFlow:
    def __init__(self, server, sessions: SessionStore, consents: ConsentDirectory,
                 tokens: TokenService, store: Store, clock=now,
                 upstreams: Callable[[], list[str]] = list):
        self.server = server
        self.sessions = sessions
        self.consents = consents
        self.tokens = tokens
        self.store = store
        self.clock = clock
        # the upstream identity providers a user may sign in through now (for idp_hint)
        self.upstreams = upstreams

    # -- entry points -----------------------------------------------------------------------
    def authorize(self, params: Mapping[str, list[str]],
                  session: BrowserSession | None) -> tuple[Outcome, BrowserSession | None]:
        """A new authorization request. Returns what to do next, and the browser session
        (an anonymous one is made when the user must be shown a page)."""
        account = self.signed_in_account(session)
        if account is None and session is not None and session.signed_in:
            # a sign-in that no longer stands: like a browser without a session (the
            # interaction is bound to a fresh anonymous one, should a page be shown)
            session = None
        grant = self._validate(params, account)
        prompts = prompts_of(grant.request.payload.data)
        if "none" in prompts and len(prompts) > 1:
            raise _error(grant, InvalidRequestError, "'prompt=none' cannot be combined")
        # an id_token_hint naming someone else than the user signed in asks for that user's
        # sign-in (OIDC Core §3.1.2.1); a hint that is not our ID token is refused here
        max_age = _max_age(grant)  # checked whether or not a sign-in is there to compare
        login = (not self._hint_names(grant, account) or account is None
                 or asks_for_a_sign_in(prompts) or self._older_than_max_age(session, max_age))
        consent = "consent" in prompts
        # looked up once (a database query), and only for a user who is signed in
        consent_due = not login and self._consent_due(grant, account, consent)
        if "none" in prompts:
            if login:
                raise _error(grant, LoginRequiredError)
            if consent_due:
                raise _error(grant, ConsentRequiredError)
        if not login and not consent_due:
            return self._issue(grant, account, session), session
        if session is None:
            session = self.sessions.anonymous()
        interaction = Interaction(id=secrets.token_urlsafe(24), params=dict(params),
                                  session=self.sessions.binding(session.id), login=login,
                                  consent=consent)
        self._save(interaction)
        hint = grant.request.payload.data.get("idp_hint")
        if login and hint and hint in self.upstreams():
            return SignInUpstream(interaction, hint), session
        return self._next(interaction, grant, account, session, consent_due), session

    def pending(self, interaction_id: str, session: BrowserSession | None) -> Outcome:
        """What a waiting request needs now (the login or the consent page, or nothing)."""
        interaction = self.waiting(interaction_id, session)
        account = self.signed_in_account(session)
        return self._next(interaction, self._validate(interaction.params, account), account,
                          session)

    def sign_in(self, interaction_id: str, session: BrowserSession | None, username: str,
                password: str, client_ip: str) -> tuple[Outcome, BrowserSession]:
        """Check the password (brute-force limits apply), start a new browser session and
        resume the request (``sign_in_as``)."""
        interaction = self.waiting(interaction_id, session)
        account = self.tokens.authenticate_password(username, password, client_ip)
        return self.sign_in_as(interaction, session, account)

    def sign_in_as(self, interaction: Interaction, session: BrowserSession | None,
                   account: Account) -> tuple[Outcome, BrowserSession]:
        """Start a new browser session for ``account``, who was authenticated elsewhere
        (the password above, an upstream identity provider), and resume the request in it:
        the consent page or the code, with the new session.

        A refusal of the request now (a client changed meanwhile, a tenant the user holds no
        role in) is the outcome ``Refused``: the sign-in stands all the same.
        """
        signed_in = self.sessions.sign_in(session, account.id, account.read_at)
        interaction = replace(interaction, session=self.sessions.binding(signed_in.id),
                              login=False, signed_in_for_it=True)
        try:
            grant = self._validate(interaction.params, account)
            if session is not None and session.user_id not in (None, account.id):
                # a consent given on this request (``decide``) was the previous user's: whoever
                # signs in now answers prompt=consent for themselves
                interaction = replace(interaction, consent=interaction.consent or "consent"
                                      in prompts_of(grant.request.payload.data))
            outcome = self._next(interaction, grant, account, signed_in)
        except OAuth2Error as error:
            return Refused(error), signed_in
        if isinstance(outcome, ShowConsent):
            self._save(interaction, waiting=True)  # it waits on, in the new session
        elif isinstance(outcome, ShowLogin):
            # signed in as someone else than the id_token_hint names: the login page again,
            # in the new session
            self._save(replace(interaction, login=True), waiting=True)
        return outcome, signed_in

    def decide(self, interaction_id: str, session: BrowserSession | None,
               allow: bool) -> Outcome:
        """The user's answer on the consent page."""
        interaction = self.waiting(interaction_id, session)
        account = self.signed_in_account(session)
        grant = self._validate(interaction.params, account)
        if account is None or interaction.login:
            return self._next(interaction, grant, account, session)
        if not allow:
            self._spend(interaction)
            raise _error(grant, AccessDeniedError)
        client = grant.request.client
        if not client.first_party:
            # the code counts from the consent, as when one is found (``_consent_due``)
            grant.request.consent_read_at = self.clock()
            self.consents.grant(account.id, client.client_id, scope_to_list(grant.request.scope))
        interaction = replace(interaction, consent=False)
        outcome = self._next(interaction, grant, account, session, consent_due=False)
        if isinstance(outcome, ShowLogin):
            # the consent just given stands through the new sign-in
            self._save(interaction, waiting=True)
        return outcome

    # -- the session ----------------------------------------------------------------------
    def signed_in_account(self, session: BrowserSession | None) -> Account | None:
        """The session's user, if the sign-in still stands (user enabled, not revoked).

        A session whose sign-in no longer stands is not ended here: a waiting request may be
        bound to it, and it carries the CSRF token of the login form the user is sent to;
        signing in again ends it (``SessionStore.sign_in``).
        """
        if session is None or not session.signed_in:
            return None
        return self.tokens.account_if_valid(session.user_id, session.auth_time)

    def _older_than_max_age(self, session: BrowserSession, max_age: int | None) -> bool:
        """Is the sign-in older than the request's ``max_age``? Then the user must sign in
        again (OIDC Core §3.1.2.1). Counted from the whole second the ID token will claim
        as ``auth_time``, as the client checks it."""
        return max_age is not None and self.clock() - int(session.auth_time) > max_age

    # -- steps ----------------------------------------------------------------------------
    def _validate(self, params: Mapping[str, list[str]], account: Account | None):
        request = self.server.authorization_request(params)
        grant = self.server.get_consent_grant(request, end_user=account)
        # RFC 6749 §3.1: no parameter twice. Authlib checks five of them before it knows the
        # redirect_uri; the others (nonce, prompt, max_age, tenant, ...) go back to it.
        try:
            refuse_repeated_parameters(grant.request)
        except InvalidRequestError as error:
            raise _error(grant, InvalidRequestError, error.description) from None
        return grant

    def _hint_names(self, grant, account: Account | None) -> bool:
        """Does the ``id_token_hint``, if there is one, name ``account``? OIDC Core
        §3.1.2.1: the user it names must be signed in, or sign in for the request; anyone
        else is sent to the login page (``login_required`` with ``prompt=none``)."""
        hint = grant.request.payload.data.get("id_token_hint")
        if not hint:
            return True
        if grant.request.hint_subject is None:  # verified once per request (an RSA check)
            try:
                claims = self.server.id_tokens.verify_hint(hint)
            except InvalidRequest as error:
                raise _error(grant, InvalidRequestError, error.message) from None
            grant.request.hint_subject = claims["sub"]
        return account is not None and grant.request.hint_subject == account.id

    def _consent_due(self, grant, account: Account | None, forced: bool) -> bool:
        if forced:
            return True
        client = grant.request.client
        if client.first_party or account is None:
            return False
        grant.request.consent_read_at = self.clock()  # the code's issue moment, if one comes
        consent = self.consents.find(account.id, client.client_id)
        wanted = set(scope_to_list(grant.request.scope) or ())
        return consent is None or not wanted <= set(consent.scopes)

    def _next(self, interaction: Interaction, grant, account: Account | None,
              session: BrowserSession | None, consent_due: bool | None = None) -> Outcome:
        """The login page, the consent page, or the code; ``consent_due`` when the caller
        has looked it up already (or the user has just consented)."""
        # max_age again for a sign-in found in place: the user may have waited on the consent
        # page past it (§3.1.2.1)
        if interaction.login or account is None or not self._hint_names(grant, account) or (
                not interaction.signed_in_for_it
                and self._older_than_max_age(session, _max_age(grant))):
            return ShowLogin(interaction, grant.request.client)
        client = grant.request.client
        if consent_due is None:
            consent_due = self._consent_due(grant, account, interaction.consent)
        if consent_due:
            return ShowConsent(interaction, client, scope_to_list(grant.request.scope) or [],
                               account.username)
        self._spend(interaction)
        return self._issue(grant, account, session)

    def _issue(self, grant, account: Account, session: BrowserSession) -> Redirect:
        tenant = grant.request.payload.data.get("tenant")
        try:
            self.tokens.check_tenant(account, tenant)
        except IdpError:
            raise _error(grant, AccessDeniedError,
                         "The user holds no role in the requested tenant") from None
        grant.request.auth_time = session.auth_time
        return Redirect(self.server.authorization_location(grant, account))

    # -- interactions in the store --------------------------------------------------------
    def _key(self, interaction_id: str) -> str:
        return self.store.key("ia", interaction_id)

    def _signed_in_key(self, interaction_id: str) -> str:
        return self.store.key("ia", interaction_id, "signed-in")

    def _save(self, interaction: Interaction, waiting: bool = False) -> None:
        """Store the request (``waiting``: again, only if nobody has answered it since)."""
        data = asdict(interaction)
        del data["id"]
        # the previous release reads the record with the fields it knows (Interaction(**data)),
        # so the mark of a sign-in made for the request lives beside it, during a rolling
        # deploy or after a rollback too
        mark = {"session": interaction.session} if data.pop("signed_in_for_it") else None
        saved = self.store.run(_SAVE, self._keys(interaction.id), [
            _compact(data), "" if mark is None else _compact(mark), INTERACTION_TTL,
            "1" if waiting else "0"])
        if not saved:
            raise InteractionExpired()

    def waiting(self, interaction_id: str, session: BrowserSession | None) -> Interaction:
        """The waiting request, if it belongs to this browser (``InteractionExpired`` if not)."""
        if session is None or not isinstance(interaction_id, str) \
                or not 16 <= len(interaction_id) <= 64:
            raise InteractionExpired()
        # one round trip: the record and the mark beside it (_save)
        record, mark = self.store.mget(self._keys(interaction_id))
        data = None if record is None else json.loads(record)
        if data is None or data["session"] != self.sessions.binding(session.id):
            raise InteractionExpired()
        signed_in = None if mark is None else json.loads(mark)
        return Interaction(id=interaction_id,
                           **{k: v for k, v in data.items() if k in _RECORD_FIELDS},
                           signed_in_for_it=signed_in is not None
                           and signed_in.get("session") == data["session"])

    def _spend(self, interaction: Interaction) -> None:
        """Take the request out of the store before answering it; ``InteractionExpired``
        when another request (a second tab, a double click) took it first."""
        if not self.store.run(_SPEND, self._keys(interaction.id), []):
            raise InteractionExpired()

    def _keys(self, interaction_id: str) -> list[str]:
        return [self._key(interaction_id), self._signed_in_key(interaction_id)]
