"""``GET|POST /oauth/userinfo`` (OpenID Connect Core 1.0 §5.3): claims by the token's scope."""

from __future__ import annotations

from flask import Blueprint, jsonify

from ..api.bearer import bearer_token
from ..extensions import services

bp = Blueprint("oauth_userinfo", __name__, url_prefix="/oauth")


@bp.route("/userinfo", methods=["GET", "POST"])
def userinfo():
    response = jsonify(services().userinfo.claims_for(bearer_token()))
    response.headers["Cache-Control"] = "no-store"
    return response
