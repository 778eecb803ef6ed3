"""/healthz, /readyz, the 500 path, the JSON request log, and the bearer challenges."""

import json
import logging

import pytest

from app import create_app
from tests.conftest import base_config
from tests.helpers import bearer, free_port, json_logs, login


def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"] == {"database": "ok", "redis": "ok", "revocations": "ok"}


def test_readyz_is_503_when_redis_or_the_database_is_down(pg_schema, redis_ns, tmp_path):
    dead_redis = create_app(base_config(DATABASE_URL=pg_schema.url,
                                        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))
    response = dead_redis.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "ok", "redis": "down",
                                             "revocations": "down"}
    dead_db = create_app(base_config(
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{free_port()}/test",
        REDIS_URL=redis_ns.url, REDIS_KEY_PREFIX=redis_ns.prefix))
    response = dead_db.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"] == {"database": "down", "redis": "ok",
                                             "revocations": "down"}


def test_unexpected_errors_are_a_bare_500_without_details(tmp_path):
    app = create_app(base_config(DATABASE_URL=f"sqlite:///{tmp_path / 'x.db'}"))

    @app.get("/api/v1/explode")
    def explode():
        raise RuntimeError("secret=hunter2 in a message")

    with json_logs() as stream:
        response = app.test_client().get("/api/v1/explode")
    assert response.status_code == 500
    assert response.get_json() == {"error": {"code": "INTERNAL", "message": "Internal server error"}}
    logged = stream.getvalue()
    assert "RuntimeError" in logged
    assert "hunter2" not in logged and "Traceback" not in logged


def test_one_json_log_line_per_request_without_secrets(client, make_user):
    user = make_user(password="a-very-secret-password")
    with json_logs(logging.INFO) as stream:
        token = login(client, user["username"], user["password"]).get_json()["token"]
        client.get("/healthz?code=should-not-be-logged")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    requests = [line for line in lines if line["msg"] == "request"]
    assert [r["path"] for r in requests] == ["/api/v1/auth/token", "/healthz"]
    assert all(r["request_id"] and r["status"] in (200,) for r in requests)
    text = stream.getvalue()
    for secret in ("a-very-secret-password", token, "should-not-be-logged"):
        assert secret not in text


# -- RFC 6750 §3.1: a request without Bearer credentials gets no error code -----------------

@pytest.mark.parametrize("method, path, kwargs", [
    ("get", "/oauth/userinfo", {}),                                             # no header
    ("get", "/oauth/userinfo", {"headers": {"Authorization": "Basic eDp5"}}),   # another scheme
    ("post", "/oauth/userinfo", {"data": {"access_token": "x"}}),               # unsupported method
    ("get", "/api/v1/auth/me", {}),
    ("get", "/api/v1/admin/users", {}),
])
def test_a_request_without_bearer_credentials_gets_a_challenge_without_an_error_code(
        client, method, path, kwargs):
    """RFC 6750 §3.1: "If the request lacks any authentication information (e.g., the client
    was unaware that authentication is necessary or attempted using an unsupported
    authentication method), the resource server SHOULD NOT include an error code or other
    error information" -- as the project's own resource server does
    (idp/verifier_flask.py ``_unauthorized``)."""
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer")
    assert "error=" not in challenge, challenge


def test_a_failed_password_login_does_not_answer_invalid_token(client, make_user):
    """/api/v1/auth/token carries no access token at all: its 401 is not an invalid_token
    (contract §2: 401 "with WWW-Authenticate: Bearer")."""
    user = make_user()
    response = client.post("/api/v1/auth/token",
                           json={"username": user["username"], "password": "wrong"})
    assert response.status_code == 401
    assert 'error="invalid_token"' not in response.headers["WWW-Authenticate"]


# -- RFC 6750 §3: a token that does not enable access gets a WWW-Authenticate ----------------

@pytest.mark.parametrize("path", ["/api/v1/admin/users", "/api/v1/admin/sso",
                                  "/api/v1/admin/clients"])
def test_a_403_for_a_token_without_the_right_carries_a_bearer_challenge(
        client, make_user, token_for, path):
    """RFC 6750 §3: a request that "does not contain an access token that enables access to
    the protected resource" MUST get WWW-Authenticate (with error="insufficient_scope",
    §3.1), as /oauth/userinfo and the reference resource server answer their 403s."""
    token = token_for(make_user())  # a valid token of a user who is no platform admin
    response = client.get(path, headers=bearer(token))
    assert response.status_code == 403
    assert response.headers.get("WWW-Authenticate") == 'Bearer error="insufficient_scope"'


@pytest.mark.parametrize("path", ["/oauth/userinfo", "/api/v1/auth/me", "/api/v1/admin/users"])
def test_a_bad_bearer_token_is_named_invalid_token(client, path):
    response = client.get(path, headers=bearer("a.b.c"))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
