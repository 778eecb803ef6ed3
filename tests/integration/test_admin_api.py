"""/api/v1/admin: tenants, users and clients for platform admins (PostgreSQL + Redis)."""

import time
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from tests.conftest import audit_events, bearer


@pytest.fixture
def admin(make_user, token_for):
    user = make_user(roles=["admin"])
    return {**user, "headers": bearer(token_for(user))}


def test_only_platform_admins_and_refusals_are_audited(client, clean, admin, make_user, make_tenant,
                                                       token_for):
    tenant = make_tenant()
    tenant_admin = make_user(tenants={tenant: "admin"})
    for headers in ({}, bearer(token_for(tenant_admin)),
                    bearer(token_for(admin, tenant=tenant))):  # a tenant-scoped token
        response = client.get("/api/v1/admin/users", headers=headers)
        assert response.status_code in (401, 403)
    denied = client.get("/api/v1/admin/users", headers=bearer(token_for(tenant_admin)))
    assert denied.get_json() == {"error": {"code": "FORBIDDEN", "message": "Insufficient permissions"}}
    refusals = audit_events(clean, "admin.access")
    assert refusals and all(r["outcome"] == "denied" for r in refusals)
    assert tenant_admin["id"] in {r["actor"] for r in refusals}


def test_tenants(client, admin):
    h = admin["headers"]
    created = client.post("/api/v1/admin/tenants", json={"id": "acme", "name": "Acme"}, headers=h)
    assert created.status_code == 201
    assert created.get_json()["id"] == "acme" and created.get_json()["name"] == "Acme"
    assert client.post("/api/v1/admin/tenants", json={"id": "acme", "name": "Again"},
                       headers=h).status_code == 409
    bad = client.post("/api/v1/admin/tenants", json={"id": "Not Valid!", "name": "x"}, headers=h)
    assert bad.status_code == 400 and "'id'" in bad.get_json()["error"]["message"]
    assert client.post("/api/v1/admin/tenants", json={"id": "x1", "name": 5},
                       headers=h).get_json()["error"]["message"].startswith("'name'")
    assert client.get("/api/v1/admin/tenants/acme", headers=h).status_code == 200
    assert client.get("/api/v1/admin/tenants/nope", headers=h).status_code == 404


def test_pagination_with_limit_and_cursor(client, admin):
    h = admin["headers"]
    for i in range(5):
        client.post("/api/v1/admin/tenants", json={"id": f"t-{i}", "name": f"T{i}"}, headers=h)
    seen, cursor = [], None
    while True:
        url = "/api/v1/admin/tenants?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=h).get_json()
        assert len(page["items"]) <= 2
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [f"t-{i}" for i in range(5)]
    assert client.get("/api/v1/admin/tenants?limit=0", headers=h).status_code == 400
    assert client.get("/api/v1/admin/tenants?cursor=%%%", headers=h).status_code == 400


def test_users_lifecycle(client, clean, admin, make_tenant):
    h = admin["headers"]
    tenant = make_tenant()
    created = client.post("/api/v1/admin/users", headers=h, json={
        "username": "Carol", "email": "carol@example.test", "password": "long enough pw",
        "tenants": [{"id": tenant, "role": "viewer"}]})
    assert created.status_code == 201, created.get_json()
    user = created.get_json()
    assert user["username"] == "carol" and user["tenants"] == [{"id": tenant, "role": "viewer"}]
    assert user["roles"] == [] and user["disabled"] is False
    assert "password" not in str(user) and "hash" not in str(user)
    dup = client.post("/api/v1/admin/users", headers=h, json={
        "username": "carol", "email": "c2@example.test", "password": "long enough pw"})
    assert dup.status_code == 409
    patched = client.patch(f"/api/v1/admin/users/{user['id']}", headers=h,
                           json={"tenants": [{"id": tenant, "role": "editor"}], "roles": []})
    assert patched.status_code == 200
    assert patched.get_json()["tenants"] == [{"id": tenant, "role": "editor"}]
    assert client.get(f"/api/v1/admin/users/{user['id']}", headers=h).get_json()["id"] == user["id"]
    assert client.delete(f"/api/v1/admin/users/{user['id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/admin/users/{user['id']}", headers=h).status_code == 404
    actions = {a: audit_events(clean, a) for a in
               ("admin.user.create", "admin.user.update", "admin.user.delete")}
    assert all(events and events[0]["actor"] == admin["id"] for events in actions.values())


@pytest.mark.parametrize("body, field, status", [
    ({"username": "u1", "email": "u1@example.test", "password": "short"}, "password", 400),
    ({"username": "u1", "email": "not-an-email", "password": "long enough pw"}, "email", 400),
    ({"username": "u1", "email": "u1\x00@example.test", "password": "long enough pw"}, "email", 400),
    ({"username": "u1", "email": "u1@example.test\x7f", "password": "long enough pw"}, "email", 400),
    ({"username": 7, "email": "u1@example.test", "password": "long enough pw"}, "username", 400),
    ({"username": "u1", "email": "u1@example.test", "password": "long enough pw", "roles": "admin"},
     "roles", 400),
    ({"username": "u1", "email": "u1@example.test", "password": "long enough pw",
      "tenants": [{"id": "t", "role": "owner"}]}, "tenants", 400),
    ({"username": "u1", "email": "u1@example.test", "password": "long enough pw",
      "tenants": [{"id": "no-such-tenant", "role": "viewer"}]}, None, 404),
    # PostgreSQL refuses a NUL: each is a 400 naming the field, not a failed insert
    ({"username": "u1", "email": "u1@example.test", "password": "long enough pw",
      "tenants": [{"id": "acme\x00", "role": "viewer"}]}, "tenants", 400),
    ({"username": "u1", "email": "u1@example.test", "password": " " * 12}, "password", 400),
])
def test_user_input_errors(client, admin, body, field, status):
    response = client.post("/api/v1/admin/users", headers=admin["headers"], json=body)
    assert response.status_code == status
    if field:
        assert f"'{field}'" in response.get_json()["error"]["message"]


def test_patch_errors(client, admin, make_user):
    user = make_user()
    h = admin["headers"]
    assert client.patch(f"/api/v1/admin/users/{user['id']}", headers=h,
                        json={"disabled": "yes"}).status_code == 400
    assert "'username'" in client.patch(f"/api/v1/admin/users/{user['id']}", headers=h,
                                        json={"username": "x"}).get_json()["error"]["message"]
    # PostgreSQL refuses a NUL: a 400 naming the field, not a failed insert
    nul = client.patch(f"/api/v1/admin/users/{user['id']}", headers=h,
                       json={"email": "someone\x00@example.test"})
    assert nul.status_code == 400 and "'email'" in nul.get_json()["error"]["message"]
    assert client.patch("/api/v1/admin/users/nope", headers=h, json={}).status_code == 404
    # a password the sign-in would refuse unread (blank) is refused here too, as at create
    blank = client.patch(f"/api/v1/admin/users/{user['id']}", headers=h, json={"password": " " * 12})
    assert blank.status_code == 400 and "'password'" in blank.get_json()["error"]["message"]


def test_one_tenant_named_twice_is_refused_not_resolved(client, admin, make_tenant):
    """Two roles in one tenant: which was meant? The last one, a higher one, was kept."""
    tenant = make_tenant()
    response = client.post("/api/v1/admin/users", headers=admin["headers"], json={
        "username": "erin", "email": "erin@example.test", "password": "long enough pw",
        "tenants": [{"id": tenant, "role": "viewer"}, {"id": tenant, "role": "admin"}]})
    assert response.status_code == 400
    assert "'tenants'" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("path, body, field", [
    ("/api/v1/admin/tenants", {"id": "acme", "name": "Ac\x00me"}, "name"),
    ("/api/v1/admin/clients", {"client_name": "CLI\x00", "grant_types": ["password"]},
     "client_name"),
    ("/api/v1/admin/clients", {"client_name": "Machine", "grant_types": ["client_credentials"],
                               "tenant_permissions": {"acme\x00": ["nodes:read"]}},
     "tenant_permissions"),
])
def test_a_nul_is_a_400_naming_the_field(client, admin, path, body, field):
    """PostgreSQL refuses a NUL in text; the answer names the field, not 'Invalid request'."""
    response = client.post(path, headers=admin["headers"], json=body)
    assert response.status_code == 400
    assert f"'{field}'" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("path", ["/api/v1/admin/tenants", "/api/v1/admin/users",
                                  "/api/v1/admin/clients"])
def test_a_cursor_that_decodes_to_a_nul_is_refused_as_a_cursor(client, admin, path):
    response = client.get(f"{path}?cursor=AA", headers=admin["headers"])  # base64url of NUL
    assert response.status_code == 400
    assert "'cursor'" in response.get_json()["error"]["message"]


def test_the_last_platform_admin_cannot_be_removed(client, admin):
    h = admin["headers"]
    response = client.patch(f"/api/v1/admin/users/{admin['id']}", headers=h, json={"disabled": True})
    assert response.status_code == 409
    assert client.delete(f"/api/v1/admin/users/{admin['id']}", headers=h).status_code == 409
    assert client.get("/api/v1/auth/me", headers=h).status_code == 200


def _login(client, user):
    return client.post("/api/v1/auth/token", json={"username": user["username"],
                                                   "password": user["password"]}).get_json()


def test_disabling_a_user_revokes_tokens_and_families_at_once(client, admin, make_user):
    user = make_user()
    session = _login(client, user)
    response = client.patch(f"/api/v1/admin/users/{user['id']}", headers=admin["headers"],
                            json={"disabled": True})
    assert response.status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(session["token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": session["refresh_token"]}).status_code == 401
    assert client.post("/api/v1/auth/token", json={"username": user["username"],
                                                   "password": user["password"]}).status_code == 401


def test_a_sign_in_in_the_same_second_as_a_password_change_keeps_its_refresh_token(
        client, admin, make_user):
    """The password change revokes everything issued before it, to the millisecond: a login
    a moment later, in the same second, is a new sign-in whose refresh token works."""
    user = make_user()
    old = _login(client, user)
    moment = datetime.fromtimestamp(int(time.time()) + 2.2, timezone.utc)
    with freeze_time(moment) as clock:
        assert client.patch(f"/api/v1/admin/users/{user['id']}", headers=admin["headers"],
                            json={"password": "another long password"}).status_code == 200
        clock.tick(0.3)
        session = client.post("/api/v1/auth/token", json={
            "username": user["username"], "password": "another long password"}).get_json()
        refreshed = client.post("/api/v1/auth/refresh",
                                json={"refresh_token": session["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.get_json()
        assert client.get("/api/v1/auth/me",
                          headers=bearer(refreshed.get_json()["token"])).status_code == 200
        # and what the change revoked stays revoked
        assert client.post("/api/v1/auth/refresh",
                           json={"refresh_token": old["refresh_token"]}).status_code == 401


def test_a_sign_in_a_fraction_of_a_millisecond_before_a_password_change_is_revoked(
        client, admin, make_user):
    """Sign-in moments are kept rounded down, never up past the revocation that follows."""
    user = make_user()
    moment = datetime.fromtimestamp(int(time.time()) + 2.1236, timezone.utc)
    with freeze_time(moment) as clock:
        session = _login(client, user)
        clock.tick(0.0002)
        assert client.patch(f"/api/v1/admin/users/{user['id']}", headers=admin["headers"],
                            json={"password": "another long password"}).status_code == 200
        assert client.post("/api/v1/auth/refresh",
                           json={"refresh_token": session["refresh_token"]}).status_code == 401


def test_a_login_whose_password_check_a_disable_overtakes_gets_nothing_that_works(
        client, admin, make_user, monkeypatch):
    """The sign-in counts from when the account was read, before the password check: a
    disable landing during that check covers what the login then issues."""
    from idp.passwords import PasswordHasher

    user, original, started = make_user(), PasswordHasher.verify, []

    def verify_meanwhile(self, password_hash, password):
        if not started:  # the admin disables the user while the password is being checked
            started.append(client.patch(f"/api/v1/admin/users/{user['id']}",
                                        headers=admin["headers"],
                                        json={"disabled": True}).status_code)
        return original(self, password_hash, password)

    monkeypatch.setattr(PasswordHasher, "verify", verify_meanwhile)
    session = _login(client, user)
    assert started == [200] and session["token"]  # the login had read the account before
    monkeypatch.undo()
    assert client.patch(f"/api/v1/admin/users/{user['id']}", headers=admin["headers"],
                        json={"disabled": False}).status_code == 200
    assert client.get("/api/v1/auth/me", headers=bearer(session["token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": session["refresh_token"]}).status_code == 401


def test_deleting_a_user_revokes_their_tokens(client, admin, make_user):
    user = make_user()
    session = _login(client, user)
    assert client.delete(f"/api/v1/admin/users/{user['id']}", headers=admin["headers"]).status_code == 204
    assert client.get("/api/v1/auth/me", headers=bearer(session["token"])).status_code == 401
    assert client.post("/api/v1/auth/refresh",
                       json={"refresh_token": session["refresh_token"]}).status_code == 401


def test_a_role_change_ends_access_tokens_but_refresh_carries_the_new_roles(
        client, admin, make_user, make_tenant):
    tenant = make_tenant()
    user = make_user(tenants={tenant: "editor"})
    session = _login(client, user)
    client.patch(f"/api/v1/admin/users/{user['id']}", headers=admin["headers"],
                 json={"tenants": [{"id": tenant, "role": "viewer"}]})
    assert client.get("/api/v1/auth/me", headers=bearer(session["token"])).status_code == 401
    refreshed = client.post("/api/v1/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200
    from tests.helpers import jwt_parts
    assert "nodes:write" not in jwt_parts(refreshed.get_json()["token"])[1]["tenants"][tenant]
    # issued a moment after the revocation (the same second, as a rule): it works
    assert client.get("/api/v1/auth/me",
                      headers=bearer(refreshed.get_json()["token"])).status_code == 200


def test_clients(client, admin, make_tenant):
    h = admin["headers"]
    tenant = make_tenant()
    created = client.post("/api/v1/admin/clients", headers=h, json={
        "client_name": "Scanner", "grant_types": ["password", "refresh_token"],
        "token_endpoint_auth_method": "client_secret_basic", "scope": "profile",
        "resource_server": True, "tenant_permissions": {tenant: ["nodes:read"]}})
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert len(body["client_secret"]) >= 43 and body["client_secret_expires_at"] == 0
    shown = client.get(f"/api/v1/admin/clients/{body['client_id']}", headers=h).get_json()
    assert "client_secret" not in shown and shown["resource_server"] is True
    assert [c["client_id"] for c in client.get("/api/v1/admin/clients", headers=h).get_json()["items"]] \
        == [body["client_id"]]
    public = client.post("/api/v1/admin/clients", headers=h, json={
        "client_name": "SPA", "grant_types": ["password"], "token_endpoint_auth_method": "none"})
    assert "client_secret" not in public.get_json()
    for bad, field in (({"client_name": "x", "grant_types": ["implicit"]}, "grant_types"),
                       ({"client_name": "x", "grant_types": ["password"],
                         "token_endpoint_auth_method": "private_key_jwt"}, "token_endpoint_auth_method"),
                       ({"grant_types": ["password"]}, "client_name"),
                       ({"client_name": "x", "grant_types": ["password"],
                         "tenant_permissions": {tenant: ["nodes:fly"]}}, "tenant_permissions")):
        response = client.post("/api/v1/admin/clients", headers=h, json=bad)
        assert response.status_code == 400 and f"'{field}'" in response.get_json()["error"]["message"]
    assert client.delete(f"/api/v1/admin/clients/{body['client_id']}", headers=h).status_code == 204
    assert client.get(f"/api/v1/admin/clients/{body['client_id']}", headers=h).status_code == 404


@pytest.mark.parametrize("field", ["redirect_uris", "post_logout_redirect_uris"])
@pytest.mark.parametrize("uri", [
    "https://rp.example/cb#",       # an empty fragment is still a fragment (RFC 6749 §3.1.2)
    "https://rp.example/cb\n",      # urlsplit drops \n and \t before it is checked,
    "https://rp.example/c\tb",      # so what is stored would not be what was checked
    "https://rp.example/c b",
    "https://rp.example/cb\x00",
    "https://rp.example:99999/cb",  # ports that do not parse
    "https://rp.example:x/cb",
])
def test_a_redirect_uri_with_a_fragment_whitespace_or_a_bad_port_is_refused(client, admin,
                                                                             field, uri):
    h = admin["headers"]
    response = client.post("/api/v1/admin/clients", headers=h, json={
        "client_name": "Web", "grant_types": ["authorization_code"],
        "token_endpoint_auth_method": "none", "redirect_uris": ["https://rp.example/cb"],
        field: [uri]})
    assert response.status_code == 400, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "INVALID_REQUEST" and f"'{field}'" in error["message"]
    assert client.get("/api/v1/admin/clients", headers=h).get_json()["items"] == []


def test_two_admins_demoting_each_other_at_once_leave_one(clean, make_user, token_for):
    """The last-admin rule holds under concurrency (no write skew)."""
    import threading

    from app.extensions import db
    from app.models import User

    for _ in range(3):
        with clean.app_context():  # each round starts with no admins but the two below
            for user in db.session.query(User).all():
                user.platform_roles = []
            db.session.commit()
        first, second = make_user(roles=["admin"]), make_user(roles=["admin"])
        headers = {first["id"]: bearer(token_for(first)), second["id"]: bearer(token_for(second))}
        barrier, results = threading.Barrier(2), {}

        def demote(actor, target):
            client = clean.test_client()
            barrier.wait()
            results[actor] = client.patch(f"/api/v1/admin/users/{target}", json={"roles": []},
                                          headers=headers[actor]).status_code

        threads = [threading.Thread(target=demote, args=(first["id"], second["id"])),
                   threading.Thread(target=demote, args=(second["id"], first["id"]))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert 200 in results.values(), results  # one demotion went through
        with clean.app_context():
            admins = db.session.execute(sa.select(User.id).where(
                sa.cast(User.platform_roles, sa.Text).like('%"admin"%'))).all()
        assert len(admins) == 1, results
