"""gunicorn.conf.py's socket and logging settings, on a real gunicorn with two workers."""

from __future__ import annotations

import secrets
import socket
import time
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import LiveServer

LISTEN = "0A"  # the TCP state /proc/net/tcp gives a listening socket


def listening_sockets(port: int) -> int:
    """How many sockets listen on 127.0.0.1:``port`` (IPv4), from the kernel's own table."""
    count = 0
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, state = fields[1], fields[3]
        if state == LISTEN and int(local.split(":")[1], 16) == port:
            count += 1
    return count


def test_by_default_the_workers_share_one_listening_socket(live_server):
    assert listening_sockets(live_server.port) == 1


def test_reuse_port_gives_each_worker_a_listening_socket_of_its_own(server_backends, tmp_path):
    # and, whatever the sockets, no management socket: gunicorn 25.1+ opens one in
    # $XDG_RUNTIME_DIR unless gunicorn.conf.py says not to
    runtime = tmp_path / "runtime"
    runtime.mkdir()
    server = LiveServer({**server_backends, "GUNICORN_REUSE_PORT": "1",
                         "XDG_RUNTIME_DIR": str(runtime)}, workers=2, tmp_path=tmp_path)
    try:
        # ready means one worker answers; the other may still be binding its socket
        deadline = time.time() + 15
        while listening_sockets(server.port) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert listening_sockets(server.port) == 2
        # a connection answered whichever worker's socket the kernel gave it to
        for _ in range(20):
            with requests.Session() as session:
                assert session.get(server.url + "/readyz", timeout=5).status_code == 200
        assert list(runtime.iterdir()) == []
        assert "Control socket" not in server.log()
    finally:
        server.stop()


@pytest.mark.parametrize("request_line", [
    "GET /oauth/authorize?code={code}&state=x\x01 HTTP/1.1",  # a stray control character
    "GET /oauth/authorize?state=a b&code={code} HTTP/1.1",     # a blank: the rest is "version"
])
def test_a_malformed_request_line_does_not_put_its_query_string_in_the_log(live_server,
                                                                           request_line):
    """gunicorn answers a request line it cannot parse 400 and logs what it read of it
    (``Invalid request from ip=...``): the authorization code in its query must not reach
    the log."""
    code, before = secrets.token_urlsafe(24), live_server.log().count("Invalid request")
    with socket.create_connection(("127.0.0.1", live_server.port), timeout=5) as sock:
        sock.sendall(f"{request_line.format(code=code)}\r\nHost: 127.0.0.1\r\n\r\n".encode())
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 400")
    deadline = time.monotonic() + 5
    while live_server.log().count("Invalid request") == before and time.monotonic() < deadline:
        time.sleep(0.05)  # the worker writes its line after answering
    logged = live_server.log()
    assert logged.count("Invalid request") > before and "[redacted]" in logged
    assert code not in logged
