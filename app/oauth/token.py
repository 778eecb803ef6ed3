"""``POST /oauth/token`` (RFC 6749 §3.2): Authlib dispatches to our grants."""

from __future__ import annotations

from flask import Blueprint

from ..extensions import services

bp = Blueprint("oauth_token", __name__, url_prefix="/oauth")


@bp.post("/token")
def token():
    return services().authorization.create_token_response()
