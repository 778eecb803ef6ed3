"""A web server's own request lines reach the log without their query strings."""

import logging

import pytest

from app.logging import configure_logging, keep_query_strings_out


def _logged(logger_name, message, *args):
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger = logging.getLogger(logger_name)
    handler, level = Keep(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)  # as werkzeug's server sets it
    try:
        logger.warning(message, *args)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return seen[0]


def test_the_development_servers_request_lines_lose_their_query_strings():
    configure_logging("INFO")
    # werkzeug's own calls (serving.WSGIRequestHandler.log_request and send_error)
    assert _logged("werkzeug", '%s - - [%s] "%s" %s %s', "127.0.0.1", "29/Nov/2026 12:00:00",
                   "GET /sso/callback?code=upstream-code&state=s3cr3t HTTP/1.1", "302", "-") \
        == '127.0.0.1 - - [29/Nov/2026 12:00:00] "GET /sso/callback?[redacted] HTTP/1.1" 302 -'
    # a blank in the query: the line is malformed, and the rest of it is no "version"
    assert _logged("werkzeug", '"%s" %s %s', "GET /cb?state=a b&code=c0de HTTP/1.1", "400", "-") \
        == '"GET /cb?[redacted] HTTP/1.1" 400 -'
    assert _logged("werkzeug", "code %d, message %s", 400, "Bad request version ('b&code=c0de')") \
        == "code 400, message Bad request version ([redacted]"
    assert _logged("werkzeug", "no query here: %s", "/healthz") == "no query here: /healthz"


@pytest.mark.parametrize("message, logged", [
    ("Invalid request from ip=127.0.0.1: Invalid HTTP request line: "
     "'GET /oauth/authorize?code=c0de&state=x\x01 HTTP/1.1'",
     "Invalid request from ip=127.0.0.1: Invalid HTTP request line: [redacted]"),
    ("Invalid request from ip=127.0.0.1: Invalid HTTP Version: 'b&code=c0de HTTP/1.1'",
     "Invalid request from ip=127.0.0.1: Invalid HTTP Version: [redacted]"),
    ("Error handling request /sso/callback?code=c0de",
     "Error handling request /sso/callback?[redacted]"),
])
def test_gunicorns_own_lines_lose_what_a_request_line_carried(message, logged):
    keep_query_strings_out("gunicorn.error")
    assert _logged("gunicorn.error", message) == logged
