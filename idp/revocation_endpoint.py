"""Token revocation (RFC 7009) for refresh tokens and JWT access tokens.

Authlib's endpoint authenticates the client and answers 200 for unknown tokens (§2.2); we
find the token, check it was issued to that client, and revoke it: a refresh token ends
its whole family (§2.1 allows, and rotation demands, it); an access token goes on the
``jti`` denylist until it would have expired.
"""

from __future__ import annotations

from dataclasses import dataclass

from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint

from .clients import AUTH_METHODS
from .errors import Unauthorized
from .oauth_request import check_token_parameters
from .refresh import Family


@dataclass(frozen=True)
class _AccessTokenRef:
    claims: dict

    def check_client(self, client) -> bool:
        return self.claims.get("client_id") == client.get_client_id()


@dataclass(frozen=True)
class _RefreshTokenRef:
    family: Family

    def check_client(self, client) -> bool:
        return self.family.client_id == client.get_client_id()


class RevocationEndpoint(_RevocationEndpoint):
    CLIENT_AUTH_METHODS = list(AUTH_METHODS)

    def check_params(self, request, client):
        check_token_parameters(request)

    def query_token(self, token_string, token_type_hint):
        finders = [self._access_token, self._refresh_token]
        if token_type_hint == "refresh_token":
            finders.reverse()
        for find in finders:
            found = find(token_string)
            if found is not None:
                return found
        return None

    def _access_token(self, token: str):
        try:
            return _AccessTokenRef(self.server.validator.verify(token))
        except Unauthorized:
            return None  # not ours, malformed or already expired: nothing to revoke

    def _refresh_token(self, token: str):
        family = self.server.tokens.families.find(token)
        return None if family is None else _RefreshTokenRef(family)

    def revoke_token(self, token, request):
        if isinstance(token, _RefreshTokenRef):
            self.server.tokens.end_family(token.family.id)
        else:
            self.server.tokens.revoke_access_token(token.claims)
