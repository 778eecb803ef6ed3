"""``GET /api/v1/auth/sso/saml/metadata``: our SAML service provider's metadata.

The browser's SSO endpoints are pages (``app/web/sso.py``); this one is for IdP admins and
their tools, so it answers errors in the envelope (503 when xmlsec1 is missing).
"""

from __future__ import annotations

from flask import Blueprint, Response

from ..extensions import services
from ..sso import SSO_PATH

bp = Blueprint("api_sso", __name__, url_prefix=SSO_PATH)


@bp.get("/saml/metadata")
def saml_metadata():
    response = Response(services().sso.metadata(), mimetype="application/samlmetadata+xml")
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response
