"""JWT access tokens (RFC 9068): the rules every place that accepts one of ours applies.

``idp.verifier`` (in resource servers) and ``idp.token_validation`` (in the IdP: userinfo,
introspection, the API) both check an access token with these; the module imports nothing
but the standard library, so a resource server gets it without the IdP's app.

Where the two used to disagree, the stricter rule that every token we issue still passes:

- **alg**: ``RS256`` (``ALGORITHM``), fixed by our keys and never taken from the header.
- **typ**: ``at+jwt`` (RFC 9068 §2.1), or the full media type ``application/at+jwt``
  (RFC 9068 §4, RFC 7515 §4.1.9), compared case-insensitively as media types are. An ID
  token (``JWT``) is not an access token.
- **length**: at most ``MAX_TOKEN_LENGTH`` (8192) characters. Ours are a small fraction of
  that, and common HTTP servers (gunicorn, nginx) refuse a header field over about 8 KiB
  before the application sees it, so a longer token could not have come through anyway.
- **iss** is the issuer; **aud** the audience or a list holding it (RFC 7519 §4.1.3).
- **exp** and **iat** are required (RFC 9068 §2.2), **nbf** optional; each a finite number
  (a bool, NaN or infinity is not an instant). A token is expired once
  ``exp + leeway <= now`` (RFC 7519 §4.1.4: the current time must be *before* exp);
  ``iat`` and ``nbf`` may be at most ``leeway`` seconds in the future.
- **sub**, **client_id** and **jti** are required non-empty strings (RFC 9068 §2.2).

``check_claims`` raises ``InvalidClaims``; each caller maps it to its own refusal (401).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

__all__ = ["ALGORITHM", "TYP", "ACCESS_TOKEN_TYPES", "MAX_TOKEN_LENGTH", "LEEWAY_SECONDS",
           "InvalidClaims", "is_number", "audience_matches", "check_claims"]

ALGORITHM = "RS256"
TYP = "at+jwt"
# RFC 9068 §4: "at+jwt", or the full media type; lower case (compare lowered values)
ACCESS_TOKEN_TYPES = frozenset({TYP, "application/" + TYP})
MAX_TOKEN_LENGTH = 8192
# The most clock skew a checker may allow on exp, iat and nbf. A revocation is kept this
# long past the expiry it covers (idp.revocation): a token accepted up to exp + leeway must
# stay refused as long, so no checker may allow more.
LEEWAY_SECONDS = 30
# RFC 9068 §2.2: every access token carries these as non-empty strings
_REQUIRED_STRINGS = ("sub", "client_id", "jti")


class InvalidClaims(ValueError):
    """The claims break a rule above; ``reason`` is for logs, never for the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def is_number(value: Any) -> bool:
    """A JSON number that can be an instant: an int, or a finite float; never a bool."""
    if isinstance(value, bool):
        return False
    # an int of any size is finite (and math.isfinite would overflow on a huge one)
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def audience_matches(aud: Any, audience: str) -> bool:
    """RFC 7519 §4.1.3: ``aud`` is the audience, or a list that holds it."""
    return aud == audience or (isinstance(aud, list) and audience in aud)


def check_claims(claims: Mapping[str, Any], *, issuer: str, audience: str, now: float,
                 leeway: float) -> None:
    """RFC 7519 §4.1 and RFC 9068 §2.2: ours, for ``audience``, current at ``now`` (with
    ``leeway`` seconds of clock skew), and naming who and what. Raises ``InvalidClaims``.

    A handful of comparisons, written out: resource servers run this on every request,
    and a general claims registry costs more than the signature check.
    """
    if claims.get("iss") != issuer:
        raise InvalidClaims("iss is not the issuer")
    if not audience_matches(claims.get("aud"), audience):
        raise InvalidClaims("aud is not this audience")
    exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
    if not is_number(exp) or exp + leeway <= now:
        raise InvalidClaims("expired, or no exp")
    if not is_number(iat) or iat - leeway > now:
        raise InvalidClaims("issued in the future, or no iat")
    if nbf is not None and (not is_number(nbf) or nbf - leeway > now):
        raise InvalidClaims("not valid yet")
    for name in _REQUIRED_STRINGS:
        value = claims.get(name)
        if not isinstance(value, str) or not value:
            raise InvalidClaims(f"no {name}")
