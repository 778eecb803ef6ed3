"""Fixtures for the integration tests: registered relying parties; a local issuer
(tests/keyserver.py) and its key for the verifier tests; the IdP's revocation list and a
resource server's check of its copy; and the IdP itself served over real HTTP from a
thread."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from werkzeug.serving import make_server

from app import create_app
from app.clients import register_client
from app.extensions import dispose_engines, services
from idp.verifier_redis import SharedRedisRevocationCheck
from tests.conftest import base_config
from tests.keyserver import KeyServer, new_key
from tests.oidc import REDIRECT_URI, RelyingParty


@pytest.fixture
def make_rp(client, ctx):
    """Register a client and return a ``RelyingParty`` driving the Flask test client."""

    def _make(public: bool = True, grant_types=("authorization_code", "refresh_token"),
              **metadata) -> RelyingParty:
        registered = register_client({
            "client_name": metadata.pop("client_name", "Test app"),
            "grant_types": list(grant_types),
            "token_endpoint_auth_method": "none" if public else "client_secret_basic",
            "redirect_uris": [REDIRECT_URI],
            **metadata})
        return RelyingParty(client, registered.client.client_id, registered.client_secret)

    return _make


@pytest.fixture(scope="session")
def issuer_key():
    """The local issuer's signing key, generated once."""
    return new_key()


@pytest.fixture
def key_server(issuer_key):
    """Discovery and a JWKS holding ``issuer_key``, served over loopback HTTP."""
    server = KeyServer()
    server.keys.append(issuer_key)
    yield server
    server.stop()


class IdpOverHttp:
    """The IdP's app served by a real werkzeug server in a thread, on loopback.

    It counts the requests it receives by (method, path), so a test sees what a client
    really asked. ``hold(path)`` keeps requests to that path waiting until ``release()``:
    the IdP slower than any timeout, however fast or slow this machine is.
    """

    def __init__(self):
        self.requests: Counter[tuple[str, str]] = Counter()
        self._held: str | None = None
        self._released = threading.Event()
        self._lock = threading.Lock()
        self.app = None
        self._httpd = make_server("127.0.0.1", 0, self, threaded=True)
        self.url = f"http://127.0.0.1:{self._httpd.server_port}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def __call__(self, environ, start_response):
        path = environ["PATH_INFO"]
        with self._lock:
            self.requests[(environ["REQUEST_METHOD"], path)] += 1
        if path == self._held:
            self._released.wait(timeout=30)
        return self.app(environ, start_response)

    def count(self, method: str, path: str) -> int:
        with self._lock:
            return self.requests[(method, path)]

    def hold(self, path: str) -> None:
        self._released.clear()
        self._held = path

    def release(self) -> None:
        self._held = None
        self._released.set()

    def stop(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def idp_over_http(app, pg_schema, redis_ns):
    """The IdP on this run's PostgreSQL schema and Redis prefix (``clean`` empties both),
    served over real HTTP, its issuer the server's own URL."""
    server = IdpOverHttp()
    server.app = create_app(base_config(
        DATABASE_URL=pg_schema.url, REDIS_URL=redis_ns.url, REDIS_KEY_PREFIX=redis_ns.prefix,
        ISSUER=server.url))
    yield server
    server.stop()
    with server.app.app_context():
        dispose_engines()


@pytest.fixture
def idp_revocations(ctx):
    """The IdP's revocation list, with its copy complete (as after any IdP check)."""
    revocations = services().revocations
    revocations.rebuild()
    return revocations


@pytest.fixture
def downstream(redis_ns):
    check = SharedRedisRevocationCheck(redis_ns.url, key_prefix=redis_ns.prefix)
    yield check
    check.close()
