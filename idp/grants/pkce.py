"""PKCE (RFC 7636) as this server applies it: S256 only, required for public clients.

``plain`` offers no protection when the authorization request itself leaks, so it is
refused (RFC 9700 §2.1.1), and a challenge without a method — which RFC 7636 §4.3 would
read as ``plain`` — is refused too. Public clients must send a challenge with the
authorization request, so the user is never sent through the login page for a request
that cannot succeed; confidential clients may, and when they do the verifier is checked.
"""

from __future__ import annotations

from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc7636 import CodeChallenge

S256 = "S256"


class S256CodeChallenge(CodeChallenge):
    def validate_code_challenge(self, grant, redirect_uri):
        """The one place S256 is enforced: a code is saved, with the method of its
        challenge, only after this check, so the token endpoint verifies with S256."""
        data = grant.request.payload.data
        challenge, method = data.get("code_challenge"), data.get("code_challenge_method")
        if not challenge and not method and grant.request.client.is_public:
            raise InvalidRequestError(
                "PKCE is required: send 'code_challenge' with 'code_challenge_method=S256'")
        if (challenge or method) and method != S256:
            raise InvalidRequestError("'code_challenge_method' must be S256")
        super().validate_code_challenge(grant, redirect_uri)
