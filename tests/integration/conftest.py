"""Fixtures for the OpenID Connect tests: registered relying parties."""

from __future__ import annotations

import pytest

from app.clients import register_client
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
