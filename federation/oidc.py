"""OpenID Connect upstreams: one connector; Okta and Azure AD are configurations of it.

The relying-party side of the authorization code flow (OpenID Connect Core 1.0 §3.1) with
PKCE S256 (RFC 7636), checked against the upstream's own metadata (OpenID Connect
Discovery 1.0 §4) and JWKS. The connector keeps no request state: ``login`` returns what
the server must keep single-use under ``state``, and ``handle_callback`` gets it back.
Discovery and JWKS are cached per connector, so the server builds one connector per
connection and process and reuses it.
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

import requests
from authlib.integrations.base_client import OAuthError
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jws, jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from federation.config import OIDCConfig, url_problem
from federation.connector import (ConnectorError, Identity, LoginStart, UpstreamUnavailable,
                                  checked_subject, group_names, optional_text)
from idp.rfc9068 import is_number

# Fixed by us, never taken from the token or the upstream: no "none", no HS* (RFC 8725 §3.1).
ALLOWED_ALGORITHMS = {"RS256": RSAKey, "ES256": ECKey}
LEEWAY_SECONDS = 60
TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
MAX_SUBJECT_LENGTH = 255  # OIDC Core §2: sub

UNREACHABLE = "The identity provider could not be reached. Try again later."
BAD_RESPONSE = "The identity provider sent an invalid response. Try again later."
DENIED = "Sign-in was cancelled or denied at the identity provider."
FAILED = "The identity provider could not complete the sign-in."
NOT_VERIFIED = "The sign-in could not be verified."


class OIDCConnector:
    """A ``CallbackConnector`` for one upstream OpenID Connect provider."""

    def __init__(self, config: OIDCConfig, *, timeout: float = 5.0,
                 metadata_ttl: float = 3600, jwks_ttl: float = 900,
                 jwks_refetch_interval: float = 30,
                 clock: Callable[[], float] = time.time):
        self.config = config
        self.timeout = timeout
        self.metadata_ttl = metadata_ttl
        self.jwks_ttl = jwks_ttl
        self.jwks_refetch_interval = jwks_refetch_interval
        self.clock = clock
        self._lock = threading.Lock()
        self._metadata: Metadata | None = None
        self._metadata_at = 0.0
        self._keys: list | None = None
        self._keys_at = 0.0

    # -- the connector contract ---------------------------------------------------------

    def login(self, callback_url: str, state: str, *, force_authn: bool = False,
              max_age: int | None = None) -> LoginStart:
        """The upstream authorization URL (OIDC Core §3.1.2.1) and what to keep until the callback.

        ``state`` is the server's own unguessable value; ``callback_url`` must be the one
        registered upstream, and the same one given to ``handle_callback``. ``force_authn``
        sends ``prompt=login`` and ``max_age`` sends ``max_age``, so that the upstream's own
        session does not stand in for the fresh sign-in a relying party asked us for.
        """
        if not state:
            raise ValueError("login needs the state the server will look the login up by")
        metadata = self.metadata()
        nonce = secrets.token_urlsafe(32)
        code_verifier = secrets.token_urlsafe(48)  # 64 characters, RFC 7636 §4.1
        fresh, saved = {}, {"nonce": nonce, "code_verifier": code_verifier}
        if force_authn:
            fresh["prompt"] = "login"
            saved["login_at"] = int(self.clock())  # the sign-in must come after this
        if max_age is not None:
            fresh["max_age"] = str(max_age)
            saved["max_age"] = max_age
        with self._client(callback_url) as client:
            url, _ = client.create_authorization_url(
                metadata.authorization_endpoint, state=state, code_verifier=code_verifier,
                nonce=nonce, **fresh)
        return LoginStart(url, saved)

    def handle_callback(self, callback_url: str, params: Mapping[str, str],
                        saved: Mapping) -> Identity:
        """Exchange the code and verify the ID token (OIDC Core §3.1.3.7) into an ``Identity``.

        ``params`` is the callback's query; ``saved`` is what ``login`` returned, which the
        server looked up (and consumed) by the callback's ``state``.
        """
        nonce, code_verifier = saved.get("nonce"), saved.get("code_verifier")
        if not (isinstance(nonce, str) and nonce and isinstance(code_verifier, str)):
            raise ConnectorError(NOT_VERIFIED, "saved login state lacks nonce or code_verifier")
        metadata = self.metadata()
        self._check_issuer(params, metadata)
        code = self._authorization_code(params)
        token = self._exchange(metadata, callback_url, code, code_verifier)
        claims = self._verify_id_token(token["id_token"], nonce, token.get("access_token"))
        self._check_freshness(claims, saved.get("max_age"), saved.get("login_at"))
        return identity_from_claims(claims, self.config.subject_claim)

    def _check_freshness(self, claims: Mapping, max_age: object, login_at: object) -> None:
        """OIDC Core §3.1.2.1 and §3.1.3.7 step 13: what we asked the upstream for
        (``max_age``, ``prompt=login``) must show in its ``auth_time``, or our own ID token
        would claim a fresh sign-in the upstream did not make. ``auth_time`` is required
        with ``max_age``; with ``prompt=login`` alone it is checked when sent."""
        auth_time = claims.get("auth_time")
        if auth_time is None:
            if isinstance(max_age, int):
                raise ConnectorError(NOT_VERIFIED, "id_token without the auth_time that "
                                                   "max_age requires")
            return
        # OIDC Core §2: a JSON number of seconds; Authlib lets a falsy value or a bool through
        if not is_number(auth_time):
            raise ConnectorError(NOT_VERIFIED, "id_token auth_time is not a number")
        now = self.clock()
        if isinstance(max_age, int) and auth_time + max_age + LEEWAY_SECONDS < now:
            raise ConnectorError(NOT_VERIFIED, "id_token auth_time is older than the max_age "
                                               "asked for")
        if isinstance(login_at, int) and auth_time + LEEWAY_SECONDS < login_at:
            raise ConnectorError(NOT_VERIFIED, "id_token auth_time is from before the sign-in "
                                               "that prompt=login asked for")

    # -- the authorization response (RFC 6749 §4.1.2) ----------------------------------

    def _check_issuer(self, params: Mapping[str, str], metadata: Metadata) -> None:
        """RFC 9207 §2.4, before anything in the response is believed, an error included: an
        ``iss`` must name the issuer we sent the user to, and an upstream that promises
        ``iss`` must send it (a mix-up attack would bring another upstream's response)."""
        if "iss" in params:
            if params["iss"] != self.config.issuer:
                raise ConnectorError(NOT_VERIFIED,
                                     "authorization response iss does not match issuer")
        elif metadata.iss_parameter_supported:
            raise ConnectorError(NOT_VERIFIED, "authorization response without iss, which "
                                               "the upstream's discovery promises")

    def _authorization_code(self, params: Mapping[str, str]) -> str:
        error = params.get("error")
        if error:
            description = str(params.get("error_description", ""))[:200]
            message = DENIED if error == "access_denied" else FAILED
            raise ConnectorError(message, f"upstream error {str(error)[:64]!r}: {description!r}")
        code = params.get("code")
        if not isinstance(code, str) or not code:
            raise ConnectorError(FAILED, "callback without code or error")
        return code

    # -- the token request (RFC 6749 §4.1.3) ---------------------------------------------

    def _client(self, callback_url: str, auth_method: str | None = None) -> OAuth2Session:
        return OAuth2Session(
            client_id=self.config.client_id, client_secret=self.config.client_secret,
            token_endpoint_auth_method=auth_method, scope=" ".join(self.config.scopes),
            redirect_uri=callback_url, code_challenge_method="S256")

    def _exchange(self, metadata: Metadata, callback_url: str, code: str,
                  code_verifier: str) -> dict:
        with self._client(callback_url, metadata.token_endpoint_auth_method) as client:
            try:
                token = client.fetch_token(
                    metadata.token_endpoint, grant_type="authorization_code", code=code,
                    code_verifier=code_verifier, timeout=self.timeout, allow_redirects=False)
            except OAuthError as error:
                raise ConnectorError(FAILED, f"token endpoint error {error.error!r}") from None
            except requests.RequestException as error:
                raise _unavailable("token endpoint", error) from None
            except (ValueError, TypeError):  # not JSON, or fields of the wrong types
                raise UpstreamUnavailable(BAD_RESPONSE, "token response is malformed") from None
        if not isinstance(token.get("id_token"), str):
            raise UpstreamUnavailable(BAD_RESPONSE, "token response without an id_token")
        return dict(token)

    # -- the ID token (OIDC Core §3.1.3.7) -----------------------------------------------

    def _verify_id_token(self, id_token: str, nonce: str, access_token: object) -> dict:
        try:
            header = jws.extract_compact(id_token.encode()).headers()
        except (JoseError, ValueError):
            header = None
        if not isinstance(header, dict):
            raise ConnectorError(NOT_VERIFIED, "id_token is not a compact JWS")
        alg, kid = header.get("alg"), header.get("kid")
        if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
            raise ConnectorError(NOT_VERIFIED, f"id_token alg {str(alg)[:16]!r} is not allowed")
        if kid is not None and not isinstance(kid, str):
            raise ConnectorError(NOT_VERIFIED, "id_token kid is not a string")
        key = self._signing_key(kid, alg)
        options = {
            "iss": {"essential": True, "value": self.config.issuer},
            "sub": {"essential": True},
            "aud": {"essential": True, "value": self.config.client_id},
            "nonce": {"essential": True, "value": nonce},
        }
        params = {"nonce": nonce, "client_id": self.config.client_id}
        if isinstance(access_token, str):
            params["access_token"] = access_token  # checks at_hash when present
        # CodeIDToken also wants azp == client_id when there are several audiences (§2)
        try:
            token = jwt.decode(id_token, key, algorithms=[alg])
            claims = CodeIDToken(token.claims, token.header, options, params)
            claims.validate(now=int(self.clock()), leeway=LEEWAY_SECONDS)
        except JoseError as error:
            claim = getattr(error, "claim", None)
            detail = f" ({claim})" if claim else ""
            raise ConnectorError(NOT_VERIFIED, f"id_token rejected{detail}: {error}") from None
        except (ValueError, TypeError):  # claims of types the checks do not expect
            raise ConnectorError(NOT_VERIFIED, "id_token claims are malformed") from None
        return dict(claims)

    def _signing_key(self, kid: str | None, alg: str):
        key = find_key(self._jwks(), kid, alg)
        if key is None and self._may_refetch_jwks():
            key = find_key(self._jwks(force=True), kid, alg)
        if key is None:
            raise ConnectorError(NOT_VERIFIED, f"id_token signed by an unknown key {kid!r}")
        return key

    # -- discovery and JWKS, cached -------------------------------------------------------

    def metadata(self) -> Metadata:
        """The upstream's discovery document, validated (OIDC Discovery §4.3), cached.

        Fetches happen under the connector's lock: concurrent logins wait for one fetch.
        """
        with self._lock:
            if self._metadata is None or self.clock() - self._metadata_at >= self.metadata_ttl:
                url = self.config.issuer + "/.well-known/openid-configuration"
                self._metadata = validate_metadata(get_json(url, "discovery", self.timeout),
                                                   self.config)
                self._metadata_at = self.clock()
            return self._metadata

    def _jwks(self, force: bool = False) -> list:
        jwks_uri = self.metadata().jwks_uri
        with self._lock:
            if force or self._keys is None or self.clock() - self._keys_at >= self.jwks_ttl:
                self._keys = parse_jwks(get_json(jwks_uri, "jwks", self.timeout))
                self._keys_at = self.clock()
            return self._keys

    def _may_refetch_jwks(self) -> bool:
        """An unknown kid refetches the JWKS, at most once per ``jwks_refetch_interval``."""
        return self.clock() - self._keys_at >= self.jwks_refetch_interval


def get_json(url: str, what: str, timeout: float) -> object:
    """GET a JSON document; every failure is ``UpstreamUnavailable`` with a safe message."""
    try:
        response = requests.get(url, timeout=timeout, allow_redirects=False,
                                headers={"Accept": "application/json"})
    except requests.RequestException as error:
        raise _unavailable(what, error) from None
    if response.status_code != 200:
        raise UpstreamUnavailable(BAD_RESPONSE, f"{what}: HTTP {response.status_code}")
    try:
        return response.json()
    except ValueError:
        raise UpstreamUnavailable(BAD_RESPONSE, f"{what}: not JSON") from None


def _unavailable(what: str, error: requests.RequestException) -> UpstreamUnavailable:
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return UpstreamUnavailable(BAD_RESPONSE, f"{what}: HTTP {error.response.status_code}")
    return UpstreamUnavailable(UNREACHABLE, f"{what}: {type(error).__name__}")


@dataclass(frozen=True)
class Metadata:
    """What the connector uses of an upstream's discovery document (OIDC Discovery §3)."""

    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    # how we authenticate at the token endpoint, chosen once from what the upstream supports
    token_endpoint_auth_method: str
    # RFC 9207 §3: the upstream names itself (iss) in every authorization response
    iss_parameter_supported: bool = False


def validate_metadata(document: object, config: OIDCConfig) -> Metadata:
    """The discovery fields we use, checked: the issuer must be ours exactly (Discovery §4.3)."""
    if not isinstance(document, dict):
        raise UpstreamUnavailable(BAD_RESPONSE, "discovery is not a JSON object")
    if document.get("issuer") != config.issuer:
        raise UpstreamUnavailable(
            BAD_RESPONSE, f"discovery issuer {document.get('issuer')!r:.200} "
                          f"is not the configured {config.issuer!r}")
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        problem = (url_problem(value, config.allow_http) if isinstance(value, str)
                   else "is missing or not a string")
        if problem:
            raise UpstreamUnavailable(BAD_RESPONSE, f"discovery {name} {problem}")
    # RFC 8414 §2: when the list is omitted, the default is client_secret_basic
    methods = document.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
    if not isinstance(methods, list) or not all(isinstance(m, str) for m in methods):
        raise UpstreamUnavailable(BAD_RESPONSE, "discovery token_endpoint_auth_methods_supported "
                                                "is not a list of strings")
    # client_secret_basic unless the upstream supports only client_secret_post; none of
    # ours fails at login, not after the user signed in
    auth_method = next((method for method in TOKEN_ENDPOINT_AUTH_METHODS if method in methods),
                       None)
    if auth_method is None:
        raise UpstreamUnavailable(FAILED, f"no usable token endpoint auth method in {methods!r}")
    return Metadata(authorization_endpoint=document["authorization_endpoint"],
                    token_endpoint=document["token_endpoint"], jwks_uri=document["jwks_uri"],
                    token_endpoint_auth_method=auth_method,
                    iss_parameter_supported=document.get(
                        "authorization_response_iss_parameter_supported") is True)


def parse_jwks(document: object) -> list:
    """The signing keys of a JWKS (RFC 7517 §5); keys we cannot use are skipped."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise UpstreamUnavailable(BAD_RESPONSE, "jwks is not a JSON Web Key Set")
    keys = []
    for entry in document["keys"]:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        for key_class in ALLOWED_ALGORITHMS.values():
            if entry.get("kty") == key_class.key_type:
                try:
                    keys.append(key_class.import_key(entry))
                except (JoseError, ValueError, TypeError):
                    pass
    return keys


def find_key(keys: list, kid: str | None, alg: str):
    """The key for a token's ``kid`` and ``alg``; without a kid, the only key that fits."""
    fits = [key for key in keys
            if isinstance(key, ALLOWED_ALGORITHMS[alg]) and key.alg in (None, alg)]
    if kid is None:
        return fits[0] if len(fits) == 1 else None
    return next((key for key in fits if key.kid == kid), None)


def identity_from_claims(claims: Mapping, subject_claim: str = "sub") -> Identity:
    """Standard claims (OIDC Core §5.1) to an ``Identity`` whose subject is ``subject_claim``
    (``sub``; Azure AD's ``oid``). The subject is at most 255 ASCII characters (§2 for
    ``sub``): another, or none, is refused; an optional claim that is not a printable string
    of a sane length is dropped. A missing ``email_verified`` (usual with Azure AD) means
    not verified."""
    groups = claims.get("groups", [])
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise ConnectorError(NOT_VERIFIED, "groups claim is not a list of strings")
    former = claims.get("sub") if subject_claim != "sub" else None
    return Identity(
        subject=checked_subject(claims.get(subject_claim), MAX_SUBJECT_LENGTH, NOT_VERIFIED,
                                name=f"{subject_claim} claim", ascii_only=True),
        # sub keyed Azure AD links before oid did (sub was checked with the ID token)
        former_subject=former if isinstance(former, str) and former else None,
        email=optional_text(claims.get("email")),
        email_verified=claims.get("email_verified") is True,
        name=optional_text(claims.get("name")),
        username=optional_text(claims.get("preferred_username")),
        groups=group_names(groups),
    )
