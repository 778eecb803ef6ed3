"""JSON logs: one line per request, with a request id also sent back as ``X-Request-Id``.

Nothing secret is logged: the request line is the method and the path only (a query
string can carry a code or a state), and no header or body is ever written.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from datetime import datetime, timezone

from flask import Flask, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-Id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")

log = logging.getLogger("infracast.request")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            line["request_id"] = g.request_id
        line.update(getattr(record, "fields", {}))
        return json.dumps(line, separators=(",", ":"), default=str)


# a request target's query, from the "?" after a path to the end of the text it is in: in a
# request line a server logs, the query may hold blanks, quotes (werkzeug decodes %27) or
# " HTTP/", so nothing inside it can be trusted to end it
_QUERY = re.compile(r"(/[^\s?]*)\?.*", re.DOTALL)
# what a server quotes of a request line it could not parse, any part of which may be the
# query: gunicorn's "Invalid request from ip=...: Invalid HTTP Version: '...'", and
# werkzeug's "Bad request version ('...')" or "Bad request syntax ('...')"
_UNPARSED = re.compile(r"((?:Invalid request from|Bad request)[^'\"]*)['\"].*", re.DOTALL)


def _redacted(text: str) -> str:
    return _QUERY.sub(r"\1?[redacted]", _UNPARSED.sub(r"\1[redacted]", text))


class WithoutQueryStrings(logging.Filter):
    """For a web server's own log lines: gunicorn writes a malformed or failed request line
    whole, and the Flask development server (werkzeug) every request line, query included,
    and with it a code or a state. What a request brought (the arguments of a message, or a
    message gunicorn formatted itself) loses its query (``?[redacted]``) and what a server
    quotes of a line it could not parse (``[redacted]``); the servers' own wording stays."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_redacted(arg) if isinstance(arg, str) else arg
                                for arg in record.args)
        elif not record.args and isinstance(record.msg, str):
            record.msg = _redacted(record.msg)
        return True


def keep_query_strings_out(*logger_names: str) -> None:
    for name in logger_names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, WithoutQueryStrings) for f in logger.filters):
            logger.addFilter(WithoutQueryStrings())


def configure_logging(level: str) -> None:
    root = logging.getLogger("infracast")
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        root.addHandler(handler)
    root.setLevel(level.upper())
    root.propagate = False
    # pysaml2 logs whole SAML documents (personal data, attacker-supplied markup) when a
    # check fails; the SSO code logs its own reasons instead
    pysaml2 = logging.getLogger("saml2")
    if not any(isinstance(h, logging.NullHandler) for h in pysaml2.handlers):
        pysaml2.addHandler(logging.NullHandler())
    pysaml2.propagate = False
    keep_query_strings_out("werkzeug")  # `flask run`'s request lines


def init_request_logging(app: Flask) -> None:
    @app.before_request
    def _start():
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        g.request_id = incoming if _SAFE_REQUEST_ID.fullmatch(incoming) else secrets.token_hex(12)
        g.request_started = time.perf_counter()

    @app.after_request
    def _finish(response):
        response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
        started = g.get("request_started")
        log.info("request", extra={"fields": {
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "remote_addr": request.remote_addr,
        }})
        return response
