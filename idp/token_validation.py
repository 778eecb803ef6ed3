"""Is this access token still good? One answer for every place that checks our tokens.

Signature and header by ``idp.rs256`` (our own key, chosen by ``kid``; RS256, fixed by the
key, never taken from the header), then the RFC 9068 claim rules of ``idp.rfc9068`` (resource
servers apply both through ``idp.verifier``), then the revocation list in one Redis round
trip (fails closed).
"""

from __future__ import annotations

from keys.keyring import Keyring

from . import rfc9068
from .clock import now
from .errors import Unauthorized
from .revocation import RevocationList
from .rs256 import Refused, RS256Tokens


class AccessTokenValidator:
    def __init__(self, keyring: Keyring, revocations: RevocationList, issuer: str,
                 audience: str, clock=now):
        self.tokens = SignedTokens(keyring, rfc9068.ACCESS_TOKEN_TYPES)
        self.revocations = revocations
        self.issuer = issuer
        self.audience = audience
        self.clock = clock

    def verify(self, token: str, *, exact_expiry: bool = False) -> dict:
        """Claims of a well-formed, correctly signed, current token of ours; else Unauthorized.

        ``exact_expiry``: no clock-skew allowance past ``exp``, for the issuer's own answer
        about its token (introspection, RFC 7662 §2.2); ``iat`` and ``nbf`` keep it, as another
        host of ours may have issued the token a moment ahead of this one's clock.
        Revocation is not consulted here; ``validate`` does both.
        """
        claims = self.tokens.claims(token)
        if claims is None:
            raise Unauthorized()
        now = self.clock()
        try:
            rfc9068.check_claims(claims, issuer=self.issuer, audience=self.audience,
                                 now=now, leeway=rfc9068.LEEWAY_SECONDS)
        except rfc9068.InvalidClaims:
            raise Unauthorized() from None
        if exact_expiry and claims["exp"] <= now:
            raise Unauthorized()
        return claims

    def validate(self, token: str, *, exact_expiry: bool = False) -> dict:
        """Claims of a token that is ours, current and not revoked; else Unauthorized."""
        claims = self.verify(token, exact_expiry=exact_expiry)
        if self.revocations.is_revoked(claims):
            raise Unauthorized()
        return claims


class SignedTokens:
    """Claims of compact JWTs signed by one of our published keys (chosen by ``kid``; RS256,
    fixed by the key, never taken from the header) whose header ``typ`` is one of ``types``.

    Only the signature and the header are checked; the caller checks the claims.
    """

    def __init__(self, keyring: Keyring, types: frozenset[str]):
        self.keyring = keyring
        self._tokens = RS256Tokens(types)

    def claims(self, token) -> dict | None:
        """The claims, or None for anything that is not such a token."""
        try:
            return self._tokens.claims(token, self._public_key)
        except Refused:
            return None

    def _public_key(self, kid: str):
        key = self.keyring.verification_key(kid)
        return None if key is None else key.public_key
