"""Refresh token grant (RFC 6749 §6) with rotation and reuse detection (``idp/refresh.py``).

Authlib's base class looks the token up, then issues, then revokes the old one: three
steps a racing request can slip between. Here the whole exchange is one atomic rotation.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError

from ..clients import AUTH_METHODS
from .base import TokenGrantMixin


class RefreshTokenGrant(TokenGrantMixin, grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def validate_token_request(self):
        # client authentication and the client's right to this grant (Authlib)
        self.request.client = self._validate_request_client()
        if not self.request.form.get("refresh_token"):
            raise InvalidRequestError("'refresh_token' is required")
        scope = self.request.payload.scope
        if scope:
            self.server.validate_requested_scope(scope)

    def create_token_response(self):
        response = self.server.tokens.refresh(
            self.request.form["refresh_token"], self.client, self.request.payload.scope)
        return 200, response.oauth(), self.TOKEN_RESPONSE_HEADER
