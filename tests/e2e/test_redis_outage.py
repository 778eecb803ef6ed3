"""Redis stopped mid-test (fail closed, then recovery) and restarted empty (rebuild)."""

import pytest
import requests

from app.clients import register_client
from tests.e2e.conftest import LiveServer, create_test_user, post_json
from tests.helpers import basic_auth

pytestmark = pytest.mark.e2e


def _me(url, token):
    return requests.get(url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=15)


def test_fail_closed_while_down_and_no_revoked_token_accepted_after_an_empty_restart(
        server_backends, backend_app, own_redis, tmp_path):
    create_test_user(backend_app, "outage")
    with backend_app.app_context():
        registered = register_client({"client_name": "RP", "grant_types": ["password", "refresh_token"],
                                      "token_endpoint_auth_method": "client_secret_basic"})
        auth = basic_auth(registered.client.client_id, registered.client_secret)
    server = LiveServer({**server_backends, "REDIS_URL": own_redis.url}, tmp_path=tmp_path)
    try:
        url = server.url
        credentials = {"username": "outage", "password": "correct horse battery"}
        revoked = post_json(url + "/api/v1/auth/token", credentials).json()
        kept = post_json(url + "/api/v1/auth/token", credentials).json()
        oauth = requests.post(url + "/oauth/token", data={"grant_type": "password", **credentials},
                              headers=auth, timeout=15).json()
        assert post_json(url + "/api/v1/auth/logout", {},
                         headers={"Authorization": f"Bearer {revoked['token']}"}).status_code == 204
        assert _me(url, revoked["token"]).status_code == 401
        assert _me(url, kept["token"]).status_code == 200

        own_redis.stop()
        down = post_json(url + "/api/v1/auth/refresh", {"refresh_token": kept["refresh_token"]})
        assert down.status_code == 503
        assert down.json() == {"error": {"code": "UNAVAILABLE",
                                         "message": "Service temporarily unavailable"}}
        me = _me(url, kept["token"])
        assert me.status_code == 503 and me.json()["error"]["code"] == "UNAVAILABLE"
        assert _me(url, revoked["token"]).status_code == 503  # never accepted
        assert post_json(url + "/api/v1/auth/token", credentials).status_code == 503
        oauth_down = requests.post(url + "/oauth/token", data={
            "grant_type": "refresh_token", "refresh_token": oauth["refresh_token"]},
            headers=auth, timeout=15)
        assert oauth_down.status_code == 503
        assert oauth_down.json()["error"] == "temporarily_unavailable"
        assert requests.get(url + "/readyz", timeout=15).status_code == 503

        own_redis.start()  # back, and empty
        assert _me(url, revoked["token"]).status_code == 401  # rebuilt from PostgreSQL
        assert _me(url, kept["token"]).status_code == 200
        # refresh families did not survive the empty Redis: the user signs in again
        assert post_json(url + "/api/v1/auth/refresh",
                         {"refresh_token": kept["refresh_token"]}).status_code == 401
        assert post_json(url + "/api/v1/auth/token", credentials).status_code == 200
        assert requests.get(url + "/readyz", timeout=15).status_code == 200
        assert "revocation.rebuild" in server.log()
    finally:
        server.stop()
