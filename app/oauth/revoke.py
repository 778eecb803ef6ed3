"""``POST /oauth/revoke`` (RFC 7009)."""

from __future__ import annotations

from flask import Blueprint

from ..extensions import services

bp = Blueprint("oauth_revoke", __name__, url_prefix="/oauth")


@bp.post("/revoke")
def revoke():
    return services().authorization.create_endpoint_response("revocation")
