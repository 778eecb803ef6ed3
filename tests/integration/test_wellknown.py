"""Discovery and JWKS (contract §4): content, caching headers, conditional requests."""

import base64
import hashlib
import json

from app import create_app
from app.extensions import db, dispose_engines
from app.models import SigningKey
from keys.sealing import generate_kek
from tests.conftest import base_config, bearer
from tests.helpers import json_logs, login


def test_discovery_lists_what_is_implemented(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    assert doc["issuer"] == "http://127.0.0.1:8000"
    assert doc["jwks_uri"] == "http://127.0.0.1:8000/.well-known/jwks.json"
    assert doc["token_endpoint"] == "http://127.0.0.1:8000/oauth/token"
    assert "password" in doc["grant_types_supported"]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic", "client_secret_post", "none"]
    assert doc == client.get("/.well-known/oauth-authorization-server").get_json()


def test_jwks_caching_and_304(client):
    first = client.get("/.well-known/jwks.json")
    assert first.status_code == 200
    assert first.headers["Cache-Control"].startswith("public, max-age=")
    etag = first.headers["ETag"]
    again = client.get("/.well-known/jwks.json", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    other = client.get("/.well-known/jwks.json", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200


def test_kid_is_the_rfc7638_thumbprint_and_private_half_is_sealed(client, ctx):
    jwk = client.get("/.well-known/jwks.json").get_json()["keys"][0]
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}
    canonical = json.dumps({"e": jwk["e"], "kty": "RSA", "n": jwk["n"]}, separators=(",", ":"))
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=")
    assert jwk["kid"] == thumbprint.decode()
    row = db.session.get(SigningKey, jwk["kid"])
    assert row.state == "active"
    assert b"PRIVATE" not in row.sealed_private
    modulus = base64.urlsafe_b64decode(jwk["n"] + "==")
    assert len(modulus) * 8 >= 2048


def test_discovery_is_cacheable_too(client):
    first = client.get("/.well-known/openid-configuration")
    assert first.headers["ETag"]
    assert client.get("/.well-known/openid-configuration",
                      headers={"If-None-Match": first.headers["ETag"]}).status_code == 304


def test_discovery_lists_exactly_the_openid_connect_support(client):
    doc = client.get("/.well-known/openid-configuration").get_json()
    base = "http://127.0.0.1:8000"
    assert doc["authorization_endpoint"] == f"{base}/oauth/authorize"
    assert doc["userinfo_endpoint"] == f"{base}/oauth/userinfo"
    assert doc["end_session_endpoint"] == f"{base}/oauth/logout"
    assert doc["revocation_endpoint"] == f"{base}/oauth/revoke"
    assert doc["response_types_supported"] == ["code"]
    assert doc["response_modes_supported"] == ["query"]
    assert doc["grant_types_supported"] == ["authorization_code", "client_credentials",
                                            "password", "refresh_token"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert doc["subject_types_supported"] == ["public"]
    assert doc["scopes_supported"] == ["openid", "profile", "email", "offline_access"]
    # what a relying party receives (ID token, userinfo), not the access token's internals
    assert set(doc["claims_supported"]) == {
        "sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "name",
        "preferred_username", "email", "email_verified"}
    assert doc["authorization_response_iss_parameter_supported"] is True
    assert doc["request_uri_parameter_supported"] is False
    assert doc["introspection_endpoint"] == "http://127.0.0.1:8000/oauth/introspect"
    assert doc["introspection_endpoint_auth_methods_supported"] == [
        "client_secret_basic", "client_secret_post"]


def test_every_endpoint_discovery_names_is_a_route_of_the_app(app):
    """idp.discovery writes the paths out; the blueprints serve them: the two must agree."""
    from idp.discovery import ENDPOINTS

    adapter = app.url_map.bind("127.0.0.1:8000")
    for name, path in ENDPOINTS.items():
        method = "POST" if name in ("token_endpoint", "revocation_endpoint",
                                    "introspection_endpoint") else "GET"
        endpoint, _ = adapter.match(path, method=method)  # raises when nothing serves it
        assert endpoint, name


def test_a_kek_that_cannot_open_the_signing_key_does_not_break_the_public_jwks(
        pg_schema, redis_ns, clean, make_user):
    """A KEK that does not open the active key (a rotated or mistyped IDP_SECRET_KEY) costs
    signing only: the JWKS and token checks need public keys and keep working, and signing
    is a 503 with one log line naming the cause, not a bare 500 ("unhandled exception
    SealingError"; contract §2: 500 is for the unexpected)."""
    user = make_user()
    good = clean.test_client()
    published = good.get("/.well-known/jwks.json").get_json()  # an active key exists
    token = login(good, user["username"], user["password"]).get_json()["token"]
    application = create_app(base_config(DATABASE_URL=pg_schema.url, REDIS_URL=redis_ns.url,
                                         REDIS_KEY_PREFIX=redis_ns.prefix,
                                         SECRET_KEY_VALUE=generate_kek()))
    try:
        with json_logs() as stream:
            web = application.test_client()
            answer = web.get("/.well-known/jwks.json")
            assert answer.status_code == 200 and answer.get_json() == published
            assert web.get("/api/v1/auth/me", headers=bearer(token)).status_code == 200
            for _ in range(2):  # the key is tried once per process, and refused every time
                refused = login(web, user["username"], user["password"])
                assert refused.status_code == 503
                assert refused.get_json()["error"]["code"] == "UNAVAILABLE"
    finally:
        with application.app_context():
            dispose_engines()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    causes = [line for line in lines if line["level"] == "error"]
    assert len(causes) == 1, lines
    assert "key-encryption key" in causes[0]["msg"]
    assert causes[0]["kid"] == published["keys"][0]["kid"]
    assert "unhandled exception" not in stream.getvalue()
    assert "PRIVATE" not in stream.getvalue()
