"""Verifying Infracast access tokens and API keys in a resource server (contract §6).

Downstream services import this module (and ``idp.verifier_flask`` for Flask); it needs
``requests``, ``joserfc``, ``idp.permissions`` and ``idp.rfc9068``, never the identity
provider's app::

    from idp.verifier import Verifier, InvalidToken

    verifier = Verifier("https://id.infracast.example", audience="infracast-api")
    principal = verifier.verify(token, client_ip="203.0.113.7")   # raises InvalidToken
    if principal.allows("acme", "nodes:read"):
        ...

An access token (RFC 9068) is accepted only when all of these hold:

- the header says ``typ`` ``at+jwt`` (an ID token is not an access token), ``alg`` ``RS256``
  and names a ``kid``; the algorithm is fixed by our keys, never taken from the header, so
  ``none``, ``HS256`` keyed with the public key and every other algorithm are refused;
- ``kid`` is in the issuer's JWKS, found through discovery (``/.well-known/openid-configuration``)
  and cached for its ``Cache-Control: max-age`` less its ``Age``; an unknown ``kid``
  refetches the JWKS at most once per ``unknown_kid_interval``, so a flood of made-up kids
  cannot stampede the IdP (the IdP publishes every key before it signs, so a real token
  never needs that refetch);
- the RS256 signature verifies with that key;
- the claims follow ``idp.rfc9068`` (the IdP checks its own tokens by the same rules):
  ``iss`` is the issuer, ``aud`` holds the audience, ``exp`` is in the future and ``nbf``
  and ``iat`` are not, each a finite number, with ``leeway`` seconds of clock skew;
  ``sub``, ``client_id`` and ``jti`` are present; and ``tenants`` is an object of
  permission lists;
- the revocation check, when one is configured, says the token is still good; with
  ``introspect_access_tokens``, the IdP's introspection endpoint says it is still active.

Two hooks are protocols so that their implementations drop in without touching this module:

- ``RevocationCheck``: called with the verified claims (``jti``, ``sid``, ``sub``, ``iat``...),
  answers whether the token is still good; ``idp.verifier_redis.SharedRedisRevocationCheck``
  reads the IdP's own revocation copy in Redis;
- ``Introspector``: RFC 7662 introspection of an opaque ``ic_live_`` API key, told the
  caller's address for the key's ``allowed_ips`` (and, with ``introspect_access_tokens``,
  of access tokens); ``idp.verifier_introspection.IntrospectionClient`` asks the IdP's
  ``/oauth/introspect`` with a short positive cache. Without one, API keys are refused.

Failures are ``InvalidToken`` (answer 401) or ``VerifierUnavailable`` (answer 503: the IdP
cannot be reached and no usable keys are cached, or a token names a kid that only a JWKS we
cannot refetch could hold, or a hook failed; never fail open).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Protocol

import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from joserfc.errors import JoseError
from joserfc.jwk import RSAKey

from . import rfc9068, rs256
from .api_key_format import PREFIX as API_KEY_PREFIX
from .api_key_format import looks_like_api_key
from .permissions import allows as _allows
from .rfc9068 import ALGORITHM, MAX_TOKEN_LENGTH

__all__ = [
    "API_KEY_PREFIX", "ACCESS_TOKEN", "API_KEY", "Principal", "RevocationCheck",
    "Introspector", "VerificationError", "InvalidToken", "VerifierUnavailable", "Verifier",
]

log = logging.getLogger("infracast.verifier")

MIN_RSA_BITS = 2048
# a document without Cache-Control is kept this long; none is kept longer than a day
DEFAULT_MAX_AGE = 300
MAX_MAX_AGE = 86400

ACCESS_TOKEN, API_KEY = "access_token", "api_key"


class VerificationError(Exception):
    """Base of every refusal. ``reason`` is for logs; never show it to the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class InvalidToken(VerificationError):
    """Missing, malformed, forged, expired, revoked or unknown: answer 401."""


class VerifierUnavailable(VerificationError):
    """The keys or a hook cannot answer right now: answer 503, never accept."""


class RevocationCheck(Protocol):
    def __call__(self, claims: Mapping[str, Any]) -> bool:
        """True while the token with these verified claims is still good, False once it
        has been revoked. Raise when unsure (store unreachable): the verifier fails closed."""


class Introspector(Protocol):
    def __call__(self, token: str, client_ip: str | None) -> Mapping[str, Any]:
        """The RFC 7662 §2.2 answer for ``token``, asked on behalf of a caller at
        ``client_ip``: ``{"active": true, "sub", "client_id", "scope", "exp", "tenants", ...}``
        or ``{"active": false}``. Raise when the IdP cannot be asked: the verifier fails closed."""


@dataclass(frozen=True)
class Principal:
    """Who is calling and what they may do: a verified access token or API key."""

    subject: str
    token_type: str  # ACCESS_TOKEN or API_KEY
    client_id: str | None
    scope: str
    roles: tuple[str, ...]
    # tenant id -> the permissions held there; "*" is every tenant
    tenants: Mapping[str, tuple[str, ...]]
    expires_at: int | None
    issued_at: int | None = None
    jti: str | None = None
    sid: str | None = None
    claims: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())

    def allows(self, tenant: str, permission: str) -> bool:
        """May this caller do ``permission`` in ``tenant``? ``admin:*`` satisfies everything."""
        return _allows(self.tenants, tenant, permission)


def _active(answer: Any) -> bool:
    """Is this RFC 7662 §2.2 answer ``"active": true``? Anything else is inactive."""
    return isinstance(answer, Mapping) and answer.get("active") is True


def _string_list(value: Any, name: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidToken(f"'{name}' is not a list of strings")
    return tuple(value)


def _optional(claims: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    value = claims.get(name)
    if value is not None and (not isinstance(value, kind) or isinstance(value, bool)):
        raise InvalidToken(f"'{name}' has the wrong type")
    return value


def _instant(claims: Mapping[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is not None and not rfc9068.is_number(value):
        raise InvalidToken(f"'{name}' is not a finite number")
    return None if value is None else int(value)


def _principal(claims: Mapping[str, Any], token_type: str) -> Principal:
    """The principal of verified JWT claims or of an active introspection answer."""
    subject = claims.get("sub")
    if not isinstance(subject, str) or not subject:
        raise InvalidToken("no subject")
    tenants = claims.get("tenants", {})
    if not isinstance(tenants, dict):
        raise InvalidToken("'tenants' is not an object")
    return Principal(
        subject=subject,
        token_type=token_type,
        client_id=_optional(claims, "client_id", str),
        scope=_optional(claims, "scope", str) or "",
        roles=_string_list(claims.get("roles", []), "roles"),
        tenants=MappingProxyType({tenant: _string_list(held, "tenants")
                                  for tenant, held in tenants.items()}),
        expires_at=_instant(claims, "exp"),
        issued_at=_instant(claims, "iat"),
        jti=_optional(claims, "jti", str),
        sid=_optional(claims, "sid", str),
        claims=MappingProxyType(dict(claims)),
    )


@dataclass(frozen=True)
class _Document:
    body: dict
    etag: str | None
    fetched_at: float
    fresh_until: float


@dataclass(frozen=True)
class _KeySet:
    document: _Document
    keys: dict[str, RSAPublicKey]


def _max_age(cache_control: str | None) -> int:
    """RFC 9111 §5.2.2.1; no-store and no-cache count as 0, and 0 as one second."""
    if cache_control is None:
        return DEFAULT_MAX_AGE
    seconds = DEFAULT_MAX_AGE
    for directive in cache_control.lower().split(","):
        name, _, value = directive.strip().partition("=")
        if name in ("no-store", "no-cache"):
            return 1
        if name == "max-age":
            try:
                seconds = int(value.strip().strip('"'))
            except ValueError:
                return 1
    return min(max(seconds, 1), MAX_MAX_AGE)


def _age(age: str | None) -> int:
    """RFC 9111 §5.1: the seconds a response has already spent in caches (a CDN) since
    the IdP made it; absent or not delta-seconds, 0."""
    value = (age or "").strip()
    return int(value) if value.isascii() and value.isdigit() else 0


def _freshness(headers: Mapping[str, str]) -> int:
    """RFC 9111 §4.2: seconds a response stays fresh here, its max-age less its Age
    (§4.2.3), at least one; so a copy served by a CDN expires when the IdP's would."""
    return max(1, _max_age(headers.get("Cache-Control")) - _age(headers.get("Age")))


class _FetchError(Exception):
    pass


def _fetch(session: requests.Session, url: str, timeout: float,
           previous: _Document | None, now: float) -> _Document:
    """GET a JSON object, revalidating ``previous`` with its ETag (304 keeps its body)."""
    headers = {"Accept": "application/json"}
    if previous is not None and previous.etag:
        headers["If-None-Match"] = previous.etag
    try:
        response = session.get(url, headers=headers, timeout=timeout)
    except requests.RequestException as error:
        raise _FetchError(f"{url}: {type(error).__name__}") from None
    fresh_until = now + _freshness(response.headers)
    if response.status_code == 304 and previous is not None:
        return _Document(previous.body, previous.etag, now, fresh_until)
    if response.status_code != 200:
        raise _FetchError(f"{url}: HTTP {response.status_code}")
    try:
        body = response.json()
    except ValueError:
        raise _FetchError(f"{url}: not JSON") from None
    if not isinstance(body, dict):
        raise _FetchError(f"{url}: not a JSON object")
    return _Document(body, response.headers.get("ETag"), now, fresh_until)


def _signing_keys(jwks: dict) -> dict[str, RSAPublicKey]:
    """The RS256 signature keys of a JWK Set, by kid, parsed once per JWKS fetch;
    anything else is ignored."""
    keys: dict[str, RSAPublicKey] = {}
    for jwk in jwks.get("keys", []) if isinstance(jwks.get("keys"), list) else []:
        if (not isinstance(jwk, dict) or jwk.get("kty") != "RSA"
                or not isinstance(jwk.get("kid"), str)
                or jwk.get("use", "sig") != "sig" or jwk.get("alg", ALGORITHM) != ALGORITHM):
            continue
        try:
            key = RSAKey.import_key({name: jwk[name] for name in ("kty", "n", "e", "kid")})
        except (JoseError, ValueError, KeyError, TypeError):
            continue
        if key.public_key.key_size >= MIN_RSA_BITS:
            keys[jwk["kid"]] = key.public_key
    return keys


def _discover(session: requests.Session, issuer: str, endpoint: str, timeout: float,
              previous: _Document | None, now: float) -> _Document:
    """The issuer's discovery document, which must name ``endpoint`` (``jwks_uri``...)."""
    document = _fetch(session, f"{issuer.rstrip('/')}/.well-known/openid-configuration",
                      timeout, previous, now)
    # OpenID Connect Discovery 1.0 §4.3: the document must name the issuer we asked
    if document.body.get("issuer") != issuer:
        raise _FetchError("discovery names another issuer")
    url = document.body.get(endpoint)
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        raise _FetchError(f"discovery has no {endpoint}")
    return document


class Verifier:
    """Verifies tokens for one issuer and audience. Thread-safe; build one per process.

    :param issuer: the IdP's issuer URL, exactly as in its tokens (no trailing slash)
    :param audience: the ``aud`` this service accepts
    :param leeway: seconds of clock skew allowed on ``exp``, ``nbf`` and ``iat``, at most
        ``rfc9068.LEEWAY_SECONDS`` (30): revocations are kept that long past a token's expiry
    :param unknown_kid_interval: least seconds between two JWKS fetches caused by an unknown kid
    :param retry_interval: least seconds between fetches after a failed one
    :param stale_if_error: seconds an expired JWKS still serves while the IdP cannot be
        reached (and, for its known kids, while another thread is refetching it)
    :param timeout: seconds for each HTTP request to the IdP
    :param revocation: optional ``RevocationCheck`` consulted for every access token
    :param introspection: optional ``Introspector`` for ``ic_live_`` API keys
    :param introspect_access_tokens: also ask ``introspection`` whether each (locally
        verified) access token is still active: revocation through the IdP, for services
        that cannot reach its Redis
    :param session: a ``requests.Session`` to use (TLS settings, proxies); one of its own otherwise
    """

    def __init__(self, issuer: str, audience: str, *, leeway: int = rfc9068.LEEWAY_SECONDS,
                 unknown_kid_interval: float = 60.0, retry_interval: float = 5.0,
                 stale_if_error: float = 3600.0, timeout: float = 5.0,
                 revocation: RevocationCheck | None = None,
                 introspection: Introspector | None = None,
                 introspect_access_tokens: bool = False,
                 session: requests.Session | None = None):
        if introspect_access_tokens and introspection is None:
            raise ValueError("introspect_access_tokens needs an introspection client")
        if not 0 <= leeway <= rfc9068.LEEWAY_SECONDS:
            # the IdP keeps a revocation that long past the expiry it covers, no longer
            raise ValueError(f"leeway must be 0 to {rfc9068.LEEWAY_SECONDS} seconds")
        self.issuer = issuer
        self.audience = audience
        self.leeway = leeway
        self.unknown_kid_interval = unknown_kid_interval
        self.retry_interval = retry_interval
        self.stale_if_error = stale_if_error
        self.timeout = timeout
        self.revocation = revocation
        self.introspection = introspection
        self.introspect_access_tokens = introspect_access_tokens
        self._session = session or requests.Session()
        self._lock = threading.Lock()
        self._discovery: _Document | None = None
        self._jwks: _KeySet | None = None
        self._retry_at = 0.0
        self._tokens = rs256.RS256Tokens(rfc9068.ACCESS_TOKEN_TYPES)

    # -- the public API ---------------------------------------------------------------

    def verify(self, token: str, *, client_ip: str | None = None) -> Principal:
        """The caller behind ``token`` (an access token or an ``ic_live_`` API key).

        ``client_ip`` is passed to introspection for an API key's ``allowed_ips``.
        Raises ``InvalidToken`` or ``VerifierUnavailable``.
        """
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise InvalidToken("no token, or too long")
        if token.startswith(API_KEY_PREFIX):
            return self.verify_api_key(token, client_ip=client_ip)
        return self.verify_access_token(token)

    def verify_access_token(self, token: str) -> Principal:
        """An RS256 ``at+jwt`` access token of this issuer and audience, checked as above."""
        try:
            claims = self._tokens.claims(token, self._key)
        except rs256.Refused as refused:
            raise InvalidToken(refused.reason) from None
        try:
            rfc9068.check_claims(claims, issuer=self.issuer, audience=self.audience,
                                 now=time.time(), leeway=self.leeway)
        except rfc9068.InvalidClaims as error:
            raise InvalidToken(f"claims: {error.reason}") from None
        principal = _principal(claims, ACCESS_TOKEN)
        if self.revocation is not None:
            if not self._ask("revocation check", self.revocation, principal.claims):
                raise InvalidToken("revoked")
        if self.introspect_access_tokens:
            # the caller's address plays no part for an access token: leave it out
            if not _active(self._ask("introspection", self.introspection, token, None)):
                raise InvalidToken("inactive at introspection (revoked)")
        return principal

    def verify_api_key(self, token: str, *, client_ip: str | None = None) -> Principal:
        """An opaque ``ic_live_`` key, through the configured ``Introspector``; one that
        cannot be a key of ours (``idp.api_key_format``) is refused without asking."""
        if not looks_like_api_key(token):
            raise InvalidToken("not the shape of an API key")
        if self.introspection is None:
            raise InvalidToken("API keys need an introspector")
        answer = self._ask("introspection", self.introspection, token, client_ip)
        if not _active(answer):
            raise InvalidToken("inactive API key")
        if answer.get("token_type", API_KEY) != API_KEY:
            raise InvalidToken("introspection answered for another kind of token")
        expires_at = answer.get("exp")
        if rfc9068.is_number(expires_at) and expires_at <= time.time() - self.leeway:
            raise InvalidToken("expired API key")
        return _principal(answer, API_KEY)

    def refresh(self) -> None:
        """Fetch discovery and the JWKS now (at start-up, to fail early)."""
        with self._lock:
            self._retry_at = 0.0
            self._refresh(time.time())
            if self._retry_at:
                raise VerifierUnavailable("discovery or the JWKS cannot be fetched")

    # -- hooks ------------------------------------------------------------------------

    @staticmethod
    def _ask(what: str, hook, *args):
        try:
            return hook(*args)
        except VerificationError:
            raise
        except Exception as error:  # noqa: BLE001 - whatever broke, refuse rather than accept
            raise VerifierUnavailable(f"{what} failed: {type(error).__name__}") from error

    # -- discovery and keys -----------------------------------------------------------

    def _key(self, kid: str) -> RSAPublicKey:
        jwks, now = self._jwks, time.time()
        known = jwks is not None and kid in jwks.keys
        if known and now < jwks.document.fresh_until:
            return jwks.keys[kid]
        if known and now < jwks.document.fresh_until + self.stale_if_error:
            # stale but usable: one thread refetches, the others go on with the cached key
            # rather than queue behind a slow IdP
            if not self._lock.acquire(blocking=False):
                return jwks.keys[kid]
        else:
            self._lock.acquire()
        try:
            now = time.time()
            jwks = self._jwks
            stale = jwks is None or now >= jwks.document.fresh_until
            unknown = (jwks is not None and kid not in jwks.keys
                       and now - jwks.document.fetched_at >= self.unknown_kid_interval)
            if (stale or unknown) and now >= self._retry_at:
                self._refresh(now)
                jwks = self._jwks
        finally:
            self._lock.release()
        if jwks is None or now >= jwks.document.fresh_until + self.stale_if_error:
            raise VerifierUnavailable("no usable JWKS")
        if kid not in jwks.keys:
            if now >= jwks.document.fresh_until:
                # stale and not refetched: the token may be signed by a key we could not fetch
                raise VerifierUnavailable("unknown kid, and the JWKS cannot be refetched")
            raise InvalidToken("unknown kid")
        return jwks.keys[kid]

    def _refresh(self, now: float) -> None:
        """Refetch discovery (when stale) and the JWKS; on failure keep what is cached."""
        try:
            discovery = self._discovery
            if discovery is None or now >= discovery.fresh_until:
                try:
                    discovery = self._discovery = _discover(
                        self._session, self.issuer, "jwks_uri", self.timeout, discovery, now)
                except _FetchError:
                    if discovery is None:
                        raise
            previous = self._jwks
            document = _fetch(self._session, discovery.body["jwks_uri"], self.timeout,
                              previous.document if previous else None, now)
            unchanged = previous is not None and document.body is previous.document.body
            self._jwks = _KeySet(document, previous.keys if unchanged else
                                 _signing_keys(document.body))
        except _FetchError as error:
            self._retry_at = now + self.retry_interval
            log.warning("could not refresh the keys of %s: %s", self.issuer, error)
