"""Refresh, logout, /me and RFC 7009 revocation over the app (PostgreSQL + Redis)."""

import io
import json

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from app.clients import register_client
from app.extensions import db, services
from app.models import Membership
from tests.conftest import audit_events
from tests.helpers import basic_auth, jwt_parts, login


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def session(client, make_user, make_tenant):
    tenant = make_tenant()
    user = make_user(tenants={tenant: "viewer"})
    body = login(client, user["username"], user["password"]).get_json()
    return {**body, "account": user, "tenant": tenant}


def test_login_returns_a_refresh_token_and_refresh_rotates_it(client, session):
    assert session["refresh_token"]
    response = client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"token", "token_type", "expires_at", "expires_in", "refresh_token"}
    assert body["refresh_token"] != session["refresh_token"]
    old, new = jwt_parts(session["token"])[1], jwt_parts(body["token"])[1]
    assert new["sid"] == old["sid"] and new["jti"] != old["jti"]
    assert new["auth_time"] == old["auth_time"]
    assert client.get("/api/v1/auth/me", headers=_bearer(body["token"])).status_code == 200


def test_reuse_revokes_the_family_and_its_access_tokens(client, session, ctx, monkeypatch):
    monkeypatch.setattr(services().tokens.families, "grace_seconds", 0)  # the grace is off
    rotated = client.post("/api/v1/auth/refresh",
                          json={"refresh_token": session["refresh_token"]}).get_json()
    reused = client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert reused.status_code == 401
    assert reused.get_json()["error"]["code"] == "UNAUTHORIZED"
    # the newest refresh token and every access token of the family are dead
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": rotated["refresh_token"]}).status_code == 401
    for token in (session["token"], rotated["token"]):
        me = client.get("/api/v1/auth/me", headers=_bearer(token))
        assert me.status_code == 401
        assert me.get_json() == {"error": {"code": "UNAUTHORIZED",
                                           "message": "Invalid or expired token"}}


def test_refreshed_tokens_carry_current_roles(client, session, ctx):
    db.session.execute(sa.update(Membership).where(Membership.user_id == session["account"]["id"])
                       .values(role="editor"))
    db.session.commit()
    body = client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]}).get_json()
    assert "nodes:write" in jwt_parts(body["token"])[1]["tenants"][session["tenant"]]


def test_revoked_user_cannot_refresh_or_use_access_tokens(client, session, ctx):
    with freeze_time() as frozen:
        frozen.tick(2)
        services().tokens.revoke_user(session["account"]["id"])
        assert client.get("/api/v1/auth/me", headers=_bearer(session["token"])).status_code == 401
        assert client.post("/api/v1/auth/refresh",
                           json={"refresh_token": session["refresh_token"]}).status_code == 401
        frozen.tick(2)
        fresh = login(client, session["account"]["username"], session["account"]["password"]).get_json()
        assert client.get("/api/v1/auth/me", headers=_bearer(fresh["token"])).status_code == 200


def test_absolute_expiry_of_the_family(client, make_user):
    user = make_user()
    with freeze_time() as frozen:
        body = login(client, user["username"], user["password"]).get_json()
        frozen.tick(604800 - 60)
        body = client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]}).get_json()
        frozen.tick(61)
        expired = client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
        assert expired.status_code == 401


def test_logout_ends_the_access_token_and_the_family(client, session):
    response = client.post("/api/v1/auth/logout", headers=_bearer(session["token"]))
    assert response.status_code == 204
    assert client.get("/api/v1/auth/me", headers=_bearer(session["token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": session["refresh_token"]}).status_code == 401
    assert client.post("/api/v1/auth/logout", headers=_bearer(session["token"])).status_code == 401


def test_logout_with_another_refresh_family_of_the_same_user(client, session):
    other = login(client, session["account"]["username"], session["account"]["password"]).get_json()
    response = client.post("/api/v1/auth/logout", headers=_bearer(session["token"]),
                           json={"refresh_token": other["refresh_token"]})
    assert response.status_code == 204
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": other["refresh_token"]}).status_code == 401


def test_logout_reads_a_chunked_body(client, session):
    """HTTP/1.1 chunked framing declares no Content-Length; the optional body still counts."""
    other = login(client, session["account"]["username"], session["account"]["password"]).get_json()
    response = client.post(
        "/api/v1/auth/logout",
        input_stream=io.BytesIO(json.dumps({"refresh_token": other["refresh_token"]}).encode()),
        headers={**_bearer(session["token"]), "Content-Type": "application/json",
                 "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 204
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": other["refresh_token"]}).status_code == 401


def test_me_and_bearer_errors(client, session):
    me = client.get("/api/v1/auth/me", headers=_bearer(session["token"]))
    assert me.get_json()["username"] == session["account"]["username"]
    for headers in ({}, {"Authorization": "Basic abc"}, _bearer("garbage"),
                    _bearer(session["token"][:-4] + "AAAA")):
        response = client.get("/api/v1/auth/me", headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_refresh_body_errors(client):
    assert client.post("/api/v1/auth/refresh", json={}).status_code == 400
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": 5}).status_code == 400
    assert client.post("/api/v1/auth/refresh", json={"refresh_token": "x.y"}).status_code == 401


@pytest.fixture
def oauth_client(ctx):
    registered = register_client({"client_name": "App", "grant_types": ["password", "refresh_token"],
                                  "token_endpoint_auth_method": "client_secret_basic",
                                  "scope": "profile email offline_access"})
    return registered.client.client_id, registered.client_secret


def _password_grant(client, oauth_client, user, **extra):
    return client.post("/oauth/token", data={"grant_type": "password", "username": user["username"],
                                              "password": user["password"], **extra},
                       headers=basic_auth(*oauth_client)).get_json()


def test_refresh_grant_on_oauth_token(client, oauth_client, make_user):
    user = make_user()
    first = _password_grant(client, oauth_client, user)
    assert first["refresh_token"]
    auth = basic_auth(*oauth_client)
    narrowed = client.post("/oauth/token", data={"grant_type": "refresh_token", "scope": "profile",
                                                 "refresh_token": first["refresh_token"]}, headers=auth)
    assert narrowed.status_code == 200
    body = narrowed.get_json()
    assert body["scope"] == "profile" and body["refresh_token"] != first["refresh_token"]
    wider = client.post("/oauth/token", data={"grant_type": "refresh_token", "scope": "openid",
                                              "refresh_token": body["refresh_token"]}, headers=auth)
    assert wider.get_json()["error"] == "invalid_scope"
    # the refused request consumed nothing; the family's own scope is unchanged
    again = client.post("/oauth/token", data={"grant_type": "refresh_token",
                                              "refresh_token": body["refresh_token"]}, headers=auth)
    assert again.get_json()["scope"] == "profile email offline_access"


def test_only_the_issuing_client_may_refresh(client, oauth_client, make_user, ctx):
    user = make_user()
    first = _password_grant(client, oauth_client, user)
    other = register_client({"client_name": "Other", "grant_types": ["password", "refresh_token"],
                             "token_endpoint_auth_method": "client_secret_post"})
    stolen = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": first["refresh_token"],
        "client_id": other.client.client_id, "client_secret": other.client_secret})
    assert stolen.status_code == 400 and stolen.get_json()["error"] == "invalid_grant"
    api = client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert api.status_code == 401
    still = client.post("/oauth/token", data={"grant_type": "refresh_token",
                                              "refresh_token": first["refresh_token"]},
                        headers=basic_auth(*oauth_client))
    assert still.status_code == 200


def test_deleting_a_client_ends_what_it_holds_at_once(client, oauth_client, make_user, ctx,
                                                      token_for):
    """Its access tokens are revoked (a watermark on its client_id, kept in the database as
    every revocation is), and its refresh tokens die with it; other clients' tokens of the
    same user stand."""
    user, admin = make_user(), make_user(roles=["admin"])
    doomed = _password_grant(client, oauth_client, user)
    other = register_client({"client_name": "Other", "grant_types": ["password"],
                             "token_endpoint_auth_method": "client_secret_basic"})
    kept = _password_grant(client, (other.client.client_id, other.client_secret), user)
    assert client.get("/api/v1/auth/me", headers=_bearer(doomed["access_token"])).status_code == 200
    assert client.delete(f"/api/v1/admin/clients/{oauth_client[0]}",
                         headers=_bearer(token_for(admin))).status_code == 204

    assert client.get("/api/v1/auth/me", headers=_bearer(doomed["access_token"])).status_code == 401
    assert client.get("/api/v1/auth/me", headers=_bearer(kept["access_token"])).status_code == 200
    refresh = client.post("/oauth/token", headers=basic_auth(*oauth_client), data={
        "grant_type": "refresh_token", "refresh_token": doomed["refresh_token"]})
    assert refresh.status_code == 401 and refresh.get_json()["error"] == "invalid_client"
    # an emptied Redis is rebuilt from the durable record: still revoked
    services().store.delete(services().revocations.copy.epoch_key)
    assert client.get("/api/v1/auth/me", headers=_bearer(doomed["access_token"])).status_code == 401


@pytest.fixture
def other_worker(pg_schema, redis_ns):
    """``other_worker(**config)``: a second app instance (another worker) on the test's
    database and Redis."""
    from app import create_app
    from app.extensions import dispose_engines
    from tests.conftest import base_config

    apps = []

    def _make(**config):
        apps.append(create_app(base_config(DATABASE_URL=pg_schema.url, REDIS_URL=redis_ns.url,
                                           REDIS_KEY_PREFIX=redis_ns.prefix, **config)))
        return apps[-1]

    yield _make
    for application in apps:
        with application.app_context():
            dispose_engines()


def _machine_client(app) -> tuple[str, dict, dict]:
    """A client_credentials client: its id, its Basic header and the grant's form."""
    with app.app_context():
        service = register_client({"client_name": "Scanner",
                                   "grant_types": ["client_credentials"],
                                   "token_endpoint_auth_method": "client_secret_basic"})
        client_id, secret = service.client.client_id, service.client_secret
    return client_id, basic_auth(client_id, secret), {"grant_type": "client_credentials"}


def test_a_deleted_client_gets_nothing_good_from_a_worker_that_still_knows_it(
        clean, other_worker, make_user, token_for, client):
    """Another worker keeps the client in its cache for CLIENT_CACHE_SECONDS: what it
    issues the client in that time is revoked with the rest."""
    other = other_worker(CLIENT_CACHE_SECONDS=30).test_client()
    client_id, auth, grant = _machine_client(clean)
    assert other.post("/oauth/token", data=grant, headers=auth).status_code == 200  # cached
    admin = _bearer(token_for(make_user(roles=["admin"])))
    assert client.delete(f"/api/v1/admin/clients/{client_id}", headers=admin).status_code == 204

    late = other.post("/oauth/token", data=grant, headers=auth)
    assert late.status_code == 200  # the other worker still knows it, for a while
    with clean.app_context():
        claims = services().validator.verify(late.get_json()["access_token"])
        assert services().revocations.is_revoked(claims)


def test_a_worker_that_reads_a_client_while_it_is_deleted_gets_nothing_good(
        clean, other_worker, make_user, token_for, client, monkeypatch):
    """A worker that loads the client after the first watermark and before the delete
    commits knows it until CLIENT_CACHE_SECONDS after its read, past that watermark: what
    it issues then is revoked by the second one, recorded after the delete."""
    from idp.revocation import RevocationList

    other = other_worker().test_client()
    client_id, auth, grant = _machine_client(clean)
    with clean.app_context():
        cache = services().clients.cache_seconds
    original, first = RevocationList.revoke_client, []
    with freeze_time("2026-11-29 12:00:00") as clock:
        admin = _bearer(token_for(make_user(roles=["admin"])))

        def revoke_client(self, *args, **kwargs):
            original(self, *args, **kwargs)
            if not first:  # between the first watermark and the delete
                first.append(True)
                clock.tick(cache / 2)
                assert other.post("/oauth/token", data=grant, headers=auth).status_code == 200

        monkeypatch.setattr(RevocationList, "revoke_client", revoke_client)
        assert client.delete(f"/api/v1/admin/clients/{client_id}",
                             headers=admin).status_code == 204
        monkeypatch.undo()
        clock.tick(cache * 0.75)  # past the first watermark, within the worker's copy
        late = other.post("/oauth/token", data=grant, headers=auth)
        assert late.status_code == 200
        with clean.app_context():
            claims = services().validator.verify(late.get_json()["access_token"])
            assert services().revocations.is_revoked(claims)


def test_rfc7009_revocation(client, oauth_client, make_user, ctx):
    user = make_user()
    auth = basic_auth(*oauth_client)
    first = _password_grant(client, oauth_client, user)
    # an access token: its jti is denied
    assert client.post("/oauth/revoke", data={"token": first["access_token"],
                                              "token_type_hint": "access_token"},
                       headers=auth).status_code == 200
    assert client.get("/api/v1/auth/me", headers=_bearer(first["access_token"])).status_code == 401
    # a refresh token (hinted wrongly): the family ends
    assert client.post("/oauth/revoke", data={"token": first["refresh_token"],
                                              "token_type_hint": "access_token"},
                       headers=auth).status_code == 200
    refused = client.post("/oauth/token", data={"grant_type": "refresh_token",
                                                "refresh_token": first["refresh_token"]}, headers=auth)
    assert refused.get_json()["error"] == "invalid_grant"
    # unknown tokens: 200 all the same (RFC 7009 §2.2)
    assert client.post("/oauth/revoke", data={"token": "nothing-of-ours"}, headers=auth).status_code == 200
    # another client's token is refused and stays valid
    second = _password_grant(client, oauth_client, user)
    other = register_client({"client_name": "Other", "grant_types": ["password"],
                             "token_endpoint_auth_method": "client_secret_basic"})
    foreign = client.post("/oauth/revoke", data={"token": second["refresh_token"]},
                          headers=basic_auth(other.client.client_id, other.client_secret))
    assert foreign.status_code == 400
    assert client.post("/oauth/token", data={"grant_type": "refresh_token",
                                             "refresh_token": second["refresh_token"]},
                       headers=auth).status_code == 200
    # client authentication is required
    assert client.post("/oauth/revoke", data={"token": second["access_token"]}).status_code in (400, 401)
    assert client.post("/oauth/revoke", data={}, headers=auth).get_json()["error"] == "invalid_request"


def test_a_refresh_costs_one_database_query(client, session, clean):
    """The account, its memberships and its watermark come back in one statement."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    statements = []
    engine = Engine  # every engine: the request's pools included

    def count(conn, cursor, statement, *args):
        # the keyring's periodic re-read of the signing keys may land in any request
        if "signing_keys" not in statement:
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        response = client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert response.status_code == 200
    assert len(statements) == 1, statements


def test_a_family_whose_tenant_the_user_lost_ends_and_is_audited_as_a_lost_role(
        client, clean, ctx, make_user, make_tenant):
    tenant = make_tenant()
    user = make_user(tenants={tenant: "viewer"})
    body = login(client, user["username"], user["password"], tenant=tenant).get_json()
    db.session.execute(sa.delete(Membership).where(Membership.user_id == user["id"]))
    db.session.commit()
    refused = client.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert refused.status_code == 401
    assert [(e["actor"], e["target"], e["details"]) for e in audit_events(clean, "tenant.access")] \
        == [(user["id"], tenant, {"reason": "role_lost"})]
