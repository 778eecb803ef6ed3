"""Pages the IdP shows people in a browser: authorize, login, consent, logout.

They share one blueprint so the error handler answers them with HTML pages (or the
RFC 6749 §4.1.2.1 redirect) instead of JSON, and so every page gets the same headers.
"""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("web", __name__)

# a page renders nothing from elsewhere: no scripts, inline styles only, never framed
_HEADERS = {
    "Cache-Control": "no-store",
    "Pragma": "no-cache",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@bp.after_request
def _page_headers(response):
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def register(app) -> None:
    from . import authorize, logout, sso  # noqa: F401  (their routes join the blueprint)
    from .session import init_session_cookie

    app.register_blueprint(bp)
    init_session_cookie(app)
