"""Authorization server metadata (RFC 8414) and OpenID Provider metadata (OIDC Discovery 1.0).

Built from what the authorization server has registered, so it lists only what works.
"""

from __future__ import annotations

from .clients import AUTH_METHODS, CONFIDENTIAL_AUTH_METHODS
from .grants.pkce import S256
from .id_tokens import ID_TOKEN_CLAIMS
from .rfc9068 import ALGORITHM
from .userinfo import SCOPE_CLAIMS


# metadata name -> path; the app's blueprints serve each of these
ENDPOINTS = {
    "jwks_uri": "/.well-known/jwks.json",
    "authorization_endpoint": "/oauth/authorize",
    "token_endpoint": "/oauth/token",
    "revocation_endpoint": "/oauth/revoke",
    "introspection_endpoint": "/oauth/introspect",
    "userinfo_endpoint": "/oauth/userinfo",
    "end_session_endpoint": "/oauth/logout",
}


def metadata(issuer: str, server) -> dict:
    """The whole document; grant and response types come from what the server registered."""
    user_claims = [claim for claims in SCOPE_CLAIMS.values() for claim in claims]
    doc = {"issuer": issuer}
    doc.update({name: f"{issuer}{path}" for name, path in ENDPOINTS.items()})
    doc.update({
        "grant_types_supported": server.grant_types_supported(),
        "response_types_supported": server.response_types_supported(),
        "response_modes_supported": ["query"],
        "scopes_supported": list(server.scopes_supported),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(CONFIDENTIAL_AUTH_METHODS),
        "code_challenge_methods_supported": [S256],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "access_token_signing_alg_values_supported": [ALGORITHM],
        # OIDC Discovery §3: what a relying party can receive, in the ID token or from
        # userinfo; the access token's own claims (roles, tenants, ...) are for resource
        # servers, which read them from the token (RFC 9068)
        "claims_supported": list(dict.fromkeys([*ID_TOKEN_CLAIMS, *user_claims])),
        # RFC 9207: every authorization response carries iss
        "authorization_response_iss_parameter_supported": True,
        # OIDC Discovery defaults request_uri_parameter_supported to true; we support none
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    })
    return doc
