"""Federation test fixtures: real upstreams on loopback and connectors pointed at them.

* OpenID Connect: an upstream provider process (``upstream.UpstreamProcess``; the
  ``upstream`` fixture is in ``tests/conftest.py``, shared with the app's SSO tests).
* SAML: a real signing IdP (``saml_idp.SigningIdP``); the IdP, its keys and certificates are
  made once per session, since xmlsec1 runs as a subprocess for every signature.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from federation.connector import ConnectorError, Identity
from federation.config import azure_config, okta_config
from federation.oidc import OIDCConnector
from federation.saml import SAMLConfig, SAMLServiceProvider, sp_metadata
from tests.federation.saml_idp import SigningIdP, post
from tests.federation.upstream import CLIENT_ID, CLIENT_SECRET
CALLBACK = "http://127.0.0.1:8000/api/v1/auth/sso/okta/callback"
AZURE_TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CREDENTIALS = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}
# fast failures: a timeout well below the tests' patience
CONNECTOR_OPTIONS = {"timeout": 1.0}


@pytest.fixture
def settings(upstream):
    return {"ALLOW_HTTP_UPSTREAMS": True, "AZURE_AUTHORITY_HOST": upstream.url}


def okta(fields: dict, settings, **options) -> OIDCConnector:
    """The connector of an Okta connection, built as the app's registry builds it."""
    return OIDCConnector(okta_config(fields, settings), **options)


@pytest.fixture
def okta_connector(upstream, settings) -> OIDCConnector:
    """Okta's org authorization server shape: the issuer is the bare origin."""
    return okta({"domain": "dev-123456.okta.com", "issuer": upstream.url, **CREDENTIALS},
                settings, **CONNECTOR_OPTIONS)


@pytest.fixture
def azure_connector(settings) -> OIDCConnector:
    return OIDCConnector(azure_config({"tenant_id": AZURE_TENANT, **CREDENTIALS}, settings),
                         **CONNECTOR_OPTIONS)


def authorize(connector: OIDCConnector, state: str = "state-123", **fresh) -> tuple[dict, dict]:
    """Start a login (``fresh``: ``force_authn``, ``max_age``) and let the upstream approve
    it, as a browser would, stopping at our callback: the callback's query parameters and
    what the server kept for the state."""
    start = connector.login(CALLBACK, state, **fresh)
    response = requests.get(start.redirect_url, allow_redirects=False, timeout=5)
    assert response.status_code == 302, response.text
    location = response.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    return dict(parse_qsl(urlsplit(location).query)), start.saved


def sign_in(connector: OIDCConnector):
    params, saved = authorize(connector)
    return connector.handle_callback(CALLBACK, params, saved)



ISSUER = "https://id.infracast.test"
SP_ENTITY_ID = f"{ISSUER}/api/v1/auth/sso/saml/metadata"
ACS_URL = f"{ISSUER}/api/v1/auth/sso/saml/acs"
IDP_ENTITY_ID = "https://idp.example.test/saml/metadata"
SSO_URL = "https://idp.example.test/saml/sso"
RELAY_STATE = "rs-0123456789abcdef"


@pytest.fixture(scope="session")
def idp(tmp_path_factory) -> SigningIdP:
    return SigningIdP(tmp_path_factory.mktemp("saml-idp"), IDP_ENTITY_ID, SSO_URL,
                      sp_metadata(SP_ENTITY_ID, ACS_URL))


def idp_config(idp: SigningIdP, **fields) -> dict:
    """What an admin would submit for ``idp`` (contract §3), plus ``fields``."""
    return {"entity_id": IDP_ENTITY_ID, "sso_url": SSO_URL, "certificate": idp.keys.cert_pem,
            **fields}


class SeenAssertions:
    """The server's replay cache, in process: assertion id -> expires_at (the server's is
    Redis ``SET NX EXAT``)."""

    def __init__(self):
        self.entries: dict[str, float] = {}
        self._lock = threading.Lock()

    def __call__(self, assertion_id: str, expires_at: float) -> bool:
        with self._lock:
            if assertion_id in self.entries:
                return True
            self.entries[assertion_id] = expires_at
            return False


_SAVED = object()


@dataclass
class Flow:
    """One SP-initiated login: the connector sent an AuthnRequest and the IdP read it."""

    sp: SAMLServiceProvider
    idp: SigningIdP
    saved: dict
    request_id: str
    seen: SeenAssertions = field(default_factory=SeenAssertions)

    def respond(self, **options) -> str:
        """A Response of the IdP to this login (``SigningIdP.response`` options)."""
        options.setdefault("in_response_to", self.request_id)
        return self.idp.response(acs_url=ACS_URL, audience=SP_ENTITY_ID, **options)

    def post(self, xml: str, saved=_SAVED, relay_state: str | None = RELAY_STATE) -> Identity:
        return self.sp.handle_post(ACS_URL, post(xml), self.saved if saved is _SAVED else saved,
                                   seen=self.seen, relay_state=relay_state)

    def refused(self, xml: str, message: str, reason: str, **post_options) -> ConnectorError:
        """Posting ``xml`` fails with ``message`` for ``reason``, and records no assertion."""
        with pytest.raises(ConnectorError) as caught:
            self.post(xml, **post_options)
        assert caught.value.message == message
        assert reason in caught.value.reason
        assert self.seen.entries == {}
        return caught.value


def start_flow(idp: SigningIdP, **config_fields) -> Flow:
    sp = SAMLServiceProvider(SAMLConfig.from_dict(idp_config(idp, **config_fields)), SP_ENTITY_ID)
    started = sp.login(ACS_URL, RELAY_STATE)
    request = idp.read_request(started.redirect_url)
    return Flow(sp, idp, started.saved, request.id)


@pytest.fixture
def flow(idp) -> Flow:
    return start_flow(idp)
