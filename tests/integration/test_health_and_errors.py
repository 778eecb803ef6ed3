"""/healthz, /readyz, the 500 path, and the JSON request log."""

import json
import logging

from app import create_app
from tests.conftest import base_config
from tests.helpers import free_port, json_logs, login


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
