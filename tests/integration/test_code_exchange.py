"""Redeeming authorization codes: /oauth/token and the seed's /api/v1/auth/token (RFC 6749 §4.1.3)."""

import threading

import pytest
from freezegun import freeze_time

from app.clients import register_client
from tests.conftest import audit_events
from tests.helpers import bearer, jwt_parts
from tests.oidc import RelyingParty


def test_a_code_works_once_and_a_replay_revokes_what_it_gave(client, make_rp, make_user):
    rp, user = make_rp(), make_user()
    callback = rp.sign_in(user, scope="openid profile offline_access")
    first = rp.exchange(callback["code"])
    assert first.status_code == 200
    tokens = first.get_json()
    assert client.get("/oauth/userinfo", headers=bearer(tokens["access_token"])).status_code == 200

    replay = rp.exchange(callback["code"])
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    # RFC 6749 §4.1.2: what the first redemption produced is revoked
    assert client.get("/oauth/userinfo",
                      headers=bearer(tokens["access_token"])).status_code == 401
    refreshed = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
        "client_id": rp.client_id})
    assert refreshed.status_code == 400 and refreshed.get_json()["error"] == "invalid_grant"
    assert rp.exchange(callback["code"]).get_json()["error"] == "invalid_grant"


def test_racing_redemptions_never_leave_live_tokens_from_a_replayed_code(app, make_rp, make_user):
    rp, user = make_rp(), make_user()
    callback = rp.sign_in(user, scope="openid offline_access")
    results = []

    def redeem():
        http = app.test_client()
        results.append(http.post("/oauth/token", data={
            "grant_type": "authorization_code", "code": callback["code"],
            "redirect_uri": rp.redirect_uri, "code_verifier": rp.verifier,
            "client_id": rp.client_id}))

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # every redemption answered, each a code exchange or invalid_grant (no 500); at most one
    # won, and none at all when a replay marked the code used before the winner recorded
    # what it issued (it then revoked that itself)
    assert len(results) == 8
    assert all(r.status_code == 200 or (r.status_code == 400 and r.get_json()["error"]
                                        == "invalid_grant") for r in results)
    winners = [r.get_json() for r in results if r.status_code == 200]
    assert len(winners) <= 1
    for body in winners:  # any tokens handed out were revoked by the replays
        userinfo = app.test_client().get("/oauth/userinfo", headers=bearer(body["access_token"]))
        assert userinfo.status_code == 401


def test_an_expired_code_is_invalid_grant(make_rp, make_user):
    rp, user = make_rp(), make_user()
    with freeze_time("2026-11-29 10:00:00") as frozen:
        callback = rp.sign_in(user)
        frozen.tick(61)
        response = rp.exchange(callback["code"])
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("change", [
    {"redirect_uri": "http://127.0.0.1:9999/other"},
    {"code_verifier": "a" * 64},
])
def test_a_mis_bound_code_is_invalid_grant(make_rp, make_user, change):
    rp, user = make_rp(), make_user()
    response = rp.exchange(rp.sign_in(user)["code"], **change)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("exchanged_with", [
    "http://127.0.0.1/callback",         # the registered URI
    "http://127.0.0.1:53125/callback",   # the registered URI with another port
])
def test_a_loopback_code_is_bound_to_the_port_it_was_issued_for(client, ctx, make_user,
                                                                exchanged_with):
    """Any port may be asked for at the authorization endpoint (RFC 8252 §7.3), but the token
    request's redirect_uri must be "identical" to that of the authorization request (RFC
    6749 §4.1.3), port included."""
    native = register_client({"client_name": "CLI", "grant_types": ["authorization_code"],
                              "token_endpoint_auth_method": "none",
                              "redirect_uris": ["http://127.0.0.1/callback"]})
    rp = RelyingParty(client, native.client.client_id,
                      redirect_uri="http://127.0.0.1:53124/callback")
    code = rp.sign_in(make_user())["code"]
    refused = rp.exchange(code, redirect_uri=exchanged_with)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert rp.exchange(code).status_code == 200  # a refused exchange does not burn the code


def test_an_unknown_code_is_invalid_grant(make_rp):
    rp = make_rp()
    rp.params()
    response = rp.exchange("not-a-code")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_a_code_of_another_client_is_invalid_grant(make_rp, make_user):
    rp, other, user = make_rp(), make_rp(), make_user()
    code = rp.sign_in(user)["code"]
    other.verifier = rp.verifier
    response = other.exchange(code)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_a_code_for_a_tenant_the_user_has_lost_is_invalid_grant(app, clean, make_rp, make_user,
                                                                make_tenant):
    """RFC 6749 §5.2: a grant no longer valid is invalid_grant (400), as a refresh token
    for that tenant is (idp/token_service.py refresh), not 403 access_denied; and the
    refusal is audited as a lost role, not as an escalation (the tenant was theirs)."""
    from app.users import update_user

    make_user(roles=["admin"])  # the change below must leave a platform admin
    tenant = make_tenant()
    rp, user = make_rp(), make_user(tenants={tenant: "viewer"})
    code = rp.sign_in(user, tenant=tenant)["code"]
    with app.app_context():
        update_user(user["id"], {"tenants": []})
    response = rp.exchange(code)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert [(e["actor"], e["target"], e["details"]) for e in audit_events(clean, "tenant.access")] \
        == [(user["id"], tenant, {"reason": "role_lost"})]


def test_a_public_client_must_send_the_verifier(make_rp, make_user):
    rp, user = make_rp(), make_user()
    response = rp.exchange(rp.sign_in(user)["code"], code_verifier=None)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_a_confidential_client_must_authenticate(make_rp, make_user):
    rp, user = make_rp(public=False), make_user()
    code = rp.sign_in(user)["code"]
    secret, rp.secret = rp.secret, None
    as_public = rp.exchange(code)
    assert as_public.status_code in (400, 401) and as_public.get_json()["error"] == "invalid_client"
    rp.secret = secret
    assert rp.exchange(code).status_code == 200  # client authentication comes first


def test_seed_code_exchange_returns_the_seed_shape(client, make_rp, make_user):
    rp, user = make_rp(), make_user()
    code = rp.sign_in(user, scope="openid profile offline_access")["code"]
    response = client.post("/api/v1/auth/token", json={
        "code": code, "redirect_uri": rp.redirect_uri, "client_id": rp.client_id,
        "code_verifier": rp.verifier})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert list(body) == ["token", "token_type", "expires_at", "expires_in", "refresh_token",
                          "user"]
    assert body["user"]["id"] == user["id"] and body["refresh_token"]
    assert jwt_parts(body["token"])[1]["client_id"] == rp.client_id
    again = client.post("/api/v1/auth/token", json={
        "code": code, "redirect_uri": rp.redirect_uri, "client_id": rp.client_id,
        "code_verifier": rp.verifier})
    assert again.status_code == 401
    assert again.get_json()["error"]["code"] == "UNAUTHORIZED"


def test_seed_code_exchange_gives_a_third_party_client_no_account(client, make_rp, make_user,
                                                                 make_tenant):
    """The answer's "user" (e-mail, platform roles, memberships) is the account, which
    /auth/me refuses to a third-party token; a third-party client consented for "openid"
    alone gets its tokens without it."""
    from tests.oidc import csrf_token

    user = make_user(roles=["admin"], tenants={make_tenant(): "admin"})
    rp = make_rp(first_party=False)
    consent_url = rp.submit_login(rp.authorize(scope="openid"), user["username"],
                                  user["password"]).headers["Location"]
    page = rp.http.get(consent_url).get_data(True)
    code = rp.callback(rp.http.post(consent_url, data={"csrf_token": csrf_token(page),
                                                       "decision": "allow"}))["code"]
    response = client.post("/api/v1/auth/token", json={
        "code": code, "redirect_uri": rp.redirect_uri, "client_id": rp.client_id,
        "code_verifier": rp.verifier})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert list(body) == ["token", "token_type", "expires_at", "expires_in", "refresh_token"]
    assert jwt_parts(body["token"])[1]["sub"] == user["id"]


def test_seed_code_exchange_refuses_confidential_clients_without_burning_the_code(
        client, make_rp, make_user):
    rp, user = make_rp(public=False), make_user()
    code = rp.sign_in(user)["code"]
    response = client.post("/api/v1/auth/token", json={
        "code": code, "redirect_uri": rp.redirect_uri, "client_id": rp.client_id,
        "code_verifier": rp.verifier})
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "UNAUTHORIZED"
    assert rp.exchange(code).status_code == 200


@pytest.mark.parametrize("body, status", [
    ({"code": "x", "redirect_uri": "http://127.0.0.1:9999/cb", "client_id": "nope",
      "code_verifier": "v" * 43}, 401),
    ({"code": "x"}, 400),
    ({"code": 5, "redirect_uri": "u", "client_id": "c", "code_verifier": "v"}, 400),
])
def test_seed_code_exchange_errors_use_the_envelope(client, body, status):
    response = client.post("/api/v1/auth/token", json=body)
    assert response.status_code == status
    assert set(response.get_json()["error"]) == {"code", "message"}


def test_the_verifier_is_checked_with_s256_never_plain(make_rp, make_user):
    rp, user = make_rp(), make_user()
    challenge = "c" * 43  # sent as its own verifier: what "plain" would accept
    code = rp.sign_in(user, code_challenge=challenge)["code"]
    failed = rp.exchange(code, code_verifier=challenge)
    assert failed.status_code == 400 and failed.get_json()["error"] == "invalid_grant"


@pytest.mark.parametrize("attempt", ["wrong verifier", "another client"])
def test_a_failed_exchange_does_not_burn_the_code(make_rp, make_user, attempt):
    """Whoever holds an intercepted code without the verifier (what PKCE is for) must not
    be able to spoil the legitimate client's exchange."""
    rp, user = make_rp(), make_user()
    code = rp.sign_in(user)["code"]
    if attempt == "wrong verifier":
        failed = rp.exchange(code, code_verifier="a" * 64)
    else:
        other = make_rp()
        other.verifier = rp.verifier
        failed = other.exchange(code)
    assert failed.status_code == 400 and failed.get_json()["error"] == "invalid_grant"
    assert rp.exchange(code).status_code == 200
