"""One place that turns every failure into a response.

Three forms, chosen by where the request went:

* the IdP's pages (``app/web``: authorize, login, consent, logout) answer people in a
  browser: an HTML page, or — for an authorization error that knows the client's
  registered ``redirect_uri`` — a redirect there with RFC 6749 §4.1.2.1 parameters
  (``error``, ``error_description``, ``state``, and RFC 9207 ``iss``);
* under ``/oauth`` errors take RFC 6749 §5.2 form (``{"error", "error_description"}``), as
  relying parties expect;
* everywhere else the envelope of contract §2 (``{"error": {"code", "message"}}``).

Only our own safe messages (and Authlib's fixed descriptions) reach a body; an unexpected
exception is logged by type and place and answered with a bare 500.
"""

from __future__ import annotations

import logging

from authlib.oauth2.base import OAuth2Error
from flask import (Flask, current_app, jsonify, make_response, redirect, render_template,
                   request)
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from idp.errors import IdpError, Unavailable
from keys.keyring import SigningKeyUnavailable

from .api.bearer import bearer_credentials
from .extensions import db, services
from .request_bodies import too_large_message

log = logging.getLogger("infracast.errors")

_HTTP_CODES = {
    400: ("INVALID_REQUEST", "invalid_request", "Invalid request"),
    401: ("UNAUTHORIZED", "invalid_client", "Invalid or expired token"),
    403: ("FORBIDDEN", "access_denied", "Insufficient permissions"),
    404: ("NOT_FOUND", "invalid_request", "Not found"),
    405: ("INVALID_REQUEST", "invalid_request", "Method not allowed"),
    409: ("CONFLICT", "invalid_request", "Conflict"),
    413: ("INVALID_REQUEST", "invalid_request", "Request body too large"),  # too_large_message
    415: ("INVALID_REQUEST", "invalid_request", "Unsupported media type"),
    429: ("RATE_LIMITED", "slow_down", "Too many requests"),
    503: ("UNAVAILABLE", "temporarily_unavailable", "Service temporarily unavailable"),
}
_INTERNAL = ("INTERNAL", "server_error", "Internal server error")


# Authlib's error codes in the envelope (the seed's code exchange under /api/v1)
_OAUTH_TO_ENVELOPE = {
    "invalid_client": (401, "UNAUTHORIZED"),
    "invalid_grant": (401, "UNAUTHORIZED"),
    "access_denied": (403, "FORBIDDEN"),
    "temporarily_unavailable": (503, "UNAVAILABLE"),
}
_PAGE_TITLES = {400: "This request cannot be completed", 401: "Sign-in failed",
                403: "Access denied", 404: "Not found", 405: "Not allowed",
                429: "Too many attempts", 503: "Temporarily unavailable"}


def page_form() -> bool:
    if request.url_rule is None:  # routing failed: a page's URL with another method (405)?
        return _page_url()
    return request.blueprint == "web"


def _page_url() -> bool:
    try:  # a Host that is no host name (BadHost) fails here, as it failed routing
        adapter = current_app.url_map.bind_to_environ(request.environ)
    except HTTPException:
        return False
    for method in ("GET", "POST"):  # every page answers one of these
        try:
            endpoint, _ = adapter.match(method=method)
        except HTTPException:
            continue
        return endpoint.startswith("web.")
    return False


def _page_allow(methods) -> str:
    """The ``Allow`` of a page's 405: no page answers HEAD or OPTIONS (app/web/__init__.py)."""
    return ", ".join(sorted(set(methods) - {"HEAD", "OPTIONS"}))


def oauth_form() -> bool:
    return not page_form() and request.path.startswith("/oauth/")


def error_page(status: int, message: str, retry_after: int | None = None):
    page = render_template("error.html", title=_PAGE_TITLES.get(status, "Something went wrong"),
                           message=message, retry_after=retry_after)
    response = make_response(page, status)
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, int(retry_after)))
    return response


def error_response(status: int, code: str, oauth_error: str, message: str,
                   retry_after: int | None = None, headers: dict | None = None):
    if page_form():
        response = error_page(status, message, retry_after)
        response.headers.update(headers or {})
        return response
    if oauth_form():
        body = {"error": oauth_error, "error_description": message}
    else:
        body = {"error": {"code": code, "message": message}}
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    # RFC 6750 §3.1: an error code only for a bearer token that was sent; a request without
    # one (or with another scheme) gets the bare challenge
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer error="invalid_token"'
                                    if code == "UNAUTHORIZED" and bearer_credentials() is not None else "Bearer")
    if oauth_error == "insufficient_scope" or (status == 403 and bearer_credentials() is not None):
        response.headers["WWW-Authenticate"] = 'Bearer error="insufficient_scope"'
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, int(retry_after)))
    return response


def handle_idp_error(error: IdpError):
    status = error.oauth_status if oauth_form() and error.oauth_status else error.status
    return error_response(status, error.code, error.oauth_error, error.message,
                          retry_after=error.retry_after)


def handle_oauth2_error(error: OAuth2Error):
    """Authlib's protocol errors that reach the app (the authorization endpoint's pipeline,
    the seed's code exchange); the token endpoint answers its own."""
    description = error.get_error_description() or error.error
    if page_form():
        if error.redirect_uri:
            location = services().authorization.authorization_error_location(error)
            return redirect(location, code=303 if request.method == "POST" else 302)
        return error_page(400, description)
    if oauth_form():
        status = error.status_code or 400
        return error_response(status, "INVALID_REQUEST", error.error, description)
    status, code = _OAUTH_TO_ENVELOPE.get(error.error, (400, "INVALID_REQUEST"))
    return error_response(status, code, error.error, description)


def handle_data_error(error: DataError):
    """Input the database cannot hold (a NUL character, say) is a bad request, not a 500."""
    db.session.rollback()
    log.warning("input refused by the database", extra={"fields": {
        "exception": type(error.orig).__name__}})
    return error_response(400, *_HTTP_CODES[400])


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    code, oauth_error, message = _HTTP_CODES.get(status, _INTERNAL if status >= 500 else
                                                 ("INVALID_REQUEST", "invalid_request",
                                                  "Invalid request"))
    headers = {}
    if status == 405 and getattr(error, "valid_methods", None):
        methods = error.valid_methods
        headers["Allow"] = _page_allow(methods) if page_form() else ", ".join(methods)
    if status == 413:
        message = too_large_message(error)
    return error_response(status, code, oauth_error, message, headers=headers)


def handle_unexpected(error: Exception):
    # type and place only: messages and tracebacks can carry secrets or SQL parameters
    frame = error.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    where = (f"{frame.tb_frame.f_code.co_filename}:{frame.tb_lineno}" if frame else "?")
    log.error("unhandled exception", extra={"fields": {
        "exception": type(error).__name__, "where": where}})
    return error_response(500, *_INTERNAL)


def handle_database_down(error: Exception):
    # the database is unreachable or dropped the connection: fail closed, like Redis
    log.error("database unavailable", extra={"fields": {"exception": type(error).__name__}})
    return handle_idp_error(Unavailable())


def handle_signing_key_unavailable(error: SigningKeyUnavailable):
    # the keyring has logged why (the KEK does not open the key): nothing can be signed
    return handle_idp_error(Unavailable())


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(IdpError, handle_idp_error)
    app.register_error_handler(SigningKeyUnavailable, handle_signing_key_unavailable)
    app.register_error_handler(OperationalError, handle_database_down)
    app.register_error_handler(InterfaceError, handle_database_down)
    app.register_error_handler(OAuth2Error, handle_oauth2_error)
    app.register_error_handler(DataError, handle_data_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
