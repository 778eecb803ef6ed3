"""A revocation whose Redis copy could not be written is never silently lost.

(The checks call ``GET /api/v1/api-keys``, which trusts the token's revocation check alone;
``/auth/me`` would also read the user's disabled flag and hide a lost revocation.)

The durable record is written first; when the copy then fails, the request answers 503 and
the service makes sure a rebuild comes before the revoked token can be accepted again.
"""

import pytest
import redis as redis_lib

from app import create_app
from app.extensions import dispose_engines
from app.users import create_user
from tests.conftest import FAST_ARGON2, base_config, bearer


def _login(client, username):
    return client.post("/api/v1/auth/token", json={"username": username,
                                                   "password": "longpassword"}).get_json()["token"]


@pytest.fixture
def two_workers(pg_schema, own_redis, clean):
    """Two app instances (two workers) on one database and one Redis of the test's own, an
    admin's token, and a victim's token that the second worker accepts."""
    apps = [create_app(base_config(DATABASE_URL=pg_schema.url, REDIS_URL=own_redis.url,
                                   **FAST_ARGON2)) for _ in range(2)]
    with apps[0].app_context():
        create_user(username="boss", email="b@example.test", password="longpassword",
                    platform_roles=["admin"])
        victim_id = create_user(username="victim", email="v@example.test",
                                password="longpassword").id
    client, other = apps[0].test_client(), apps[1].test_client()
    admin, victim = _login(client, "boss"), _login(client, "victim")
    assert other.get("/api/v1/api-keys", headers=bearer(victim)).status_code == 200
    yield client, other, admin, victim, victim_id, redis_lib.Redis.from_url(own_redis.url)
    for application in apps:
        with application.app_context():
            dispose_engines()


def _disable_while_redis_refuses(client, admin, victim_id, server, *commands):
    server.execute_command("ACL", "SETUSER", "default", *commands)
    try:
        return client.patch(f"/api/v1/admin/users/{victim_id}", json={"disabled": True},
                            headers=bearer(admin))
    finally:
        server.execute_command("ACL", "SETUSER", "default", "+@all")


def test_a_failed_copy_is_rebuilt_before_the_token_is_accepted(two_workers):
    client, other, admin, victim, victim_id, server = two_workers
    response = _disable_while_redis_refuses(client, admin, victim_id, server, "-eval", "-evalsha")
    assert response.status_code == 503  # the copy failed; the disable itself is durable
    # this worker, and another one, refuse the disabled user's token from now on
    assert client.get("/api/v1/api-keys", headers=bearer(victim)).status_code == 401
    assert other.get("/api/v1/api-keys", headers=bearer(victim)).status_code == 401
    assert client.get("/readyz").status_code == 200


def test_readiness_rebuilds_when_the_copy_is_pending(two_workers):
    """Redis refuses the copy and the epoch's removal alike (say it died right after the
    admin's request was authenticated): the pending mark in the database makes the next
    readiness probe of every worker rebuild the copy."""
    client, other, admin, victim, victim_id, server = two_workers
    response = _disable_while_redis_refuses(client, admin, victim_id, server,
                                            "-eval", "-evalsha", "-del")
    assert response.status_code == 503
    assert other.get("/readyz").status_code == 200  # the probe sees the pending mark
    assert other.get("/api/v1/api-keys", headers=bearer(victim)).status_code == 401
