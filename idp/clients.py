"""Registered OAuth clients as Authlib sees them (``ClientMixin``), free of the ORM."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import SplitResult, urlsplit

from authlib.oauth2.rfc6749 import ClientMixin
from authlib.oauth2.rfc6749.util import list_to_scope, scope_to_list
from authlib.oidc.core.grants.util import is_openid_scope

from .hashing import SecretHasher

PUBLIC = "none"
# the token endpoint auth methods (RFC 7591 §2); the confidential ones present a secret
CONFIDENTIAL_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
AUTH_METHODS = (*CONFIDENTIAL_AUTH_METHODS, PUBLIC)

# what a client_id may look like; anything else names no client
CLIENT_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{3,64}$")

# the loopback IP literals a native app's redirect URI may use with any port (RFC 8252 §7.3);
# not "localhost", which §8.3 says is NOT RECOMMENDED
LOOPBACK_IPS = ("127.0.0.1", "::1")

# RFC 6749 §3.1.2: a redirection URI has no fragment, even an empty one; RFC 3986 §2: no URI
# holds whitespace or a control character (urlsplit drops \t, \r and \n: it would parse
# another URI than the one given)
_NOT_IN_A_REDIRECT_URI = re.compile(r"[#\s\x00-\x1f\x7f-\x9f]")

# The seed's own login endpoints (/api/v1/auth/*) act as this built-in public client.
API_CLIENT_ID = "infracast"


@dataclass(frozen=True)
class RegisteredClient(ClientMixin):
    client_id: str
    client_name: str
    token_endpoint_auth_method: str
    secret_hash: str | None = field(default=None, repr=False)
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    grant_types: tuple[str, ...] = ()
    response_types: tuple[str, ...] = ()
    scope: str = ""
    first_party: bool = True
    tenant_permissions: dict = field(default_factory=dict)
    resource_server: bool = False
    hasher: SecretHasher | None = field(default=None, repr=False, compare=False)

    @property
    def is_public(self) -> bool:
        return self.token_endpoint_auth_method == PUBLIC

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        # only unambiguous when exactly one is registered (RFC 6749 §3.1.2.3)
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    @property
    def client_metadata(self) -> dict:
        """RFC 7591 / OIDC registration metadata Authlib reads (RP-Initiated Logout)."""
        return {"post_logout_redirect_uris": list(self.post_logout_redirect_uris)}

    def get_allowed_scope(self, scope):
        """The scope to grant for the requested ``scope``, or None (``invalid_scope``).

        The one scope rule of both endpoints: no scope asked for is the registered one (RFC
        6749 §3.3 allows a default); otherwise every requested value must be registered for
        the client, as asked, never silently narrowed. Authlib answers None with
        ``invalid_scope`` at the authorization endpoint, the token grants in ``resolve_scope``.
        """
        if not scope:
            return self.scope
        requested = scope_to_list(scope)
        if not set(requested) <= set(scope_to_list(self.scope)):
            return None
        return list_to_scope(requested)

    def check_redirect_uri(self, redirect_uri):
        """Exact match (RFC 9700 §4.1.3), but for the port of a loopback IP redirect URI: "the
        authorization server MUST allow any port to be specified at the time of the request"
        (RFC 8252 §7.3). The token request's redirect_uri is compared with the authorization
        request's, not with this (RFC 6749 §4.1.3), so a code stays bound to its port."""
        if redirect_uri in self.redirect_uris:
            return True
        requested = _loopback_without_port(redirect_uri)
        return requested is not None and any(
            _loopback_without_port(registered) == requested for registered in self.redirect_uris)

    def redirect_uri_for(self, requested: str | None, scope: str | None) -> str | None:
        """Where an authorization response may go: the requested URI if registered; without
        one, the client's single registered URI (RFC 6749 §3.1.2.3), but never for OpenID
        Connect, which requires it (Core §3.1.2.1); None when nowhere."""
        if requested:
            return requested if self.check_redirect_uri(requested) else None
        if is_openid_scope(scope):
            return None
        return self.get_default_redirect_uri()

    def check_client_secret(self, client_secret):
        return self.hasher is not None and self.hasher.matches(client_secret, self.secret_hash)

    def check_endpoint_auth_method(self, method, endpoint):
        return method == self.token_endpoint_auth_method

    def check_response_type(self, response_type):
        return response_type in self.response_types

    def check_grant_type(self, grant_type):
        return grant_type in self.grant_types


def redirect_uri_parts(uri: str) -> SplitResult | None:
    """``uri`` split, or None when it cannot be a redirection URI: a fragment, whitespace or
    a control character, a host or a port that does not parse."""
    if _NOT_IN_A_REDIRECT_URI.search(uri):
        return None
    try:
        parts = urlsplit(uri)
        parts.port  # raises ValueError for a port that is not a number from 0 to 65535
    except ValueError:
        return None
    return parts


def _loopback_without_port(uri: str) -> tuple | None:
    """An http redirect URI on a loopback IP literal as all its parts but the port, else None."""
    parts = redirect_uri_parts(uri)
    if parts is None or parts.scheme != "http" or parts.hostname not in LOOPBACK_IPS:
        return None
    return parts.username, parts.password, parts.hostname, parts.path, parts.query


class ClientDirectory(Protocol):
    def find(self, client_id: str) -> RegisteredClient | None: ...


def api_client() -> RegisteredClient:
    return RegisteredClient(
        client_id=API_CLIENT_ID,
        client_name="Infracast API login",
        token_endpoint_auth_method=PUBLIC,
        grant_types=("password", "refresh_token"),
        scope="profile email offline_access",
    )
