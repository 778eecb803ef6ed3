"""Fixtures for the app's SSO tests: the service with upstreams allowed on loopback, a real
OIDC upstream process (``upstream``, tests/conftest.py) and a real signing SAML IdP.

``browser`` is a Flask test client of that service (it keeps cookies, like a browser); the
upstream side is real HTTP (``requests``) to the upstream process. The SAML IdP never
needs to be reached: it reads the AuthnRequest from our redirect and signs its Responses
with xmlsec1 (``tests/federation/saml_idp.py``).
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests
import sqlalchemy as sa

from app import create_app
from app.clients import register_client
from app.extensions import db, dispose_engines
from app.sso import acs_url, sp_entity_id
from federation.saml import sp_metadata
from tests.conftest import FAST_ARGON2, base_config, bearer, count_rows
from tests.federation.conftest import IDP_ENTITY_ID, SSO_URL
from tests.federation.saml_idp import SigningIdP, post
from tests.oidc import REDIRECT_URI, RelyingParty, without_query
from tests.sso import SamlAnswers

ISSUER = "http://127.0.0.1:8000"
SP_ENTITY_ID = sp_entity_id(ISSUER)
ACS_URL = acs_url(ISSUER)


@pytest.fixture(scope="session")
def sso_app(app, pg_schema, redis_ns, upstream):
    """The service on the run's database and Redis (migrated by ``app``), with
    ``IDP_ALLOW_HTTP_UPSTREAMS=1`` and ``AZURE_AUTHORITY_HOST`` at the upstream process."""
    application = create_app(base_config(
        DATABASE_URL=pg_schema.url, REDIS_URL=redis_ns.url, REDIS_KEY_PREFIX=redis_ns.prefix,
        ALLOW_HTTP_UPSTREAMS=True, AZURE_AUTHORITY_HOST=upstream.url, **FAST_ARGON2))
    yield application
    with application.app_context():
        dispose_engines()


@pytest.fixture
def browser(clean, sso_app):
    return sso_app.test_client()


@pytest.fixture
def admin(browser, make_user) -> dict:
    user = make_user(roles=["admin"])
    response = browser.post("/api/v1/auth/token",
                            json={"username": user["username"], "password": user["password"]})
    return bearer(response.get_json()["token"])


@pytest.fixture
def rp(browser, sso_app) -> RelyingParty:
    """A public client with PKCE, driven through ``browser``."""
    with sso_app.app_context():
        client_id = register_client({
            "client_name": "Nodes console", "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [REDIRECT_URI]}).client.client_id
    return RelyingParty(browser, client_id)


@pytest.fixture
def configure(browser, admin):
    """POST a connection through the admin API; returns its rendering."""
    def _configure(provider: str, body: dict) -> dict:
        response = browser.post(f"/api/v1/admin/sso/{provider}", json=body, headers=admin)
        assert response.status_code in (200, 201), response.get_json()
        return response.get_json()
    return _configure


# -- OpenID Connect round trips ------------------------------------------------------------

def via_upstream(browser, response, upstream, provider: str = "okta"):
    """Follow our redirect to the upstream (real HTTP), which approves the user at once,
    and bring its redirect back to our callback in ``browser``."""
    assert response.status_code in (302, 303), response.get_data(True)[:500]
    location = response.headers["Location"]
    assert location.startswith(upstream.url + "/"), location
    answer = requests.get(location, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    back = answer.headers["Location"]
    assert back.startswith(f"{ISSUER}/api/v1/auth/sso/{provider}/callback?"), back
    return back[len(ISSUER):]


def sso_sign_in(browser, rp: RelyingParty, upstream, provider: str = "okta", **params):
    """The whole front channel through ``/api/v1/auth/sso/{provider}/login``: the callback's
    answer (a redirect to the relying party when it worked)."""
    started = browser.get(f"/api/v1/auth/sso/{provider}/login", query_string=rp.params(**params))
    return browser.get(via_upstream(browser, started, upstream, provider))


# -- SAML round trips ----------------------------------------------------------------------

@pytest.fixture(scope="session")
def saml_idp(tmp_path_factory) -> SigningIdP:
    """A signing IdP that trusts our SP metadata at ``ISSUER``."""
    return SigningIdP(tmp_path_factory.mktemp("sso-idp"), IDP_ENTITY_ID, SSO_URL,
                      sp_metadata(SP_ENTITY_ID, ACS_URL))


@dataclass
class SamlLogin(SamlAnswers):
    """One SP-initiated SAML login in ``browser``: the AuthnRequest the IdP read."""

    browser: object = None

    def post(self, xml: str, relay_state: str | None = None, browser=None):
        """POST the Response to the ACS as the IdP's form would."""
        form = {"SAMLResponse": post(xml),
                "RelayState": self.request.relay_state if relay_state is None else relay_state}
        return (browser or self.browser).post("/api/v1/auth/sso/saml/acs", data=form)

    def complete(self, xml: str, **post_options):
        """POST the Response, then follow the ACS's 303 in the browser."""
        posted = self.post(xml, **post_options)
        assert posted.status_code == 303, posted.get_data(True)[:500]
        return self.browser.get(posted.headers["Location"])


def start_saml(browser, rp: RelyingParty, idp: SigningIdP, **params) -> SamlLogin:
    started = browser.get("/api/v1/auth/sso/saml/login", query_string=rp.params(**params))
    assert started.status_code == 302, started.get_data(True)[:500]
    assert started.headers["Location"].startswith(SSO_URL + "?")
    return SamlLogin(idp, idp.read_request(started.headers["Location"]), ACS_URL, SP_ENTITY_ID,
                     browser)


# -- what was created ----------------------------------------------------------------------

def created(application) -> tuple[int, int]:
    """(users, federated identities) in the database."""
    return count_rows(application, "users"), count_rows(application, "federated_identities")


def federated_users(application) -> list[dict]:
    from app.models import FederatedIdentity, User

    with application.app_context():
        rows = db.session.execute(
            sa.select(User, FederatedIdentity).join(FederatedIdentity,
                                                    FederatedIdentity.user_id == User.id)
            .order_by(User.username)).all()
        return [{"id": user.id, "username": user.username, "email": user.email,
                 "email_verified": user.email_verified, "name": user.name,
                 "password_hash": user.password_hash, "provider": link.provider,
                 "upstream": link.upstream, "subject": link.subject,
                 "tenants": {m.tenant_id: m.role for m in user.memberships}}
                for user, link in rows]


def lands_on_relying_party(response) -> bool:
    """Did the browser get sent back to the relying party (with a code or an error)?"""
    return without_query(response.headers.get("Location", "http://x/")) == REDIRECT_URI
