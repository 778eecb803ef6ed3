"""``POST /oauth/introspect`` (RFC 7662), for resource servers."""

from __future__ import annotations

from flask import Blueprint

from ..extensions import services

bp = Blueprint("oauth_introspect", __name__, url_prefix="/oauth")


@bp.post("/introspect")
def introspect():
    response = services().authorization.create_endpoint_response("introspection")
    response.headers["Cache-Control"] = "no-store"
    return response
