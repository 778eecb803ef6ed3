"""Token introspection (RFC 7662) for resource servers: JWT access tokens and API keys.

Only confidential clients registered as resource servers may ask. An access token is
active when it is ours, current and not revoked (the one validator); an API key when it
is unrevoked, unexpired, its creator still stands behind it, and the caller-supplied
``client_ip`` is inside its ``allowed_ips``. Anything else is ``{"active": false}`` and
nothing more (§2.2).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone

from authlib.oauth2.rfc6749.errors import UnauthorizedClientError
from authlib.oauth2.rfc7662 import IntrospectionEndpoint as _IntrospectionEndpoint

from . import api_keys
from .api_key_format import looks_like_api_key
from .clients import CONFIDENTIAL_AUTH_METHODS
from .clock import now
from .errors import Unauthorized
from .oauth_request import check_token_parameters

ACCESS_TOKEN_FIELDS = ("sub", "client_id", "exp", "iat", "scope", "tenants", "iss", "aud", "jti",
                       "sid", "roles")


@dataclass(frozen=True)
class _Introspected:
    payload: dict

    def is_expired(self) -> bool:
        return False  # checked before this object exists

    def is_revoked(self) -> bool:
        return False


class IntrospectionEndpoint(_IntrospectionEndpoint):
    CLIENT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)

    def check_params(self, request, client):
        check_token_parameters(request)

    def authenticate_endpoint_client(self, request):
        client = super().authenticate_endpoint_client(request)
        if not getattr(client, "resource_server", False):
            raise UnauthorizedClientError("Only resource servers may introspect tokens")
        return client

    def authenticate_token(self, request, client):
        self.check_params(request, client)
        token = request.form["token"]
        if looks_like_api_key(token):
            client_ip = (request.form.get("client_ip") or "").strip() or None
            return self._api_key(token, client_ip)
        return self._access_token(token)

    def _access_token(self, token: str):
        try:
            claims = self.server.validator.validate(token, exact_expiry=True)
        except Unauthorized:
            return None
        payload = {"active": True, "token_type": "Bearer"}
        payload.update({name: claims[name] for name in ACCESS_TOKEN_FIELDS if name in claims})
        return _Introspected(payload)

    def _api_key(self, secret: str, client_ip: str | None):
        moment = datetime.fromtimestamp(now(), timezone.utc)
        directory = self.server.api_keys
        record = directory.find_by_secret_digest(self.server.secret_digest(secret), moment)
        creator = None if record is None else self.server.tokens.accounts.find_by_id(record.created_by)
        payload = api_keys.introspection(record, creator, client_ip, moment)
        if payload is None:
            return None
        directory.mark_used(record, moment)
        return _Introspected(payload)

    def introspect_token(self, token):
        return dict(token.payload)
