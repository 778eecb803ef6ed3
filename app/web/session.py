"""The browser session cookie and CSRF checks for the IdP's pages.

The cookie holds only the session id; the session lives in the store (``idp/sessions.py``).
It is ``HttpOnly``, ``SameSite=Lax`` (sent when a relying party sends the browser to
``/oauth/authorize``, never on another site's POST) and ``Secure`` — with the ``__Host-``
prefix — when the issuer is https. It is a browser-session cookie: it ends when the browser
does, and the store entry ends ``IDP_SESSION_TTL`` after the sign-in.
"""

from __future__ import annotations

from flask import current_app, request

from idp.errors import IdpError
from idp.sessions import BrowserSession

from ..extensions import services

_UNSET = object()


class FormExpired(IdpError):
    """The form's CSRF token does not match the browser session (or it has ended)."""
    status = 400
    message = ("This form has expired or was not sent from this browser. "
               "Go back, reload the page and try again.")


def _secure() -> bool:
    return str(current_app.config["ISSUER"]).startswith("https://")


def cookie_name() -> str:
    return "__Host-idp_session" if _secure() else "idp_session"


# kept on the request itself: an app context (and its ``g``) may outlive one request
_SESSION, _COOKIE = "infracast.browser_session", "infracast.session_cookie"


def browser_session() -> BrowserSession | None:
    """The session named by the request's cookie, if it is still live."""
    if _SESSION not in request.environ:
        request.environ[_SESSION] = services().sessions.find(
            request.cookies.get(cookie_name()))
    return request.environ[_SESSION]


def remember(session: BrowserSession | None) -> None:
    """Make ``session`` the browser's (the cookie is written when the response goes out)."""
    if session is not None and session is not browser_session():
        request.environ[_SESSION] = session
        request.environ[_COOKIE] = session.id


def forget() -> None:
    request.environ[_SESSION] = None
    request.environ[_COOKIE] = None


def require_csrf(session: BrowserSession | None) -> BrowserSession:
    if session is None or not session.check_csrf(request.form.get("csrf_token")):
        raise FormExpired()
    return session


def init_session_cookie(app) -> None:
    @app.after_request
    def _write_cookie(response):
        value = request.environ.get(_COOKIE, _UNSET)
        if value is _UNSET:
            return response
        if value is None:
            response.delete_cookie(cookie_name(), path="/", secure=_secure(), httponly=True,
                                   samesite="Lax")
        else:
            response.set_cookie(cookie_name(), value, path="/", secure=_secure(),
                                httponly=True, samesite="Lax")
        return response
