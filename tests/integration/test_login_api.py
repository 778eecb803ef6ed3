"""POST /api/v1/auth/token against PostgreSQL and Redis (contract §3, §5)."""

import re
import time

import argon2
import pytest
from joserfc import jwt
from joserfc.jwk import KeySet

from app import create_app
from app.extensions import dispose_engines
from tests.conftest import FAST_ARGON2, audit_events, base_config
from tests.helpers import jwt_parts, login

RFC3339_Z = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def _verify(client, token):
    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    return jwt.decode(token, keys, algorithms=["RS256"])


def test_login_returns_the_seed_shape_and_a_verifiable_token(client, make_user, make_tenant):
    tenant = make_tenant()
    user = make_user(tenants={tenant: "editor"})
    response = login(client, user["username"], user["password"])
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.get_json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 3600
    assert RFC3339_Z.match(body["expires_at"])
    assert body["user"] == {
        "id": user["id"], "username": user["username"],
        "email": f"{user['username']}@example.test", "roles": [],
        "tenants": [{"id": tenant, "role": "editor"}],
    }
    decoded = _verify(client, body["token"])
    assert decoded.header["alg"] == "RS256"
    assert decoded.header["typ"] == "at+jwt"
    assert decoded.header["kid"]
    claims = decoded.claims
    assert claims["iss"] == "http://127.0.0.1:8000"
    assert claims["aud"] == "infracast-api"
    assert claims["sub"] == user["id"]
    assert claims["exp"] - claims["iat"] == 3600
    assert claims["nbf"] == claims["iat"]
    assert claims["jti"]
    assert claims["client_id"] == "infracast"
    assert claims["roles"] == []
    assert claims["tenants"] == {tenant: ["nodes:read", "findings:read", "jobs:read",
                                          "reports:read", "nodes:write", "findings:write",
                                          "jobs:write"]}
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(claims["exp"])) == body["expires_at"]


def test_tenant_scoped_token_holds_that_tenant_alone(client, make_user, make_tenant):
    viewer_in, editor_in, other = make_tenant(), make_tenant(), make_tenant()
    user = make_user(tenants={viewer_in: "viewer", editor_in: "editor"})
    body = login(client, user["username"], user["password"], tenant=viewer_in).get_json()
    assert jwt_parts(body["token"])[1]["tenants"] == {
        viewer_in: sorted(["nodes:read", "findings:read", "jobs:read", "reports:read"])}
    refused = login(client, user["username"], user["password"], tenant=other)
    assert refused.status_code == 403
    assert refused.get_json() == {"error": {"code": "FORBIDDEN", "message": "Insufficient permissions"}}


def test_a_token_asked_for_a_tenant_the_user_holds_no_role_in_is_403_and_audited(
        client, clean, make_user, make_tenant):
    home, other = make_tenant(), make_tenant()
    user = make_user(tenants={home: "viewer"})
    refused = login(client, user["username"], user["password"], tenant=other)
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "FORBIDDEN"
    assert [(r["outcome"], r["actor"], r["target"], r["details"])
            for r in audit_events(clean, "tenant.access")] == [
        ("denied", user["id"], other, {"reason": "escalation"})]


def test_platform_admin_scoped_to_one_tenant_loses_the_platform_role(client, make_user, make_tenant):
    tenant = make_tenant()
    admin = make_user(roles=["admin"])
    claims = jwt_parts(login(client, admin["username"], admin["password"]).get_json()["token"])[1]
    assert claims["roles"] == ["admin"] and claims["tenants"] == {"*": ["admin:*"]}
    scoped = jwt_parts(login(client, admin["username"], admin["password"],
                             tenant=tenant).get_json()["token"])[1]
    assert scoped["roles"] == [] and scoped["tenants"] == {tenant: ["admin:*"]}
    missing = login(client, admin["username"], admin["password"], tenant="no-such-tenant")
    assert missing.status_code == 404


def test_unknown_user_wrong_password_and_disabled_user_look_the_same(client, make_user):
    good = make_user()
    disabled = make_user(disabled=True)
    answers = [
        login(client, "nobody-" + good["username"], good["password"]),
        login(client, good["username"], "wrong password"),
        login(client, disabled["username"], disabled["password"]),
    ]
    assert {r.status_code for r in answers} == {401}
    assert all(r.get_json() == {"error": {"code": "UNAUTHORIZED",
                                          "message": "Invalid username or password"}}
               for r in answers)
    assert all(r.headers["WWW-Authenticate"].startswith("Bearer") for r in answers)


def test_unknown_user_costs_an_argon2_verification(client, make_user, monkeypatch):
    """The work of a wrong password, counted rather than timed: one argon2id verification,
    at the configured parameters, against a dummy hash (the real one runs)."""
    user = make_user()
    verified = []
    original = argon2.PasswordHasher.verify

    def counted(self, hash, password):
        verified.append(hash.split("$")[3])  # "m=…,t=…,p=…"
        return original(self, hash, password)

    monkeypatch.setattr(argon2.PasswordHasher, "verify", counted)
    login(client, user["username"], "wrong password")
    login(client, "ghost-" + user["username"], "wrong password")
    assert len(verified) == 2 and verified[0] == verified[1]


@pytest.mark.parametrize("body, field", [
    ({"username": 123, "password": "x"}, "username"),
    ({"username": "a", "password": ["x"]}, "password"),
    ({"username": "a"}, "password"),
    ({"password": "x"}, "username"),
    ({"username": "a", "password": "x", "tenant": 5}, "tenant"),
    ({"username": "", "password": "x"}, "username"),
])
def test_wrong_types_name_the_field(client, body, field):
    response = client.post("/api/v1/auth/token", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "INVALID_REQUEST" and f"'{field}'" in error["message"]


def test_body_shape_errors(client):
    not_json = client.post("/api/v1/auth/token", data="username=a", content_type="text/plain")
    assert not_json.status_code == 400 and not_json.get_json()["error"]["code"] == "INVALID_REQUEST"
    broken = client.post("/api/v1/auth/token", data='{"username": ', content_type="application/json")
    assert broken.status_code == 400 and "JSON" in broken.get_json()["error"]["message"]
    array = client.post("/api/v1/auth/token", json=["a"])
    assert array.status_code == 400
    huge = client.post("/api/v1/auth/token", data='{"username": "' + "a" * 70000 + '"}',
                       content_type="application/json")
    assert huge.status_code == 413
    assert huge.get_json()["error"]["code"] == "INVALID_REQUEST"


def test_404_and_405_use_the_envelope(client):
    missing = client.get("/api/v1/no-such-thing")
    assert missing.status_code == 404
    assert missing.get_json() == {"error": {"code": "NOT_FOUND", "message": "Not found"}}
    wrong_method = client.get("/api/v1/auth/token")
    assert wrong_method.status_code == 405
    assert wrong_method.get_json()["error"]["code"] == "INVALID_REQUEST"
    assert "POST" in wrong_method.headers["Allow"]


def test_request_id_is_returned_and_a_safe_one_is_kept(client):
    assert len(client.get("/healthz").headers["X-Request-Id"]) >= 16
    kept = client.get("/healthz", headers={"X-Request-Id": "abcdef12-3456"})
    assert kept.headers["X-Request-Id"] == "abcdef12-3456"
    replaced = client.get("/healthz", headers={"X-Request-Id": "bad id with spaces"})
    assert replaced.headers["X-Request-Id"] != "bad id with spaces"


def test_one_ipv6_host_cannot_lock_an_account_by_rotating_addresses_in_its_prefix(
        pg_schema, redis_ns, clean, make_user):
    """README (Brute-force protection): "one address hammering an account cannot lock its
    owner out". A /64 is one host (RFC 6177, RFC 7421), so its addresses share one counter:
    5 guesses from each of 20 of them get the free attempts once, then 429, and the
    account counter never comes near the threshold; the owner, from elsewhere, signs in."""
    user = make_user()
    # a base delay no test run outlasts: every try after the free ones falls inside a wait
    application = create_app(base_config(DATABASE_URL=pg_schema.url, REDIS_URL=redis_ns.url,
                                         REDIS_KEY_PREFIX=redis_ns.prefix, LOGIN_BASE_DELAY=60,
                                         **FAST_ARGON2))
    try:
        body = {"username": user["username"], "password": "wrong guess"}
        statuses = []
        for host in range(1, 21):  # 20 addresses of 2001:db8:1:2::/64
            attacker = application.test_client()
            attacker.environ_base["REMOTE_ADDR"] = f"2001:db8:1:2::{host:x}"
            for _ in range(5):  # LOGIN_FREE_ATTEMPTS
                statuses.append(attacker.post("/api/v1/auth/token", json=body).status_code)
        # free attempts, plus the one that starts the first wait, checked a password
        assert statuses[:6] == [401] * 6
        assert statuses[6:] == [429] * 94
        owner = application.test_client()
        owner.environ_base["REMOTE_ADDR"] = "198.51.100.7"
        answer = login(owner, user["username"], user["password"])
        assert answer.status_code == 200, (answer.status_code, answer.headers.get("Retry-After"))
        # another host (another /64) is not slowed by its neighbour
        neighbour = application.test_client()
        neighbour.environ_base["REMOTE_ADDR"] = "2001:db8:1:3::1"
        assert login(neighbour, user["username"], user["password"]).status_code == 200
    finally:
        with application.app_context():
            dispose_engines()
