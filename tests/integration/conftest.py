"""Fixtures for the integration tests: registered relying parties, and a local issuer
(tests/keyserver.py) with its key for the verifier tests."""

from __future__ import annotations

import pytest

from app.clients import register_client
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
