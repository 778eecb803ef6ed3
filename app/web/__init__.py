"""Pages the IdP shows people in a browser: authorize, login, consent, logout.

They share one blueprint so the error handler answers them with HTML pages (or the
RFC 6749 §4.1.2.1 redirect) instead of JSON, and so every page gets the same headers.
"""

from __future__ import annotations

from flask import Blueprint, current_app, request
from werkzeug.exceptions import MethodNotAllowed

from ..errors import page_form

bp = Blueprint("web", __name__)


@bp.before_request
def _refuse_head_and_options():
    """Flask answers HEAD with the GET view, and nearly every GET here spends single-use
    state or changes a session: it issues a code, answers a waiting request, ends a
    session, takes an SSO state. A link checker's or mail scanner's HEAD would spend what
    the user's own GET then finds gone, so no page answers HEAD (405), and a new page
    cannot forget to. Nor OPTIONS, which Flask answers with HEAD among the methods: a page
    is for a browser's navigation, never for a script's cross-origin preflight."""
    if request.method in ("HEAD", "OPTIONS"):
        # every method of the URL, not only of this view's rule (GET and POST of a page);
        # answered, with its Allow, as a routing 405 of a page is (app/errors.py)
        methods = current_app.url_map.bind_to_environ(request.environ).allowed_methods()
        raise MethodNotAllowed(valid_methods=methods)
    return None


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


def _page_headers(response):
    """On the app, not the blueprint: a page's URL asked with a method it does not answer
    (405) fails in routing, before any blueprint, and is still answered as a page."""
    if not page_form():
        return response
    for name, value in _HEADERS.items():
        response.headers.setdefault(name, value)
    if response.status_code == 401:
        # a 401 must name a challenge (RFC 9110 §15.5.2): Bearer, the contract's under
        # /api/v1 (the SSO pages) and harmless on the others; browsers prompt for none but
        # Basic and its kin
        response.headers.setdefault("WWW-Authenticate", "Bearer")
    return response


def register(app) -> None:
    from . import authorize, logout, sso  # noqa: F401  (their routes join the blueprint)
    from .session import init_session_cookie

    app.register_blueprint(bp)
    app.after_request(_page_headers)
    init_session_cookie(app)
