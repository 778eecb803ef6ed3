"""API keys (contract §3) and RFC 7662 introspection on PostgreSQL and Redis."""

import io
import json
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from freezegun import freeze_time

from app.clients import register_client
from app.extensions import db, services
from app.models import ApiKey, Membership
from tests.conftest import audit_events, bearer
from tests.helpers import basic_auth

FUTURE = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def tenant(make_tenant):
    return make_tenant()


@pytest.fixture
def tenant_admin(make_user, token_for, tenant):
    user = make_user(tenants={tenant: "admin"})
    return {**user, "headers": bearer(token_for(user))}


@pytest.fixture
def resource_server(clean):
    # no app context held open: each request below gets a fresh database session
    with clean.app_context():
        registered = register_client({"client_name": "Nodes API", "grant_types": ["password"],
                                      "token_endpoint_auth_method": "client_secret_basic",
                                      "resource_server": True})
        return basic_auth(registered.client.client_id, registered.client_secret)


def _create(client, headers, tenant, **overrides):
    body = {"name": "ci", "tenants": [tenant], "permissions": ["nodes:read"], **overrides}
    return client.post("/api/v1/api-keys", json=body, headers=headers)


def _introspect(client, auth, token, **extra):
    return client.post("/oauth/introspect", data={"token": token, **extra}, headers=auth).get_json()


def test_create_shows_the_key_once_and_stores_only_a_hash(client, clean, tenant_admin, tenant):
    response = _create(client, tenant_admin["headers"], tenant, expires_at=FUTURE,
                       allowed_ips=["10.0.0.0/8", "2001:db8::1"])
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["id"].startswith("key-") and body["key"].startswith("ic_live_")
    assert len(body["key"]) >= len("ic_live_") + 43
    assert body["tenants"] == [tenant] and body["permissions"] == ["nodes:read"]
    assert body["allowed_ips"] == ["10.0.0.0/8", "2001:db8::1/128"]
    assert body["expires_at"] == FUTURE and body["created_by"] == tenant_admin["id"]
    shown = client.get(f"/api/v1/api-keys/{body['id']}", headers=tenant_admin["headers"]).get_json()
    assert "key" not in shown and shown["rotation_due"] is False and shown["age_days"] == 0
    listed = client.get("/api/v1/api-keys", headers=tenant_admin["headers"]).get_json()["items"]
    assert [k["id"] for k in listed] == [body["id"]] and "key" not in listed[0]
    with clean.app_context():
        row = db.session.get(ApiKey, body["id"])
        assert body["key"] not in (row.secret_hash, str(row.__dict__))
    assert audit_events(clean, "api_key.create")[0]["outcome"] == "success"


def test_a_viewer_cannot_mint_a_write_key_and_it_is_audited(client, clean, make_user, token_for, tenant):
    viewer = make_user(tenants={tenant: "viewer"})
    response = _create(client, bearer(token_for(viewer)), tenant, permissions=["nodes:write"])
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "FORBIDDEN"
    denied = audit_events(clean, "api_key.create")
    assert denied[-1]["outcome"] == "denied" and denied[-1]["actor"] == viewer["id"]


def test_no_key_for_a_tenant_the_creator_is_not_admin_of(client, tenant_admin, make_tenant):
    other = make_tenant()
    assert _create(client, tenant_admin["headers"], other).status_code == 403


def test_key_creation_tells_nobody_but_platform_admins_which_tenants_exist(
        client, clean, make_user, make_tenant, token_for):
    """An unknown tenant is refused as somebody else's is (403, audited), as the ``tenant``
    of a sign-in is: tenant ids are customers' names."""
    own, foreign = make_tenant(), make_tenant()
    for user in (make_user(tenants={own: "admin"}), make_user(tenants={own: "viewer"}),
                 make_user()):
        headers = bearer(token_for(user))
        existing = _create(client, headers, foreign)
        missing = _create(client, headers, "no-such-tenant")
        assert existing.status_code == missing.status_code == 403
        assert missing.get_json() == existing.get_json()
    denied = [e for e in audit_events(clean, "api_key.create") if e["outcome"] == "denied"]
    assert sum(e["details"].get("tenants") == ["no-such-tenant"] for e in denied) == 3
    platform = bearer(token_for(make_user(roles=["admin"])))
    assert _create(client, platform, "no-such-tenant").status_code == 404


@pytest.mark.parametrize("overrides, field", [
    ({"permissions": ["nodes:fly"]}, "permissions"),
    ({"permissions": []}, "permissions"),
    ({"allowed_ips": ["10.0.0.7/8"]}, "allowed_ips"),
    ({"allowed_ips": ["not-an-ip"]}, "allowed_ips"),
    ({"allowed_ips": "10.0.0.1"}, "allowed_ips"),
    ({"allowed_ips": [True]}, "allowed_ips"),  # ip_network(True) is 0.0.0.1/32
    ({"allowed_ips": [167772160]}, "allowed_ips"),  # and this 10.0.0.0/32
    ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at"),
    ({"expires_at": "tomorrow"}, "expires_at"),
    ({"expires_at": 1700000000}, "expires_at"),
    ({"name": ""}, "name"),
    ({"tenants": "acme"}, "tenants"),
])
def test_malformed_fields_are_400_naming_them(client, tenant_admin, tenant, overrides, field):
    response = _create(client, tenant_admin["headers"], tenant, **overrides)
    assert response.status_code == 400
    assert f"'{field}'" in response.get_json()["error"]["message"]


def test_introspection_of_keys(client, clean, tenant_admin, tenant, resource_server, make_user):
    key = _create(client, tenant_admin["headers"], tenant, allowed_ips=["10.1.0.0/16"],
                  permissions=["nodes:read", "nodes:write"]).get_json()
    active = _introspect(client, resource_server, key["key"], client_ip="10.1.2.3")
    assert active["active"] is True and active["token_type"] == "api_key"
    assert active["sub"] == key["id"] and active["tenants"] == {tenant: ["nodes:read", "nodes:write"]}
    assert active["allowed_ips"] == ["10.1.0.0/16"] and active["scope"] == "nodes:read nodes:write"
    assert _introspect(client, resource_server, key["key"], client_ip="192.0.2.1") == {"active": False}
    assert _introspect(client, resource_server, key["key"]) == {"active": False}  # no address given
    assert _introspect(client, resource_server, "ic_live_" + "x" * 43) == {"active": False}
    shown = client.get(f"/api/v1/api-keys/{key['id']}", headers=tenant_admin["headers"]).get_json()
    assert shown["last_used_at"] is not None
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=tenant_admin["headers"]).status_code == 204
    assert _introspect(client, resource_server, key["key"], client_ip="10.1.2.3") == {"active": False}
    assert client.get(f"/api/v1/api-keys/{key['id']}", headers=tenant_admin["headers"]).status_code == 404
    assert audit_events(clean, "api_key.revoke")[0]["target"] == key["id"]


def test_an_ipv4_allowlist_matches_the_same_caller_written_ipv4_mapped(
        client, tenant_admin, tenant, resource_server):
    """A dual-stack listener reports an IPv4 caller as ``::ffff:a.b.c.d``; an IPv6 entry
    still matches IPv6 callers alone."""
    key = _create(client, tenant_admin["headers"], tenant,
                  allowed_ips=["10.0.0.0/8", "2001:db8::/32"]).get_json()
    for caller in ("10.0.0.5", "::ffff:10.0.0.5", "2001:db8::5"):
        assert _introspect(client, resource_server, key["key"], client_ip=caller)["active"] is True, caller
    for caller in ("::ffff:192.0.2.1", "192.0.2.1", "2001:db9::5", "::ffff:7f00:1"):
        assert _introspect(client, resource_server, key["key"], client_ip=caller) == {"active": False}, caller


def test_an_ipv4_mapped_entry_is_stored_and_matched_as_ipv4(client, clean, tenant_admin, tenant,
                                                            resource_server):
    key = _create(client, tenant_admin["headers"], tenant,
                  allowed_ips=["::ffff:10.0.0.0/104", "::ffff:192.0.2.9", "::fffe:0:0/95"]).get_json()
    assert key["allowed_ips"] == ["10.0.0.0/8", "192.0.2.9/32", "::fffe:0:0/95"]
    for caller in ("10.0.0.5", "::ffff:10.0.0.5", "192.0.2.9"):
        assert _introspect(client, resource_server, key["key"], client_ip=caller)["active"] is True, caller
    assert _introspect(client, resource_server, key["key"], client_ip="11.0.0.1") == {"active": False}
    # a key stored before entries were normalised (or by the previous release) matches alike
    with clean.app_context():
        db.session.get(ApiKey, key["id"]).allowed_ips = ["::ffff:10.0.0.0/104"]
        db.session.commit()
    for caller in ("10.0.0.5", "::ffff:10.0.0.5"):
        assert _introspect(client, resource_server, key["key"], client_ip=caller)["active"] is True, caller


def test_expired_keys_are_inactive(client, tenant_admin, tenant, resource_server):
    key = _create(client, tenant_admin["headers"], tenant, expires_at=FUTURE).get_json()
    assert _introspect(client, resource_server, key["key"])["active"] is True
    with freeze_time(datetime.now(timezone.utc) + timedelta(days=31)):
        assert _introspect(client, resource_server, key["key"]) == {"active": False}


def test_a_key_never_exceeds_its_creator(client, clean, make_user, token_for, tenant, resource_server):
    creator = make_user(tenants={tenant: "admin"})
    headers = bearer(token_for(creator))
    key = _create(client, headers, tenant, permissions=["nodes:write", "jobs:read"]).get_json()
    admin = make_user(roles=["admin"])
    admin_headers = bearer(token_for(admin))
    # demoted to viewer: the key keeps only what the creator still holds
    client.patch(f"/api/v1/admin/users/{creator['id']}", headers=admin_headers,
                 json={"tenants": [{"id": tenant, "role": "viewer"}]})
    assert _introspect(client, resource_server, key["key"])["tenants"] == {tenant: ["jobs:read"]}
    # disabled: suspended; enabled again: back
    client.patch(f"/api/v1/admin/users/{creator['id']}", headers=admin_headers, json={"disabled": True})
    assert _introspect(client, resource_server, key["key"]) == {"active": False}
    client.patch(f"/api/v1/admin/users/{creator['id']}", headers=admin_headers,
                 json={"disabled": False, "tenants": [{"id": tenant, "role": "admin"}]})
    assert _introspect(client, resource_server, key["key"])["active"] is True
    # deleted: revoked for good
    assert client.delete(f"/api/v1/admin/users/{creator['id']}", headers=admin_headers).status_code == 204
    assert _introspect(client, resource_server, key["key"]) == {"active": False}
    with clean.app_context():
        assert db.session.get(ApiKey, key["id"]).revoked_at is not None


def test_a_rotation_reads_the_callers_account_once(client, clean, tenant_admin, tenant,
                                                   monkeypatch):
    """Whose key it is and whether they may still grant it ask the same account: one query."""
    key = _create(client, tenant_admin["headers"], tenant).get_json()
    with clean.app_context():
        accounts = services().accounts
    reads = []
    original = type(accounts).find_by_id

    def counted(self, user_id, *args, **kwargs):
        reads.append(user_id)
        return original(self, user_id, *args, **kwargs)

    monkeypatch.setattr(type(accounts), "find_by_id", counted)
    rotated = client.post(f"/api/v1/api-keys/{key['id']}/rotate", headers=tenant_admin["headers"])
    assert rotated.status_code == 200
    assert reads == [tenant_admin["id"]]


def test_rotation_with_and_without_grace(client, tenant_admin, tenant, resource_server):
    h = tenant_admin["headers"]
    key = _create(client, h, tenant).get_json()
    rotated = client.post(f"/api/v1/api-keys/{key['id']}/rotate", headers=h)
    assert rotated.status_code == 200
    new = rotated.get_json()
    assert new["id"] == key["id"] and new["key"] != key["key"]
    assert new["permissions"] == key["permissions"] and new["rotated_at"]
    assert _introspect(client, resource_server, key["key"]) == {"active": False}
    assert _introspect(client, resource_server, new["key"])["active"] is True
    with freeze_time() as frozen:
        graced = client.post(f"/api/v1/api-keys/{key['id']}/rotate", headers=h,
                             json={"grace_period_seconds": 3600}).get_json()
        assert _introspect(client, resource_server, new["key"])["active"] is True
        assert _introspect(client, resource_server, graced["key"])["active"] is True
        frozen.tick(3601)
        assert _introspect(client, resource_server, new["key"]) == {"active": False}
    too_long = client.post(f"/api/v1/api-keys/{key['id']}/rotate", headers=h,
                           json={"grace_period_seconds": 8 * 86400})
    assert too_long.status_code == 400 and "'grace_period_seconds'" in too_long.get_json()["error"]["message"]


def test_rotation_reads_a_chunked_body(client, clean, tenant_admin, tenant):
    """HTTP/1.1 chunked framing declares no Content-Length; the grace period still counts."""
    key = _create(client, tenant_admin["headers"], tenant).get_json()
    response = client.post(
        f"/api/v1/api-keys/{key['id']}/rotate",
        input_stream=io.BytesIO(json.dumps({"grace_period_seconds": 3600}).encode()),
        headers={**tenant_admin["headers"], "Content-Type": "application/json",
                 "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 200
    with clean.app_context():
        assert db.session.get(ApiKey, key["id"]).previous_valid_until is not None


def test_two_rotations_at_once_apply_one_after_the_other(clean, tenant_admin, tenant,
                                                        resource_server, monkeypatch):
    """An emergency rotation (no grace: the secret leaked) and a scheduled one (an hour of
    grace) at once: each reads the key, then writes it. Applied one after the other, the
    leaked secret is dead in either order; read together, the one written last kept it alive
    as its previous secret."""
    import threading
    import time

    import app.api_keys as api_keys

    leaked = _create(clean.test_client(), tenant_admin["headers"], tenant).get_json()
    original = api_keys._check_grantable

    def slow_check(*args, **kwargs):
        original(*args, **kwargs)
        time.sleep(0.3)  # between the read of the key and its write

    monkeypatch.setattr(api_keys, "_check_grantable", slow_check)
    answers = {}

    def rotate(grace):
        answers[grace] = clean.test_client().post(
            f"/api/v1/api-keys/{leaked['id']}/rotate", headers=tenant_admin["headers"],
            json={"grace_period_seconds": grace})

    threads = [threading.Thread(target=rotate, args=(grace,)) for grace in (0, 3600)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert [answers[grace].status_code for grace in (0, 3600)] == [200, 200]
    client = clean.test_client()
    assert _introspect(client, resource_server, leaked["key"]) == {"active": False}
    assert any(_introspect(client, resource_server, answers[grace].get_json()["key"])["active"]
               for grace in (0, 3600))


def test_rotation_due_after_ninety_days(client, make_user, token_for, tenant):
    creator = make_user(tenants={tenant: "admin"})
    with freeze_time(datetime.now(timezone.utc) - timedelta(days=91)):
        key = _create(client, bearer(token_for(creator)), tenant).get_json()
    shown = client.get(f"/api/v1/api-keys/{key['id']}", headers=bearer(token_for(creator))).get_json()
    assert shown["rotation_due"] is True and shown["age_days"] >= 90


def test_keys_are_seen_by_their_creator_and_platform_admins_only(client, tenant_admin, tenant,
                                                                 make_user, token_for):
    key = _create(client, tenant_admin["headers"], tenant).get_json()
    stranger = bearer(token_for(make_user(tenants={tenant: "admin"})))
    assert client.get(f"/api/v1/api-keys/{key['id']}", headers=stranger).status_code == 404
    assert client.delete(f"/api/v1/api-keys/{key['id']}", headers=stranger).status_code == 404
    platform = bearer(token_for(make_user(roles=["admin"])))
    assert client.get(f"/api/v1/api-keys/{key['id']}", headers=platform).status_code == 200


def test_a_tenant_scoped_token_manages_only_the_keys_of_its_tenant(client, make_user,
                                                                    make_tenant, token_for):
    """Contract §5: a token requested with ``tenant`` holds that tenant alone. It neither
    reads, lists, rotates nor revokes the keys its user made for another tenant."""
    a, b = make_tenant(), make_tenant()
    user = make_user(tenants={a: "admin", b: "admin"})
    unscoped = bearer(token_for(user))
    key_a = _create(client, unscoped, a).get_json()
    key_b = _create(client, unscoped, b).get_json()
    key_ab = client.post("/api/v1/api-keys", headers=unscoped, json={
        "name": "both", "tenants": [a, b], "permissions": ["nodes:read"]}).get_json()
    scoped_a = bearer(token_for(user, tenant=a))
    assert [k["id"] for k in client.get("/api/v1/api-keys", headers=scoped_a)
            .get_json()["items"]] == [key_a["id"]]
    for key in (key_b, key_ab):
        assert client.get(f"/api/v1/api-keys/{key['id']}", headers=scoped_a).status_code == 404
        assert client.post(f"/api/v1/api-keys/{key['id']}/rotate",
                           headers=scoped_a).status_code == 404
        assert client.delete(f"/api/v1/api-keys/{key['id']}",
                             headers=scoped_a).status_code == 404
    assert client.get(f"/api/v1/api-keys/{key_a['id']}", headers=scoped_a).status_code == 200
    listed = client.get("/api/v1/api-keys", headers=unscoped).get_json()["items"]
    assert sorted(k["id"] for k in listed) == sorted(k["id"] for k in (key_a, key_b, key_ab))


def test_a_key_naming_a_tenant_its_creator_left_is_still_theirs_to_see_and_revoke(
        client, clean, make_user, make_tenant, token_for, resource_server):
    """Only a tenant the user still holds and the token does not hides a key: the key [A, B]
    of a user who left B still works in A, and its creator's tokens, even one scoped to A,
    still see it and may revoke it."""
    a, b = make_tenant(), make_tenant()
    user = make_user(tenants={a: "admin", b: "admin"})
    key = client.post("/api/v1/api-keys", headers=bearer(token_for(user)), json={
        "name": "both", "tenants": [a, b], "permissions": ["nodes:read"]}).get_json()
    with clean.app_context():
        db.session.execute(sa.delete(Membership).where(Membership.user_id == user["id"],
                                                       Membership.tenant_id == b))
        db.session.commit()
    assert _introspect(client, resource_server, key["key"])["active"] is True
    for headers in (bearer(token_for(user)), bearer(token_for(user, tenant=a))):
        assert [k["id"] for k in client.get("/api/v1/api-keys", headers=headers)
                .get_json()["items"]] == [key["id"]]
    assert client.delete(f"/api/v1/api-keys/{key['id']}",
                         headers=bearer(token_for(user, tenant=a))).status_code == 204
    assert _introspect(client, resource_server, key["key"]) == {"active": False}


def test_a_platform_admins_token_scoped_to_a_tenant_sees_only_that_tenants_keys(
        client, make_user, make_tenant, token_for):
    a, b = make_tenant(), make_tenant()
    admin = make_user(roles=["admin"])  # no membership: every tenant through the role
    unscoped = bearer(token_for(admin))
    key_a, key_b = (_create(client, unscoped, tenant).get_json()["id"] for tenant in (a, b))
    scoped_a = bearer(token_for(admin, tenant=a))
    assert [k["id"] for k in client.get("/api/v1/api-keys", headers=scoped_a)
            .get_json()["items"]] == [key_a]
    assert client.delete(f"/api/v1/api-keys/{key_b}", headers=scoped_a).status_code == 404
    listed = client.get("/api/v1/api-keys", headers=unscoped).get_json()["items"]
    assert {k["id"] for k in listed} >= {key_a, key_b}


def test_a_page_of_keys_is_filled_past_the_keys_a_token_does_not_cover(client, make_user,
                                                                       make_tenant, token_for):
    a, b = make_tenant(), make_tenant()
    user = make_user(tenants={a: "admin", b: "admin"})
    unscoped = bearer(token_for(user))
    made = [_create(client, unscoped, tenant).get_json()["id"] for tenant in (b, b, a, b, a, b)]
    scoped_a = bearer(token_for(user, tenant=a))
    seen, cursor = [], None
    while True:
        query = "?limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = client.get("/api/v1/api-keys" + query, headers=scoped_a).get_json()
        assert len(page["items"]) == 1
        seen += [k["id"] for k in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(made[i] for i in (2, 4))


def test_introspection_of_access_tokens(client, clean, make_user, token_for, tenant, resource_server):
    user = make_user(tenants={tenant: "viewer"})
    token = token_for(user)
    body = _introspect(client, resource_server, token)
    assert body["active"] is True and body["sub"] == user["id"] and body["client_id"] == "infracast"
    assert body["token_type"] == "Bearer" and body["tenants"][tenant][0] == "nodes:read"
    assert {"exp", "iat", "scope"} <= set(body)
    client.post("/api/v1/auth/logout", headers=bearer(token))
    assert _introspect(client, resource_server, token) == {"active": False}
    assert _introspect(client, resource_server, "garbage") == {"active": False}
    # only resource servers may introspect
    with clean.app_context():
        other = register_client({"client_name": "RP", "grant_types": ["password"],
                                 "token_endpoint_auth_method": "client_secret_basic"})
        other_auth = basic_auth(other.client.client_id, other.client_secret)
    refused = client.post("/oauth/introspect", data={"token": token}, headers=other_auth)
    assert refused.status_code == 400 and refused.get_json()["error"] == "unauthorized_client"
    assert client.post("/oauth/introspect", data={"token": token}).status_code == 401


def test_an_expired_access_token_is_inactive_at_once(client, make_user, token_for,
                                                    resource_server):
    """RFC 7662 §2.2: the issuer knows when its token expires; the clock-skew leeway that
    other hosts' checks allow past exp is not an answer of "active"."""
    from tests.helpers import jwt_parts

    token = token_for(make_user())
    exp = jwt_parts(token)[1]["exp"]
    with freeze_time(datetime.fromtimestamp(exp - 1, timezone.utc)):
        assert _introspect(client, resource_server, token)["active"] is True
    with freeze_time(datetime.fromtimestamp(exp + 10, timezone.utc)):
        assert _introspect(client, resource_server, token) == {"active": False}


def test_spoofed_forwarded_for_is_ignored_without_trusted_proxies(client, clean, make_user):
    user = make_user()
    client.post("/api/v1/auth/token", json={"username": user["username"], "password": "wrong one"},
                headers={"X-Forwarded-For": "203.0.113.99"})
    failures = audit_events(clean, "login")
    assert failures[-1]["outcome"] == "failure" and failures[-1]["client_ip"] == "127.0.0.1"
