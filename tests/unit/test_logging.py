"""A web server's own request lines reach the log without their query strings."""

import logging

from app.logging import configure_logging


def test_the_development_servers_request_lines_lose_their_query_strings():
    configure_logging("INFO")
    seen = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    werkzeug = logging.getLogger("werkzeug")
    handler, level = Keep(), werkzeug.level
    werkzeug.addHandler(handler)
    werkzeug.setLevel(logging.INFO)  # as werkzeug's server sets it
    try:
        # werkzeug's own call (serving.WSGIRequestHandler.log_request)
        werkzeug.info('%s - - [%s] "%s" %s %s', "127.0.0.1", "29/Nov/2026 12:00:00",
                      "GET /sso/callback?code=upstream-code&state=s3cr3t HTTP/1.1", "302", "-")
        werkzeug.info("no query here: %s", "/healthz")
    finally:
        werkzeug.removeHandler(handler)
        werkzeug.setLevel(level)
    assert seen == ['127.0.0.1 - - [29/Nov/2026 12:00:00] "GET /sso/callback?[redacted] '
                    'HTTP/1.1" 302 -', "no query here: /healthz"]
