"""Authorization server metadata (RFC 8414) and OpenID Provider metadata (OIDC Discovery 1.0).

Built from what the authorization server has registered, so it lists only what works.
"""

from __future__ import annotations

from keys.manager import ALGORITHM

from .clients import AUTH_METHODS
from .tokens import ACCESS_TOKEN_CLAIMS


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
