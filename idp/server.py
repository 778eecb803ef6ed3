"""The OAuth 2.0 authorization server: Authlib's Flask server with our grants.

Authlib does the protocol (request parsing, client authentication, grant dispatch, RFC
6749 §5.2 errors); our grants call the one ``TokenService``. Access tokens are JWTs
nobody stores, so ``save_token`` has nothing to do.
"""

from __future__ import annotations

from typing import Callable

from authlib.integrations.flask_oauth2 import AuthorizationServer as FlaskAuthorizationServer

from .api_keys import ApiKeyDirectory
from .clients import ClientDirectory
from .grants.password import PasswordGrant
from .grants.refresh_token import RefreshTokenGrant
from .hashing import SecretHasher
from .introspection_endpoint import IntrospectionEndpoint
from .revocation_endpoint import RevocationEndpoint
from .token_service import TokenService
from .token_validation import AccessTokenValidator

SCOPES_SUPPORTED = ["openid", "profile", "email", "offline_access"]


class AuthorizationServer(FlaskAuthorizationServer):
    def __init__(self, clients: ClientDirectory, tokens: TokenService,
                 validator: AccessTokenValidator, api_keys: ApiKeyDirectory,
                 secrets: SecretHasher, client_ip: Callable[[], str]):
        super().__init__(query_client=clients.find, save_token=_tokens_are_not_stored)
        self.scopes_supported = SCOPES_SUPPORTED
        self.tokens = tokens
        self.validator = validator
        self.api_keys = api_keys
        self.secret_digest = secrets.digest
        self.client_ip = client_ip
        # metadata name -> path, filled in by the app as it mounts each endpoint
        self.published_endpoints: dict[str, str] = {}
        # further discovery members contributed by extensions (OIDC, PKCE, ...)
        self.extra_metadata: dict = {}
        self.register_grant(PasswordGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(RevocationEndpoint)
        self.register_endpoint(IntrospectionEndpoint)

    def grant_types_supported(self) -> list[str]:
        return sorted({grant.GRANT_TYPE for grant, _ in self._token_grants})

    def response_types_supported(self) -> list[str]:
        return sorted({rt for grant, _ in self._authorization_grants
                       for rt in getattr(grant, "RESPONSE_TYPES", ())})


def _tokens_are_not_stored(token, request):
    return None
