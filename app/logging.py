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
from collections.abc import Mapping
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


# the wording with which gunicorn and http.server (werkzeug's) quote a request line they could
# not parse, any part of which may be the query: "Invalid request from ip=...: Invalid HTTP
# Version: '...'", "Bad request version ('...')", "Bad HTTP/0.9 request type ('...')"
_UNPARSED = ("Invalid request from", "Bad request", "Bad HTTP/0.9 request type")


def _redacted(text: str) -> str:
    """``text`` without what a server quotes of a line it could not parse (``[redacted]``)
    and without its query (``?[redacted]``): from the first "?" to the end, since nothing a
    request can write inside a query (a blank, a quote, " HTTP/") can be trusted to end it.
    A "?" that ends the text is a question ("Perhaps out of memory?"), and stays. Plain
    searches, no regular expression: a request line can be 64 KiB."""
    starts = [at for at in (text.find(wording) for wording in _UNPARSED) if at >= 0]
    if starts:
        quotes = [at for at in (text.find(q, min(starts)) for q in "'\"") if at >= 0]
        if quotes:
            text = text[:min(quotes)] + "[redacted]"
    query = text.find("?")
    if query < 0 or not text[query + 1:].strip():
        return text
    return text[:query] + "?[redacted]"


def _redacted_lines(text: str) -> str:
    """``_redacted`` line by line: a traceback's later lines (the exception) stay when an
    earlier one has a "?"; a quoted request line never spans lines (repr escapes them)."""
    return "\n".join(_redacted(line) for line in text.split("\n"))


def _redacted_arg(arg):
    if isinstance(arg, str):
        return _redacted_lines(arg)
    if arg is None or isinstance(arg, (int, float)):
        return arg
    # an exception or bytes a server logs may hold the whole request, its headers too
    # (gunicorn's NoMoreData after a client hangs up): only its kind is logged
    return type(arg).__name__


# werkzeug's request log line: the request line, its status and size
_WERKZEUG_REQUEST_LINE = '"%s" %s %s'


class WithoutQueryStrings(logging.Filter):
    """For gunicorn's own log lines (and those of ``flask run``'s server): gunicorn writes a
    malformed or failed request line whole, query (a code, a state) included. What a request
    brought, the arguments of a message, a message gunicorn formatted itself, or a traceback,
    loses its query and what a server quotes of a line it could not parse; the servers' own
    wording stays. werkzeug's request lines are dropped: the service logs every request
    itself (method, path, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str) and record.msg.endswith(_WERKZEUG_REQUEST_LINE):
            return False
        try:
            if isinstance(record.args, Mapping):
                record.args = {name: _redacted_arg(value) for name, value in record.args.items()}
            elif record.args:
                record.args = tuple(_redacted_arg(arg) for arg in record.args)
            else:
                record.msg = _redacted_arg(record.msg)
            if record.exc_info and not record.exc_text:
                record.exc_text = _redacted_lines(
                    logging.Formatter().formatException(record.exc_info))
        except Exception:  # the event stays, nothing of what it carried
            record.msg, record.args = "[log line redacted: the filter failed]", ()
            record.exc_info = record.exc_text = None
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
    keep_query_strings_out("werkzeug")  # `flask run`'s server


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
