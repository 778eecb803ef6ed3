"""Authorization server metadata (RFC 8414) and OpenID Provider metadata (OIDC Discovery 1.0).

Built from what the authorization server has registered, so it lists only what works.
"""

from __future__ import annotations

from keys.manager import ALGORITHM

from .clients import AUTH_METHODS
from .grants.pkce import S256
from .id_tokens import ID_TOKEN_CLAIMS
from .tokens import ACCESS_TOKEN_CLAIMS
from .userinfo import SCOPE_CLAIMS


def metadata(issuer: str, server) -> dict:
    doc = {
        "issuer": issuer,
        "jwks_uri": f"{issuer}/.well-known/jwks.json",
        "token_endpoint": f"{issuer}/oauth/token",
        "grant_types_supported": server.grant_types_supported(),
        "response_types_supported": server.response_types_supported(),
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "scopes_supported": list(server.scopes_supported),
        "access_token_signing_alg_values_supported": [ALGORITHM],
        "claims_supported": list(ACCESS_TOKEN_CLAIMS),
    }
    for name, path in sorted(server.published_endpoints.items()):
        doc[name] = f"{issuer}{path}"
    doc.update(server.extra_metadata)
    return doc


def oidc_metadata() -> dict:
    """What the code flow, ID tokens, userinfo and logout add (OIDC Discovery 1.0 §3)."""
    user_claims = [claim for claims in SCOPE_CLAIMS.values() for claim in claims]
    return {
        "response_modes_supported": ["query"],
        "code_challenge_methods_supported": [S256],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [ALGORITHM],
        "claims_supported": list(dict.fromkeys(
            [*ID_TOKEN_CLAIMS, *user_claims, *ACCESS_TOKEN_CLAIMS])),
        # RFC 9207: every authorization response carries iss
        "authorization_response_iss_parameter_supported": True,
        # OIDC Discovery defaults request_uri_parameter_supported to true; we support none
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
