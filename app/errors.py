"""One place that turns every failure into a response.

Under ``/oauth`` errors take RFC 6749 §5.2 form (``{"error", "error_description"}``), as
relying parties expect; everywhere else the envelope of contract §2
(``{"error": {"code", "message"}}``). Only our own safe messages reach a body; an
unexpected exception is logged by type and place and answered with a bare 500.
"""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException

from sqlalchemy.exc import InterfaceError, OperationalError

from idp.errors import IdpError, Unavailable

log = logging.getLogger("infracast.errors")

_HTTP_CODES = {
    400: ("INVALID_REQUEST", "invalid_request", "Invalid request"),
    401: ("UNAUTHORIZED", "invalid_client", "Invalid or expired token"),
    403: ("FORBIDDEN", "access_denied", "Insufficient permissions"),
    404: ("NOT_FOUND", "invalid_request", "Not found"),
    405: ("INVALID_REQUEST", "invalid_request", "Method not allowed"),
    409: ("CONFLICT", "invalid_request", "Conflict"),
    413: ("INVALID_REQUEST", "invalid_request", "Request body too large (at most 64 KiB)"),
    415: ("INVALID_REQUEST", "invalid_request", "Unsupported media type"),
    429: ("RATE_LIMITED", "slow_down", "Too many requests"),
    503: ("UNAVAILABLE", "temporarily_unavailable", "Service temporarily unavailable"),
}
_INTERNAL = ("INTERNAL", "server_error", "Internal server error")


def oauth_form() -> bool:
    return request.path.startswith("/oauth/")


def error_response(status: int, code: str, oauth_error: str, message: str,
                   retry_after: int | None = None, headers: dict | None = None):
    if oauth_form():
        body = {"error": oauth_error, "error_description": message}
    else:
        body = {"error": {"code": code, "message": message}}
    response = jsonify(body)
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401:
        response.headers.setdefault("WWW-Authenticate", 'Bearer error="invalid_token"'
                                    if code == "UNAUTHORIZED" else "Bearer")
    if retry_after is not None:
        response.headers["Retry-After"] = str(max(1, int(retry_after)))
    return response


def handle_idp_error(error: IdpError):
    status = error.oauth_status if oauth_form() and error.oauth_status else error.status
    return error_response(status, error.code, error.oauth_error, error.message,
                          retry_after=error.retry_after)


def handle_http_exception(error: HTTPException):
    status = error.code or 500
    code, oauth_error, message = _HTTP_CODES.get(status, _INTERNAL if status >= 500 else
                                                 ("INVALID_REQUEST", "invalid_request",
                                                  "Invalid request"))
    headers = {}
    if status == 405 and getattr(error, "valid_methods", None):
        headers["Allow"] = ", ".join(error.valid_methods)
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


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(IdpError, handle_idp_error)
    app.register_error_handler(OperationalError, handle_database_down)
    app.register_error_handler(InterfaceError, handle_database_down)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
