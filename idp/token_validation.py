"""Is this access token still good? One answer for every place that checks our tokens.

Signature by our own key (chosen by ``kid``; the algorithm is fixed to RS256 by the key,
never taken from the header), then the RFC 9068 header and claim rules of ``idp.rfc9068``
(the same ones resource servers apply through ``idp.verifier``), then the revocation list
in one Redis round trip (fails closed).
"""

from __future__ import annotations

import json

from joserfc import jws
from joserfc.errors import JoseError

from keys.keyring import Keyring

from . import rfc9068
from .clock import now
from .errors import Unauthorized
from .revocation import RevocationList

LEEWAY_SECONDS = 30


class AccessTokenValidator:
    def __init__(self, keyring: Keyring, revocations: RevocationList, issuer: str,
                 audience: str, clock=now):
        self.keyring = keyring
        self.revocations = revocations
        self.issuer = issuer
        self.audience = audience
        self.clock = clock

    def verify(self, token: str) -> dict:
        """Claims of a well-formed, correctly signed, current token of ours; else Unauthorized.

        Revocation is not consulted here; ``validate`` does both.
        """
        claims = signed_claims(self.keyring, token, rfc9068.ACCESS_TOKEN_TYPES)
        if claims is None:
            raise Unauthorized()
        try:
            rfc9068.check_claims(claims, issuer=self.issuer, audience=self.audience,
                                 now=self.clock(), leeway=LEEWAY_SECONDS)
        except rfc9068.InvalidClaims:
            raise Unauthorized() from None
        return claims

    def validate(self, token: str) -> dict:
        """Claims of a token that is ours, current and not revoked; else Unauthorized."""
        claims = self.verify(token)
        if self.revocations.is_revoked(claims):
            raise Unauthorized()
        return claims


def signed_claims(keyring: Keyring, token, types: frozenset[str]) -> dict | None:
    """Claims of a compact JWT signed by one of our published keys (chosen by ``kid``; RS256,
    fixed by the key, never taken from the header) whose header ``typ`` is one of ``types``
    (lower case; compared case-insensitively, as media types are); else None.

    Only the signature and the header are checked; the caller checks the claims.
    """
    if not isinstance(token, str) or not token or len(token) > rfc9068.MAX_TOKEN_LENGTH \
            or token.count(".") != 2:
        return None
    try:
        compact = jws.extract_compact(token.encode())  # parsed once: header, then signature
        header = compact.protected
        typ = header.get("typ")
        if header.get("alg") != rfc9068.ALGORITHM or not isinstance(typ, str) \
                or typ.lower() not in types:
            return None
        key = keyring.verification_key(str(header.get("kid", "")))
        if key is None or not jws.validate_compact(compact, key, algorithms=[rfc9068.ALGORITHM]):
            return None
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None
