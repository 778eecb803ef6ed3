"""Discovery and JWKS: public, cacheable, served from memory."""

from __future__ import annotations

import json

from flask import Blueprint, Response, current_app, request

from idp.discovery import metadata
from keys.jwks import strong_etag

from .extensions import services

bp = Blueprint("wellknown", __name__, url_prefix="/.well-known")


def cached_json(body: bytes, etag: str) -> Response:
    """200 with the body, or 304 when the client already holds this ETag (RFC 9110 §13.1.2)."""
    max_age = int(current_app.config["JWKS_MAX_AGE"])
    headers = {"Cache-Control": f"public, max-age={max_age}", "ETag": etag}
    if request.if_none_match.contains_weak(etag.strip('"')):
        return Response(status=304, headers=headers)
    return Response(body, status=200, headers=headers, content_type="application/json")


def _discovery_document() -> tuple[bytes, str]:
    cached = current_app.extensions.get("infracast.discovery")
    if cached is None:
        doc = metadata(str(current_app.config["ISSUER"]), services().authorization)
        body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
        cached = (body, strong_etag(body))
        current_app.extensions["infracast.discovery"] = cached
    return cached


@bp.get("/openid-configuration")
@bp.get("/oauth-authorization-server")
def discovery():
    return cached_json(*_discovery_document())


@bp.get("/jwks.json")
def jwks():
    document = services().keyring.jwks()
    return cached_json(document.body, document.etag)
