"""Compact JWS signed with RS256: the one shape every token we sign takes.

The IdP (``idp.token_validation``: access tokens and ID token hints) and resource servers
(``idp.verifier``) check tokens with this, on every request. It follows RFC 7515 §5.2
for the one algorithm our keys fix, RS256 (RFC 7518 §3.3: RSASSA-PKCS1-v1_5 with SHA-256
over the ASCII ``header.payload``); ``cryptography`` checks the signature. It is written
out rather than going through joserfc's general path because that path (a registry built per call, key guessing, an algorithm lookup, each
token's header parsed afresh although all of a key's tokens carry the same one) cost a
third of the signature check itself (docs/benchmarks.md).

The algorithm is never taken from the header: ``alg`` must say RS256, and the key is
found by ``kid`` among our own. A header with a ``crit`` extension is refused (RFC 7515
§4.1.11: we understand none).
"""

from __future__ import annotations

import binascii
import json
from typing import Callable

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey
from cryptography.hazmat.primitives.hashes import SHA256

from .rfc9068 import ALGORITHM, MAX_TOKEN_LENGTH

__all__ = ["Refused", "RS256Tokens"]

_PKCS1, _SHA256 = PKCS1v15(), SHA256()
# more header spellings than our keys make between two restarts; when full, it starts over
MAX_REMEMBERED_HEADERS = 64
# ours are about 120 characters; joserfc's limit, and a bound on what an unverified header
# can make the JSON parser do (deep nesting)
MAX_HEADER_SEGMENT = 512


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
# the last character of a segment that ends mid-byte must leave no stray bits set
_LAST_WHEN_PADDED = {1: b"AEIMQUYcgkosw048", 2: b"AQgw"}


def base64url_decode(segment: bytes) -> bytes:
    """RFC 7515 §2: base64url without padding, decoded strictly and canonically, so that
    a token has exactly one spelling: no padding, no line breaks or other characters, no
    standard-alphabet ``+``/``/``, no stray bits. The same verdicts as joserfc's
    ``urlsafe_b64decode``, with the checking done in C by ``binascii`` (joserfc's runs a
    regular expression over the segment and cost twice as much). Raises ``ValueError``.
    """
    padding = -len(segment) % 4
    if padding == 3 or b"+" in segment or b"/" in segment or b"=" in segment:
        raise ValueError("not base64url")
    if padding and segment[-1] not in _LAST_WHEN_PADDED[padding]:
        raise ValueError("not canonical base64url")
    return binascii.a2b_base64(segment.translate(_FROM_URLSAFE) + b"=" * padding,
                               strict_mode=True)


class Refused(ValueError):
    """Not a token of ours; ``reason`` is for logs, never for the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class RS256Tokens:
    """Checks compact JWS tokens signed RS256 whose header ``typ`` is one of ``types``
    (lower case; compared case-insensitively, as media types are). Thread-safe.

    Every token a key signs carries the same header, so a header is parsed once: its exact
    bytes are remembered, with its kid, once a signature over them has verified (never
    before, so a flood of made-up headers leaves nothing behind).
    """

    def __init__(self, types: frozenset[str]):
        self.types = types
        self._verified_headers: dict[bytes, str] = {}

    def claims(self, token: str, key_for: Callable[[str], RSAPublicKey | None]) -> dict:
        """The claims of ``token`` once its signature verifies with ``key_for(kid)``; the
        caller checks them. Raises ``Refused`` (and whatever ``key_for`` raises)."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            raise Refused("not a token, or too long")
        try:
            header_segment, payload_segment, signature_segment = token.encode("ascii").split(b".")
            payload = base64url_decode(payload_segment)
            signature = base64url_decode(signature_segment)
        except (ValueError, UnicodeError):  # binascii.Error is a ValueError
            raise Refused("not a compact JWS") from None
        kid = self._verified_headers.get(header_segment) or self._kid_of(header_segment)
        key = key_for(kid)
        if key is None:
            raise Refused("unknown kid")
        try:
            key.verify(signature, header_segment + b"." + payload_segment, _PKCS1, _SHA256)
        except InvalidSignature:
            raise Refused("bad signature") from None
        if header_segment not in self._verified_headers:
            if len(self._verified_headers) >= MAX_REMEMBERED_HEADERS:
                self._verified_headers.clear()  # keys rotated many times: start over
            self._verified_headers[header_segment] = kid
        try:
            claims = json.loads(payload)
        except (ValueError, RecursionError):  # as the header: only our own signature gets here
            raise Refused("the payload is not JSON") from None
        if not isinstance(claims, dict):
            raise Refused("the payload is not a JSON object")
        return claims

    def _kid_of(self, header_segment: bytes) -> str:
        if len(header_segment) > MAX_HEADER_SEGMENT:
            raise Refused("the header is too long")
        try:
            header = json.loads(base64url_decode(header_segment))
        except (ValueError, RecursionError):
            raise Refused("not a compact JWS") from None
        if not isinstance(header, dict):
            raise Refused("the header is not a JSON object")
        typ, kid = header.get("typ"), header.get("kid")
        if not isinstance(typ, str) or typ.lower() not in self.types:
            raise Refused("typ is not one we accept here")
        if header.get("alg") != ALGORITHM:
            raise Refused("alg is not RS256")
        if not isinstance(kid, str) or not kid:
            raise Refused("no kid")
        if "crit" in header:
            raise Refused("a critical header extension")
        return kid
