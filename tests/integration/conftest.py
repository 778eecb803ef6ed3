"""Fixtures for the verifier tests: a local issuer (tests/keyserver.py) and its key."""

import pytest

from tests.keyserver import KeyServer, new_key


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
