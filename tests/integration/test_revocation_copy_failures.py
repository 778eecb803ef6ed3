"""A revocation whose Redis copy could not be written is never silently lost.

(The checks call ``GET /api/v1/api-keys``, which trusts the token's revocation check alone;
``/auth/me`` would also read the user's disabled flag and hide a lost revocation.)

The durable record is written first; when the copy then fails, the request answers 503 and
the service makes sure a rebuild comes before the revoked token can be accepted again.
"""

import redis as redis_lib

from app import create_app
from app.extensions import dispose_engines
from app.users import create_user
from tests.conftest import FAST_ARGON2, base_config, bearer


def _app(pg_schema, own_redis):
    return create_app(base_config(DATABASE_URL=pg_schema.url, REDIS_URL=own_redis.url,
                                  **FAST_ARGON2))


def _login(client, username):
    return client.post("/api/v1/auth/token", json={"username": username,
                                                   "password": "longpassword"}).get_json()["token"]


def test_a_failed_copy_is_rebuilt_before_the_token_is_accepted(pg_schema, own_redis, clean):
    app, other_worker = _app(pg_schema, own_redis), _app(pg_schema, own_redis)
    try:
        with app.app_context():
            create_user(username="boss", email="b@example.test", password="longpassword",
                        platform_roles=["admin"])
            victim_id = create_user(username="victim", email="v@example.test",
                                    password="longpassword").id
        client, other = app.test_client(), other_worker.test_client()
        admin, victim = _login(client, "boss"), _login(client, "victim")
        assert other.get("/api/v1/api-keys", headers=bearer(victim)).status_code == 200

        server = redis_lib.Redis.from_url(own_redis.url)
        server.execute_command("ACL", "SETUSER", "default", "-eval", "-evalsha")  # scripts refused
        try:
            response = client.patch(f"/api/v1/admin/users/{victim_id}", json={"disabled": True},
                                    headers=bearer(admin))
        finally:
            server.execute_command("ACL", "SETUSER", "default", "+@all")
        assert response.status_code == 503  # the copy failed; the disable itself is durable

        # this worker, and another one, refuse the disabled user's token from now on
        assert client.get("/api/v1/api-keys", headers=bearer(victim)).status_code == 401
        assert other.get("/api/v1/api-keys", headers=bearer(victim)).status_code == 401
        assert client.get("/readyz").status_code == 200
    finally:
        for application in (app, other_worker):
            with application.app_context():
                dispose_engines()


def test_readiness_rebuilds_when_the_copy_is_pending(pg_schema, own_redis, clean):
    """Redis refuses the copy and the epoch's removal alike (say it died right after the
    admin's request was authenticated): the pending mark in the database makes the next
    readiness probe of every worker rebuild the copy."""
    app, other_worker = _app(pg_schema, own_redis), _app(pg_schema, own_redis)
    try:
        with app.app_context():
            create_user(username="boss", email="b@example.test", password="longpassword",
                        platform_roles=["admin"])
            victim_id = create_user(username="victim", email="v@example.test",
                                    password="longpassword").id
        client, other = app.test_client(), other_worker.test_client()
        admin, victim = _login(client, "boss"), _login(client, "victim")
        assert other.get("/api/v1/api-keys", headers=bearer(victim)).status_code == 200

        server = redis_lib.Redis.from_url(own_redis.url)
        server.execute_command("ACL", "SETUSER", "default", "-eval", "-evalsha", "-del")
        try:
            response = client.patch(f"/api/v1/admin/users/{victim_id}", json={"disabled": True},
                                    headers=bearer(admin))
        finally:
            server.execute_command("ACL", "SETUSER", "default", "+@all")
        assert response.status_code == 503
        assert other.get("/readyz").status_code == 200  # the probe sees the pending mark
        assert other.get("/api/v1/api-keys", headers=bearer(victim)).status_code == 401
    finally:
        for application in (app, other_worker):
            with application.app_context():
                dispose_engines()
