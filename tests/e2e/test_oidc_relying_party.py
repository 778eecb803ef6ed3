"""A real relying party library (Authlib's OAuth2Session) against gunicorn, over HTTP.

Discovery, code + PKCE, the ID token checked against the published JWKS, userinfo,
refresh and revocation — with nothing but the discovery URL and a registered client.
The user's part (the HTML login form) is played with requests and the page's CSRF token.
"""

import secrets

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.jwk import KeySet

from app.clients import register_client
from tests.oidc import csrf_token

pytestmark = pytest.mark.e2e

REDIRECT_URI = "http://127.0.0.1:8765/callback"


@pytest.fixture(scope="module")
def relying_party(backend_app, live_server):
    from tests.e2e.conftest import create_test_user

    create_test_user(backend_app, "rp-user", email_verified=False, name="R. P. User")
    with backend_app.app_context():
        return register_client({
            "client_name": "Reports SPA", "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": [REDIRECT_URI]}).client.client_id


def _user_signs_in(authorization_url: str) -> str:
    """What a person does in the browser; returns where the IdP sends them back."""
    browser = requests.Session()
    to_login = browser.get(authorization_url, allow_redirects=False, timeout=10)
    assert to_login.status_code == 302, to_login.text
    login_page = browser.get(requests.compat.urljoin(authorization_url,
                                                     to_login.headers["Location"]), timeout=10)
    assert login_page.status_code == 200 and "Sign in" in login_page.text
    done = browser.post(login_page.url, allow_redirects=False, timeout=10, data={
        "csrf_token": csrf_token(login_page.text), "username": "rp-user",
        "password": "correct horse battery"})
    assert done.status_code == 303, done.text
    return done.headers["Location"]


def test_authlib_relying_party_signs_a_user_in(live_server, relying_party):
    metadata = requests.get(live_server.url + "/.well-known/openid-configuration",
                            timeout=10).json()
    assert metadata["issuer"] == live_server.url
    rp = OAuth2Session(client_id=relying_party, redirect_uri=REDIRECT_URI,
                       scope="openid profile email offline_access",
                       code_challenge_method="S256", token_endpoint_auth_method="none")
    verifier, nonce = generate_token(48), secrets.token_urlsafe(16)
    url, state = rp.create_authorization_url(metadata["authorization_endpoint"],
                                             code_verifier=verifier, nonce=nonce)

    callback = _user_signs_in(url)
    assert callback.startswith(REDIRECT_URI) and f"iss={requests.utils.quote(live_server.url, safe='')}" in callback
    token = rp.fetch_token(metadata["token_endpoint"], authorization_response=callback,
                           code_verifier=verifier, state=state)
    assert token["token_type"] == "Bearer" and token["refresh_token"]

    # the ID token, as any RP checks it: signature against the JWKS, then the claims
    jwks = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=10).json())
    decoded = jwt.decode(token["id_token"], jwks,
                         algorithms=metadata["id_token_signing_alg_values_supported"])
    claims = CodeIDToken(decoded.claims, decoded.header, options={
        "iss": {"essential": True, "value": metadata["issuer"]},
        "aud": {"essential": True, "value": relying_party},
    }, params={"nonce": nonce, "client_id": relying_party, "access_token": token["access_token"]})
    claims.validate(leeway=5)
    assert claims["nonce"] == nonce and claims["preferred_username"] == "rp-user"

    userinfo = rp.get(metadata["userinfo_endpoint"], timeout=10)
    assert userinfo.status_code == 200
    assert userinfo.json() == {"sub": claims["sub"], "name": "R. P. User",
                               "preferred_username": "rp-user",
                               "email": "rp-user@example.test", "email_verified": False}

    refreshed = rp.refresh_token(metadata["token_endpoint"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert rp.get(metadata["userinfo_endpoint"], timeout=10).status_code == 200

    revoked = rp.revoke_token(metadata["revocation_endpoint"],
                              token=refreshed["refresh_token"], token_type_hint="refresh_token")
    assert revoked.status_code == 200
    # the family is gone: its refresh token and the access tokens issued from it
    assert rp.get(metadata["userinfo_endpoint"], timeout=10).status_code == 401
    again = requests.post(metadata["token_endpoint"], timeout=10, data={
        "grant_type": "refresh_token", "refresh_token": refreshed["refresh_token"],
        "client_id": relying_party})
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
