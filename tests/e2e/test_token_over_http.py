"""A token from /api/v1/auth/token, verified by a third-party library over real HTTP."""

import jwt
import requests

pytestmark = __import__("pytest").mark.e2e


def test_pyjwt_verifies_the_token_against_the_published_jwks(live_server):
    discovery = requests.get(live_server.url + "/.well-known/openid-configuration", timeout=5).json()
    assert discovery["issuer"] == live_server.url
    response = requests.post(live_server.url + "/api/v1/auth/token",
                             json={"username": "root", "password": "root-password-1"}, timeout=10)
    assert response.status_code == 200, response.text
    token = response.json()["token"]

    jwks_client = jwt.PyJWKClient(discovery["jwks_uri"])
    signing_key = jwks_client.get_signing_key_from_jwt(token)
    claims = jwt.decode(token, signing_key.key, algorithms=["RS256"], audience="infracast-api",
                        issuer=live_server.url)
    assert claims["tenants"] == {"*": ["admin:*"]}
    assert jwt.get_unverified_header(token)["typ"] == "at+jwt"


def test_every_worker_signs_with_the_one_active_key(live_server):
    kids = set()
    for _ in range(8):
        token = requests.post(live_server.url + "/api/v1/auth/token",
                              json={"username": "root", "password": "root-password-1"},
                              timeout=10).json()["token"]
        kids.add(jwt.get_unverified_header(token)["kid"])
    published = {k["kid"] for k in requests.get(live_server.url + "/.well-known/jwks.json",
                                                timeout=5).json()["keys"]}
    assert len(kids) == 1 and kids <= published
