"""Client credentials grant (RFC 6749 §4.4): a confidential client acting for itself.

The client is the subject (``sub`` = ``client_id``) and its token carries the tenants and
permissions it was registered with (``tenant_permissions``); no refresh token (§4.4.3).
Public clients cannot use it: they have no credentials to present.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749 import grants

from ..clients import CONFIDENTIAL_AUTH_METHODS
from .base import TokenGrantMixin


class ClientCredentialsGrant(TokenGrantMixin, grants.ClientCredentialsGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = list(CONFIDENTIAL_AUTH_METHODS)

    def validate_token_request(self):
        super().validate_token_request()  # authenticates the client, checks the grant type
        self.request.requested_scope = self.resolve_scope(self.request.client)

    def create_token_response(self):
        response = self.server.tokens.issue_for_client(
            self.client, self.request.requested_scope, tenant=self.requested_tenant())
        return 200, response.oauth(), self.TOKEN_RESPONSE_HEADER
