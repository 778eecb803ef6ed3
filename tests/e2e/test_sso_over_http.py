"""Single sign-on over real HTTP: gunicorn (two workers) on PostgreSQL and Redis, the OIDC
upstream process, and a real signing SAML IdP whose Responses are posted to the ACS.

The browser is a ``requests.Session`` (it keeps the IdP's cookie); every hop is HTTP, and
consecutive hops may land on different workers. The full SAML attack matrix runs through
the Flask test client (``tests/integration/sso/test_saml_login.py``); a representative
set of attacks runs here too.
"""

from __future__ import annotations

import pytest
import requests

from app.sso import acs_url, sp_entity_id
from federation.saml import sp_metadata
from tests.conftest import count_rows
from tests.e2e.conftest import LiveServer, post_json
from tests.federation.conftest import IDP_ENTITY_ID, SSO_URL
from tests.federation.saml_idp import SigningIdP, post
from tests.helpers import bearer
from tests.oidc import REDIRECT_URI, pkce_pair, query_of, without_query
from tests.sso import SAML_ATTACKS, SamlAnswers, okta_body, saml_body

pytestmark = pytest.mark.e2e

ADMIN = {"username": "root", "password": "root-password-1"}


@pytest.fixture(scope="module")
def server(server_backends, upstream, tmp_path_factory):
    live = LiveServer({**server_backends, "IDP_BOOTSTRAP_ADMIN_USERNAME": ADMIN["username"],
                       "IDP_BOOTSTRAP_ADMIN_PASSWORD": ADMIN["password"],
                       "IDP_ALLOW_HTTP_UPSTREAMS": "1", "AZURE_AUTHORITY_HOST": upstream.url},
                      tmp_path=tmp_path_factory.mktemp("sso-server"))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def idp(server, tmp_path_factory) -> SigningIdP:
    return SigningIdP(tmp_path_factory.mktemp("sso-e2e-idp"), IDP_ENTITY_ID, SSO_URL,
                      sp_metadata(sp_entity_id(server.url), acs_url(server.url)))


@pytest.fixture(scope="module")
def admin(server) -> dict:
    response = post_json(server.url + "/api/v1/auth/token", ADMIN)
    assert response.status_code == 200, response.text
    return bearer(response.json()["token"])


@pytest.fixture(scope="module")
def client_id(server, admin) -> str:
    response = post_json(server.url + "/api/v1/admin/clients", {
        "client_name": "Nodes console", "redirect_uris": [REDIRECT_URI],
        "token_endpoint_auth_method": "none", "grant_types": ["authorization_code"]},
        headers=admin)
    assert response.status_code == 201, response.text
    return response.json()["client_id"]


@pytest.fixture(scope="module")
def connections(server, admin, upstream, idp):
    for provider, body in (("okta", okta_body(upstream)), ("saml", saml_body(idp))):
        response = post_json(f"{server.url}/api/v1/admin/sso/{provider}", body, headers=admin)
        assert response.status_code == 201, response.text


class Browser:
    """A person's browser at the relying party's request: cookies, no automatic redirects."""

    def __init__(self, server, client_id: str):
        self.server = server
        self.client_id = client_id
        self.session = requests.Session()
        self.verifier, challenge = pkce_pair()
        self.params = {"response_type": "code", "client_id": client_id,
                       "redirect_uri": REDIRECT_URI, "scope": "openid profile email",
                       "state": "st-e2e", "code_challenge": challenge,
                       "code_challenge_method": "S256"}

    def get(self, url: str) -> requests.Response:
        if url.startswith("/"):
            url = self.server.url + url
        return self.session.get(url, allow_redirects=False, timeout=15)

    def start(self, provider: str) -> requests.Response:
        return self.session.get(f"{self.server.url}/api/v1/auth/sso/{provider}/login",
                                params=self.params, allow_redirects=False, timeout=15)

    def post_acs(self, xml: str, relay_state: str) -> requests.Response:
        return self.session.post(acs_url(self.server.url), allow_redirects=False, timeout=15,
                                 data={"SAMLResponse": post(xml), "RelayState": relay_state})

    def redeem(self, landed: requests.Response) -> dict:
        """The relying party's part: the code from the redirect, exchanged for tokens."""
        assert landed.status_code == 302, landed.text[:500]
        assert without_query(landed.headers["Location"]) == REDIRECT_URI
        back = query_of(landed.headers["Location"])
        assert back["state"] == "st-e2e" and back["iss"] == self.server.url
        response = requests.post(self.server.url + "/oauth/token", timeout=15, data={
            "grant_type": "authorization_code", "code": back["code"],
            "redirect_uri": REDIRECT_URI, "client_id": self.client_id,
            "code_verifier": self.verifier})
        assert response.status_code == 200, response.text
        return response.json()


def federated(backend_app) -> tuple[int, int]:
    return count_rows(backend_app, "users"), count_rows(backend_app, "federated_identities")


def test_okta_sign_in_over_http(server, client_id, connections, upstream, backend_app):
    browser = Browser(server, client_id)
    to_upstream = browser.start("okta")
    assert to_upstream.status_code == 302
    approved = requests.get(to_upstream.headers["Location"], allow_redirects=False, timeout=15)
    assert approved.headers["Location"].startswith(f"{server.url}/api/v1/auth/sso/okta/callback?")
    tokens = browser.redeem(browser.get(approved.headers["Location"]))
    me = requests.get(server.url + "/oauth/userinfo", headers=bearer(tokens["access_token"]),
                      timeout=15).json()
    assert me["preferred_username"] == "okta.ada@customer.example"

    # a wrong nonce at the upstream: an error page, no second user
    before = federated(backend_app)
    upstream.set(claims={"nonce": "not-the-nonce"})
    other = Browser(server, client_id)
    approved = requests.get(other.start("okta").headers["Location"], allow_redirects=False,
                            timeout=15)
    refused = other.get(approved.headers["Location"])
    assert refused.status_code == 401 and "Sign-in failed" in refused.text
    assert federated(backend_app) == before


def saml_login(browser: Browser, idp: SigningIdP) -> SamlAnswers:
    to_idp = browser.start("saml")
    assert to_idp.status_code == 302 and to_idp.headers["Location"].startswith(SSO_URL + "?")
    return SamlAnswers(idp, idp.read_request(to_idp.headers["Location"]),
                       acs_url(browser.server.url), sp_entity_id(browser.server.url))


def test_saml_sign_in_over_http(server, client_id, connections, idp, backend_app):
    metadata = requests.get(server.url + "/api/v1/auth/sso/saml/metadata", timeout=15)
    assert metadata.status_code == 200 and f'entityID="{sp_entity_id(server.url)}"' in metadata.text

    browser = Browser(server, client_id)
    answers = saml_login(browser, idp)
    xml = answers.respond()
    posted = browser.post_acs(xml, answers.request.relay_state)
    assert posted.status_code == 303, posted.text[:500]
    tokens = browser.redeem(browser.get(posted.headers["Location"]))
    me = requests.get(server.url + "/oauth/userinfo", headers=bearer(tokens["access_token"]),
                      timeout=15).json()
    assert me["preferred_username"] == "saml.user-1" and me["email"] == "ada@example.test"

    # the same Response again, over HTTP: refused, nothing new
    before = federated(backend_app)
    replay = browser.post_acs(xml, answers.request.relay_state)
    assert replay.status_code == 401 and "Location" not in replay.headers
    assert federated(backend_app) == before


@pytest.mark.parametrize("attack", ["unsigned", "another-key", "second-unsigned-assertion",
                                    "attribute-changed-after-signing", "wrong-audience", "xxe"])
def test_saml_attacks_over_http_create_nothing(server, client_id, connections, idp, backend_app,
                                               attack):
    before = federated(backend_app)
    browser = Browser(server, client_id)
    answers = saml_login(browser, idp)
    respond, _ = SAML_ATTACKS[attack]
    refused = browser.post_acs(respond(answers), answers.request.relay_state)
    assert refused.status_code == 401, refused.text[:500]
    assert "Location" not in refused.headers and 'role="alert"' in refused.text
    assert federated(backend_app) == before
