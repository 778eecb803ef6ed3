"""A revocation whose Redis copy could not be written is never silently lost.

(The checks call ``GET /api/v1/api-keys``, which trusts the token's revocation check alone;
``/auth/me`` would also read the user's disabled flag and hide a lost revocation.)

The durable record is written first; when the copy then fails, the request answers 503 and
the service makes sure a rebuild comes before the revoked token can be accepted again.
"""

import time
import uuid

import pytest
import redis as redis_lib

from app import create_app
from app.extensions import dispose_engines, services
from app.repositories import SqlDurableRevocations
from app.users import create_user
from idp.revocation import RevocationList
from tests.conftest import FAST_ARGON2, base_config, bearer
from tests.helpers import RedisServer


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


@pytest.fixture
def snapshot_redis(tmp_path):
    server = RedisServer(directory=tmp_path)
    yield server
    server.stop()


@pytest.fixture
def worker_on(pg_schema, clean):
    """``worker_on(redis_url)``: an app instance (a worker) on the test's database."""
    apps = []

    def _worker(redis_url):
        apps.append(create_app(base_config(DATABASE_URL=pg_schema.url, REDIS_URL=redis_url,
                                           **FAST_ARGON2)))
        return apps[-1]

    yield _worker
    for application in apps:
        with application.app_context():
            dispose_engines()


def _logged_out_after_a_snapshot(client, server):
    """A token checked (the copy has its epoch), a snapshot, then the token logged out."""
    with client.application.app_context():
        create_user(username="victim", email="v@example.test", password="longpassword")
    token = _login(client, "victim")
    assert client.get("/api/v1/api-keys", headers=bearer(token)).status_code == 200
    redis_lib.Redis.from_url(server.url).save()  # what a lagging replica or the last RDB holds
    assert client.post("/api/v1/auth/logout", headers=bearer(token)).status_code == 204
    assert client.get("/api/v1/api-keys", headers=bearer(token)).status_code == 401
    return token


def test_a_redis_back_from_an_older_snapshot_never_accepts_a_revoked_token(snapshot_redis,
                                                                             worker_on):
    """The stale copy keeps its epoch, so nothing said it was incomplete: its high-water
    mark is older than the one this worker saw, so it is rebuilt before any answer."""
    client = worker_on(snapshot_redis.url).test_client()
    token = _logged_out_after_a_snapshot(client, snapshot_redis)
    snapshot_redis.crash()
    snapshot_redis.start()
    assert client.get("/api/v1/api-keys", headers=bearer(token)).status_code == 401


def test_a_worker_that_never_saw_the_revocation_rebuilds_at_its_readiness_probe(
        snapshot_redis, worker_on):
    """A worker started after the stale restart has seen nothing newer: its readiness probe
    finds the database's latest revocation past the copy's mark and rebuilds."""
    token = _logged_out_after_a_snapshot(worker_on(snapshot_redis.url).test_client(),
                                         snapshot_redis)
    snapshot_redis.crash()
    snapshot_redis.start()
    fresh = worker_on(snapshot_redis.url).test_client()
    assert fresh.get("/readyz").status_code == 200
    assert fresh.get("/api/v1/api-keys", headers=bearer(token)).status_code == 401


@pytest.mark.parametrize("ended_by", ["logout", "reuse"])
def test_a_refresh_family_ended_before_a_stale_restart_stays_ended(snapshot_redis, worker_on,
                                                                   ended_by):
    """The stale copy holds the family as it was before its end (a logout, or the reuse
    that revoked it): the refresh reads the family's durable end with the account, in the
    same statement, so the token it holds stays dead, in a worker that saw nothing newer
    and before any readiness probe."""
    client = worker_on(snapshot_redis.url).test_client()
    with client.application.app_context():
        create_user(username="victim", email="v@example.test", password="longpassword")
    body = client.post("/api/v1/auth/token", json={"username": "victim",
                                                   "password": "longpassword"}).get_json()
    redis_lib.Redis.from_url(snapshot_redis.url).save()  # the family, live, in the snapshot
    if ended_by == "logout":
        assert client.post("/api/v1/auth/logout",
                           headers=bearer(body["token"])).status_code == 204
    else:
        with client.application.app_context():
            services().tokens.families.grace_seconds = 0
        refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
        assert refreshed.status_code == 200
        reused = client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
        assert reused.status_code == 401
    snapshot_redis.crash()
    snapshot_redis.start()
    fresh = worker_on(snapshot_redis.url).test_client()
    answer = fresh.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert answer.status_code == 401


def test_a_rebuild_sets_an_epoch_later_than_any_seen(idp_revocations):
    """Even one seen from a host whose clock runs ahead: the copy must not then look stale
    to this worker for ever."""
    revocations = idp_revocations
    ahead = time.time() + 600
    revocations.copy.saw(ahead, 0, floor=(0.0, 0.0))
    revocations.rebuild()
    epoch = float(revocations.store.mget([revocations.copy.epoch_key])[0])
    assert epoch > ahead
    assert revocations.is_revoked({"jti": "j", "sub": "u", "client_id": "c", "iat": 1}) is False


def _claims():
    now = int(time.time())
    return {"jti": uuid.uuid4().hex, "sub": "user-a", "client_id": "app", "iat": now - 5,
            "exp": now + 3600}


def _another_worker(revocations):
    return RevocationList(revocations.store, SqlDurableRevocations(), revocations.access_ttl,
                          revocations.refresh_ttl)


def test_a_revocation_racing_a_newer_read_in_the_same_process_is_no_stale_copy(
        idp_revocations, monkeypatch):
    """Thread 1 copies a revocation (the mark at H1); meanwhile another worker revokes
    (H2) and thread 2 of this process reads H2. Thread 1's H1 is older than what the
    process has seen, but not older than what it had seen when it began: no 503, and the
    epoch stays (deleting it would fail every check until a rebuild)."""
    revocations = idp_revocations
    other, real_copy = _another_worker(revocations), revocations._copy

    def copy_then_a_newer_read(records, now):
        state = real_copy(records, now)
        other.revoke_user("someone-else")
        assert revocations.copy.is_revoked(_claims()) is False  # thread 2
        return state

    monkeypatch.setattr(revocations, "_copy", copy_then_a_newer_read)
    revocations.revoke_access_token("jti-1", int(time.time()) + 600)
    monkeypatch.undo()
    assert revocations.store.exists(revocations.copy.epoch_key)
    assert revocations.is_revoked({**_claims(), "jti": "jti-1"}) is True


def test_a_check_racing_a_newer_read_is_neither_stale_nor_a_rebuild(
        idp_revocations, downstream, monkeypatch):
    """The same race on a check, at the IdP and in a resource server reading the copy."""
    revocations, rebuilds = idp_revocations, []
    real_rebuild = revocations.rebuild
    monkeypatch.setattr(revocations, "rebuild", lambda: (rebuilds.append(1), real_rebuild()))
    for copy, check in [(revocations.copy, revocations.is_revoked),
                        (downstream.copy, lambda claims: not downstream(claims))]:
        real_mget, first = copy.store.mget, []

        def mget_then_a_newer_read(keys, copy=copy, real_mget=real_mget, first=first):
            values = real_mget(keys)
            if not first:
                first.append(1)
                _another_worker(revocations).revoke_user("someone-else")
                assert copy.is_revoked(_claims()) is False  # thread 2, the newer mark
            return values

        monkeypatch.setattr(copy.store, "mget", mget_then_a_newer_read)
        assert check(_claims()) is False
    assert rebuilds == []


def test_a_rebuild_with_nothing_to_copy_still_moves_the_epoch_forward(ctx):
    """Past an epoch another host set, though this process never saw it: a resource server
    that did must not find the rebuilt copy older (it cannot rebuild; it would answer 503)."""
    revocations = services().revocations
    ahead = time.time() + 600
    revocations.store.set(revocations.copy.epoch_key, f"{ahead:.3f}")
    revocations.rebuild()
    assert float(revocations.store.mget([revocations.copy.epoch_key])[0]) > ahead
