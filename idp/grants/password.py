"""Resource owner password credentials grant (RFC 6749 §4.3)."""

from __future__ import annotations

from authlib.oauth2.rfc6749 import grants
from authlib.oauth2.rfc6749.errors import InvalidRequestError, UnauthorizedClientError

from ..clients import AUTH_METHODS
from .base import TokenGrantMixin


class PasswordGrant(TokenGrantMixin, grants.ResourceOwnerPasswordCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(AUTH_METHODS)

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("The client may not use the password grant")
        form = self.request.form
        username, password = form.get("username"), form.get("password")
        if not username or password is None:
            raise InvalidRequestError("'username' and 'password' are required")
        self.request.client = client
        self.request.requested_scope = self.resolve_scope(client)
        # Authlib's own authenticate_user returns None on failure; ours raises the one
        # uniform InvalidCredentials (an invalid_grant), after the brute-force checks.
        self.request.user = self.server.tokens.authenticate_password(
            username, password, self.server.client_ip())

    def create_token_response(self):
        response = self.server.tokens.issue_for_account(
            self.request.user, self.client, self.request.requested_scope,
            tenant=self.requested_tenant(),
            # a refresh token for every client registered for the refresh_token grant
            with_refresh=self.client.check_grant_type("refresh_token"))
        return 200, response.oauth(), self.TOKEN_RESPONSE_HEADER
