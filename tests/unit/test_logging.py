"""A web server's own log lines keep no query string and no part of a request line it could
not parse: werkzeug's development server (a real one, on loopback) and gunicorn's messages."""

import logging
import secrets
import socket
import threading

import pytest
from werkzeug.serving import make_server

from app.logging import configure_logging, keep_query_strings_out


def _kept(logger_name: str, emit) -> list[str]:
    """The messages ``emit()`` makes ``logger_name`` write, as a handler receives them."""
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    logger = logging.getLogger(logger_name)
    handler = Keep()
    logger.addHandler(handler)
    try:
        emit()
    finally:
        logger.removeHandler(handler)
    return seen


def _ok(environ, start_response):
    start_response("200 OK", [("Content-Length", "2")])
    return [b"ok"]


def _werkzeug_logged(request: bytes, app=_ok) -> list[str]:
    """Send ``request`` to a development server of ``app`` on loopback: what its log says."""
    configure_logging("INFO")  # filters the "werkzeug" logger
    server = make_server("127.0.0.1", 0, app)

    def one_request():
        serving = threading.Thread(target=server.handle_request)
        serving.start()
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=5) as sock:
            sock.sendall(request)
            try:
                while sock.recv(65536):
                    pass
            except OSError:
                pass
        serving.join(5)

    try:
        return _kept("werkzeug", one_request)
    finally:
        server.server_close()


@pytest.mark.parametrize("request_line, logged", [
    # well formed (a browser sends ' as %27, which werkzeug decodes for its log; a query may
    # open with an encoded Unicode blank): its request line is not logged at all, as the
    # service logs every request itself
    ("GET /sso/callback?code={code}&state=%27x HTTP/1.1", []),
    ("GET /sso/callback?%C2%A0x=1&code={code} HTTP/1.1", []),
    ("GET ?code={code} HTTP/1.1", []),
    # malformed: what the server quotes of the line is redacted, whatever follows the "?"
    ("GET /cb?state=a b&code={code}", ["code 400, message Bad request version ([redacted]"]),
    ("GET /cb?state=a HTTP/1.1&code={code} HTTP/1.1",
     ["code 400, message Bad request syntax ([redacted]"]),
    ("GET /sso/callback? code={code} HTTP/1.1", ["code 400, message Bad request syntax ([redacted]"]),
    ("GET /cb b?code={code} HTTP/1.1", ["code 400, message Bad request syntax ([redacted]"]),
    ("GET " + "/a" * 2000 + "?code={code} HTTP/1.1", []),
])
def test_the_development_servers_lines_keep_nothing_of_the_request(request_line, logged):
    code = secrets.token_urlsafe(16)
    lines = _werkzeug_logged(f"{request_line.format(code=code)}\r\nHost: x\r\n\r\n".encode())
    assert [line.split("] ", 1)[1] for line in lines] == logged


@pytest.mark.parametrize("message, args, logged", [
    # gunicorn/workers/base.py handle_error, formatted before it is logged
    ("Invalid request from ip=127.0.0.1: Invalid HTTP request line: "
     "'GET /oauth/authorize?code=c0de&state=x\x01 HTTP/1.1'", (),
     "Invalid request from ip=127.0.0.1: Invalid HTTP request line: [redacted]"),
    ("Invalid request from ip=127.0.0.1: Invalid HTTP Version: 'b&code=c0de HTTP/1.1'", (),
     "Invalid request from ip=127.0.0.1: Invalid HTTP Version: [redacted]"),
    # ... and with its arguments; gunicorn takes ' in a request target
    ("Error handling request %s %s", ("GET", "/sso/callback?state='&code=c0de"),
     "Error handling request GET /sso/callback?[redacted]"),
    # its own wording stays as it is
    ("Worker (pid:%s) was sent SIGKILL! Perhaps out of memory?", (1234,),
     "Worker (pid:1234) was sent SIGKILL! Perhaps out of memory?"),
    ("Booting worker with pid: %s", (1234,), "Booting worker with pid: 1234"),
    # a long line of the servers' own wording, with no quote after it
    ("Invalid request from ip=127.0.0.1: " + "Bad request " * 5000, (),
     "Invalid request from ip=127.0.0.1: " + "Bad request " * 5000),
])
def test_gunicorns_own_lines_lose_what_a_request_line_carried(message, args, logged):
    keep_query_strings_out("gunicorn.error")
    assert _kept("gunicorn.error", lambda: logging.getLogger("gunicorn.error").warning(
        message, *args)) == [logged]


def test_what_gunicorn_read_before_a_client_hung_up_is_redacted():
    """gthread logs "Ignored premature client disconnection. %s" with gunicorn's NoMoreData,
    whose text is what it had read of the request: an argument that is no string."""
    from gunicorn.config import Config
    from gunicorn.http.errors import NoMoreData
    from gunicorn.http.parser import RequestParser

    code = secrets.token_urlsafe(16)
    client, server = socket.socketpair()
    client.sendall(f"GET /sso/callback?code={code} HTTP/1.1".encode())
    client.close()
    with pytest.raises(NoMoreData) as hung_up:
        next(iter(RequestParser(Config(), server, ("127.0.0.1", 1))))
    server.close()
    keep_query_strings_out("gunicorn.error")
    logger = logging.getLogger("gunicorn.error")
    lines = _kept("gunicorn.error", lambda: logger.warning(
        "Ignored premature client disconnection. %s", hung_up.value))
    assert lines == ["Ignored premature client disconnection. NoMoreData"]


def test_a_traceback_is_redacted_too():
    keep_query_strings_out("gunicorn.error")
    logger = logging.getLogger("gunicorn.error")
    records = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(logging.Formatter().format(record))

    handler = Keep()
    logger.addHandler(handler)
    try:
        try:
            raise ValueError("bad target /sso/callback?code=c0de")
        except ValueError:
            logger.exception("Error handling request %s %s", "GET", "/sso/callback?code=c0de")
    finally:
        logger.removeHandler(handler)
    assert len(records) == 1 and "c0de" not in records[0]
    assert "ValueError: bad target /sso/callback?[redacted]" in records[0]


def test_the_development_servers_own_lines_stay():
    """`flask run --debug` builds the app (configure_logging) before its server starts: the
    address, the debugger's PIN and the reloader's lines carry nothing of a request."""
    from werkzeug._internal import _log

    configure_logging("INFO")
    lines = _kept("werkzeug", lambda: (
        _log("info", " * Running on http://127.0.0.1:5000"),
        _log("warning", " * Debugger is active!"),
        _log("info", " * Debugger PIN: %s", "123-456-789"),
    ))
    assert lines == [" * Running on http://127.0.0.1:5000", " * Debugger is active!",
                     " * Debugger PIN: 123-456-789"]


def test_the_development_servers_traceback_keeps_its_exception_line():
    """werkzeug logs an application error as one message, "Error on request:\n<traceback>":
    a source line with a "?" loses its query, and the exception below it stays."""
    code = secrets.token_urlsafe(16)

    def client_for(target):
        raise LookupError(f"no client for {target}")

    def app(environ, start_response):
        return client_for("/sso/callback?" + environ["QUERY_STRING"])  # a line with a "?"

    text = "\n".join(_werkzeug_logged(
        f"GET /sso/callback?code={code} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), app))
    assert "Error on request" in text and code not in text, text
    assert "LookupError: no client for /sso/callback?[redacted]" in text, text
