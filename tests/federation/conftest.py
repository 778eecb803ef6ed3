"""A real upstream OpenID Connect provider on loopback, and connectors pointed at it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from federation.oidc import OIDCConnector, azure, okta
from tests.federation.upstream import UpstreamProcess

CLIENT_ID = "0oa-infracast-test"
CLIENT_SECRET = "upstream-secret-4f2c9a"
CALLBACK = "http://127.0.0.1:8000/api/v1/auth/sso/okta/callback"
AZURE_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CREDENTIALS = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
# fast failures: a timeout well below the tests' patience
CONNECTOR_OPTIONS = {"timeout": 1.0}


@pytest.fixture(scope="session")
def upstream(tmp_path_factory):
    process = UpstreamProcess(CLIENT_ID, CLIENT_SECRET, tmp_path_factory.mktemp("upstream"))
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _fresh_upstream(request):
    """Each test starts from the upstream's default behaviour (only where it is used)."""
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()


@pytest.fixture
def settings(upstream):
    return {"ALLOW_HTTP_UPSTREAMS": True, "AZURE_AUTHORITY_HOST": upstream.url}


@pytest.fixture
def okta_connector(upstream, settings) -> OIDCConnector:
    """Okta's org authorization server shape: the issuer is the bare origin."""
    return okta({"domain": "dev-123456.okta.com", "issuer": upstream.url, **CREDENTIALS},
                settings, **CONNECTOR_OPTIONS)


@pytest.fixture
def azure_connector(settings) -> OIDCConnector:
    return azure({"tenant_id": AZURE_TENANT, **CREDENTIALS}, settings, **CONNECTOR_OPTIONS)


def authorize(connector: OIDCConnector, state: str = "state-123") -> tuple[dict, dict]:
    """Start a login and let the upstream approve it, as a browser would, stopping at our
    callback: the callback's query parameters and what the server kept for the state."""
    start = connector.login(CALLBACK, state)
    response = requests.get(start.redirect_url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    return dict(parse_qsl(urlsplit(location).query)), start.saved


def sign_in(connector: OIDCConnector):
    params, saved = authorize(connector)
    return connector.handle_callback(CALLBACK, params, saved)
