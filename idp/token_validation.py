"""Is this access token still good? One answer for every place that checks our tokens.

Signature by our own key (chosen by ``kid``; the algorithm is fixed to RS256 by the key,
never taken from the header), ``typ`` ``at+jwt``, ``iss``, ``aud``, ``exp``/``nbf``, then the
revocation list in one Redis round trip (fails closed).
"""

from __future__ import annotations

import json

from joserfc import jws
from joserfc.errors import JoseError

from keys.keyring import Keyring
from keys.manager import ALGORITHM

from .clock import now
from .errors import Unauthorized
from .revocation import RevocationList
from .tokens import ACCESS_TOKEN_TYP

LEEWAY_SECONDS = 30
_MAX_TOKEN_LENGTH = 8192


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
        claims = signed_claims(self.keyring, token, ACCESS_TOKEN_TYP)
        if claims is None:
            raise Unauthorized()
        now = self.clock()
        if claims.get("iss") != self.issuer or not _audience_matches(claims.get("aud"), self.audience):
            raise Unauthorized()
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(exp, (int, float)) or exp + LEEWAY_SECONDS <= now:
            raise Unauthorized()
        if isinstance(nbf, (int, float)) and nbf - LEEWAY_SECONDS > now:
            raise Unauthorized()
        if not claims.get("sub") or not claims.get("jti"):
            raise Unauthorized()
        return claims

    def validate(self, token: str) -> dict:
        """Claims of a token that is ours, current and not revoked; else Unauthorized."""
        claims = self.verify(token)
        if self.revocations.is_revoked(claims):
            raise Unauthorized()
        return claims


def signed_claims(keyring: Keyring, token, typ: str) -> dict | None:
    """Claims of a compact JWT signed by one of our published keys (chosen by ``kid``; RS256,
    fixed by the key, never taken from the header) whose header ``typ`` is ``typ``; else None.

    Only the signature and the header are checked; the caller checks the claims.
    """
    if not isinstance(token, str) or not token or len(token) > _MAX_TOKEN_LENGTH \
            or token.count(".") != 2:
        return None
    try:
        compact = jws.extract_compact(token.encode())  # parsed once: header, then signature
        header = compact.protected
        if header.get("alg") != ALGORITHM or header.get("typ") != typ:
            return None
        key = keyring.verification_key(str(header.get("kid", "")))
        if key is None or not jws.validate_compact(compact, key, algorithms=[ALGORITHM]):
            return None
        claims = json.loads(compact.payload)
    except (JoseError, ValueError, TypeError):
        return None
    return claims if isinstance(claims, dict) else None


def _audience_matches(aud, expected: str) -> bool:
    return aud == expected or (isinstance(aud, list) and expected in aud)
