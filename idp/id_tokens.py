"""ID tokens (OpenID Connect Core 1.0 §2, §3.1.3.6).

Header ``{"alg": "RS256", "typ": "JWT", "kid"}`` — never ``at+jwt``, so an ID token is not
accepted where an access token is due, nor the other way round. Claims ``iss sub aud exp iat
auth_time azp`` plus ``nonce`` when the request had one, ``at_hash`` (the left half of the
SHA-256 of the access token, §3.1.3.6) and the user's claims for the granted scope.
"""

from __future__ import annotations

from authlib.oidc.core.util import create_half_hash
from joserfc import jwt

from keys.keyring import Keyring

from .accounts import Account
from .clock import now
from .errors import InvalidRequest
from .rfc9068 import ALGORITHM
from .token_validation import SignedTokens
from .userinfo import user_claims

ID_TOKEN_TYP = "JWT"
ID_TOKEN_TYPES = frozenset({ID_TOKEN_TYP.lower()})  # compared case-insensitively
ID_TOKEN_CLAIMS = ("iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp")


class IdTokenIssuer:
    def __init__(self, keyring: Keyring, issuer: str, ttl: int, clock=now):
        self.keyring = keyring
        self.hints = SignedTokens(keyring, ID_TOKEN_TYPES)
        self.issuer = issuer
        self.ttl = ttl
        self.clock = clock

    def issue(self, account: Account, *, client_id: str, scope: str, auth_time: float,
              nonce: str | None = None, access_token: str | None = None) -> str:
        issued_at = int(self.clock())
        claims = user_claims(account, scope)
        claims.update({
            "iss": self.issuer,
            "aud": client_id,
            "exp": issued_at + self.ttl,
            "iat": issued_at,
            "auth_time": int(auth_time),
            "azp": client_id,
        })
        if nonce:
            claims["nonce"] = nonce
        if access_token:
            claims["at_hash"] = create_half_hash(access_token, ALGORITHM).decode()
        key = self.keyring.signing_key()
        header = {"alg": ALGORITHM, "typ": ID_TOKEN_TYP, "kid": key.kid}
        return jwt.encode(header, claims, key.key)

    def verify_hint(self, token: str) -> dict:
        """Claims of an ID token we issued, for ``id_token_hint`` (RP-Initiated Logout §2).

        Signature by one of our published keys, ``typ`` JWT and our ``iss``; an expired
        token is accepted, as the spec asks for a hint from a recent session.
        """
        claims = self.hints.claims(token)
        if claims is None or claims.get("iss") != self.issuer or not claims.get("sub") \
                or not claims.get("aud"):
            raise InvalidRequest("'id_token_hint' is not an ID token issued here")
        return claims
