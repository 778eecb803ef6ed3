"""Rendering the JWK Set (RFC 7517 §5): public members only, with a strong ETag."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from .manager import ACTIVE, NEXT, KeyRecord

_ORDER = {ACTIVE: 0, NEXT: 1}


@dataclass(frozen=True)
class JwksDocument:
    body: bytes
    etag: str


def render_jwks(records: list[KeyRecord]) -> JwksDocument:
    """The JWKS body and its ETag; the order is stable so the ETag only moves with the keys."""
    ordered = sorted(records, key=lambda r: (_ORDER.get(r.state, 2), r.created_at, r.kid))
    keys = [dict(record.public_jwk) for record in ordered]
    body = json.dumps({"keys": keys}, separators=(",", ":"), sort_keys=True).encode()
    return JwksDocument(body=body, etag=strong_etag(body))


def strong_etag(body: bytes) -> str:
    """An ETag that changes exactly when the body does (RFC 9110 §8.8.3)."""
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
