"""Consent for third-party clients: asked once, remembered, revocable by the user."""

import threading
from datetime import datetime, timezone

import pytest
from freezegun import freeze_time

from tests.conftest import audit_events
from tests.helpers import bearer, jwt_parts, login, round_trips
from tests.oidc import csrf_token, query_of


def _consent(rp, response, decision: str):
    assert response.status_code in (302, 303)
    consent_url = response.headers["Location"]
    assert consent_url.startswith("/consent/"), consent_url
    page = rp.http.get(consent_url)
    assert page.status_code == 200
    html = page.get_data(True)
    assert "See your e-mail address" in html and "Keep access while you are signed out" in html
    return rp.http.post(consent_url, data={"csrf_token": csrf_token(html),
                                           "decision": decision})


def test_first_party_clients_never_ask(make_rp, make_user):
    assert "code" in make_rp().sign_in(make_user(), scope="openid email offline_access")


def test_third_party_consent_is_asked_once_and_remembered(client, make_rp, make_user):
    rp, user = make_rp(first_party=False, client_name="Third Party"), make_user()
    scope = "openid email offline_access"
    after_login = rp.submit_login(rp.authorize(scope=scope), user["username"], user["password"])
    callback = rp.callback(_consent(rp, after_login, "allow"))
    assert rp.exchange(callback["code"]).status_code == 200
    # remembered: the next request goes straight through, prompt=none included
    assert "code" in rp.callback(rp.authorize(scope=scope))
    assert "code" in rp.callback(rp.authorize(scope="openid", prompt="none"))
    # asking for more asks again
    wider = rp.authorize(scope="openid email profile offline_access", prompt="none")
    assert rp.callback(wider)["error"] == "consent_required"
    assert rp.authorize(scope="openid profile").headers["Location"].startswith("/consent/")


def test_a_head_request_never_spends_the_waiting_request(make_rp, make_user):
    """A link checker's HEAD of the login or consent page is refused: the GET may answer
    the waiting request (a code, when the user signed in or consented in another tab), and
    a HEAD would spend it where the user's own GET then finds nothing."""
    rp, user = make_rp(first_party=False), make_user()
    request = rp.authorize(scope="openid email offline_access")
    login_url = request.headers["Location"]
    head = rp.http.head(login_url)
    assert head.status_code == 405 and head.headers["Allow"] == "GET, POST"
    consent_url = rp.submit_login(request, user["username"], user["password"]).headers["Location"]
    assert consent_url.startswith("/consent/")
    head = rp.http.head(consent_url)
    assert head.status_code == 405 and head.headers["Allow"] == "GET, POST"
    page = rp.http.get(consent_url)
    assert page.status_code == 200
    callback = rp.callback(rp.http.post(consent_url, data={
        "csrf_token": csrf_token(page.get_data(True)), "decision": "allow"}))
    assert "code" in callback


def test_a_head_of_the_sso_button_never_spends_the_waiting_request(make_rp, make_user):
    """The "Sign in with ..." URL of a login page answers the waiting request too, once it
    can be answered: no page answers HEAD."""
    rp, user, scope = make_rp(first_party=False), make_user(), "openid email"
    # signed in; tab 1 waits on the consent page
    first = rp.submit_login(rp.authorize(scope=scope, state="one"),
                            user["username"], user["password"]).headers["Location"]
    assert first.startswith("/consent/")
    # tab 2: the same client, consented there
    second = rp.authorize(scope=scope, state="two").headers["Location"]
    page = rp.http.get(second)
    rp.http.post(second, data={"csrf_token": csrf_token(page.get_data(True)),
                               "decision": "allow"})
    # a link checker's HEAD of tab 1's "Sign in with" URL
    head = rp.http.head(f"/login/{first.removeprefix('/consent/')}/sso/okta")
    assert head.status_code == 405, (head.status_code, head.headers.get("Location"))
    assert "code" in rp.callback(rp.http.get(first))  # the user's own GET still answers


def test_denying_consent_is_access_denied(make_rp, make_user):
    rp, user = make_rp(first_party=False), make_user()
    after_login = rp.submit_login(rp.authorize(scope="openid email offline_access", state="s9"),
                                  user["username"], user["password"])
    callback = rp.callback(_consent(rp, after_login, "deny"))
    assert callback["error"] == "access_denied" and callback["state"] == "s9"
    assert "iss" in callback and "code" not in callback


def test_an_authorize_looks_the_consent_up_once(app, make_rp, make_user):
    rp, user, scope = make_rp(first_party=False), make_user(), "openid email offline_access"
    after_login = rp.submit_login(rp.authorize(scope=scope), user["username"], user["password"])
    rp.callback(_consent(rp, after_login, "allow"))
    for prompt, wider, answer in ((None, False, "code"), ("none", False, "code"),
                                  ("none", True, "consent_required"), (None, True, "/consent/")):
        with round_trips(app) as trips:
            response = rp.authorize(scope=scope + " profile" if wider else scope, prompt=prompt)
        assert answer in response.headers["Location"]
        assert trips.statements("consents") == 1, (prompt, wider)


def test_the_consent_page_loads_the_account_once(app, make_rp, make_user):
    rp, user = make_rp(first_party=False), make_user()
    after_login = rp.submit_login(rp.authorize(), user["username"], user["password"])
    with round_trips(app) as trips:
        page = rp.http.get(after_login.headers["Location"])
    assert f"<strong>{user['username']}</strong>" in page.get_data(True)
    assert trips.statements("users") == 1


def test_prompt_none_for_an_unconsented_client_is_consent_required(make_rp, make_user):
    first_party, third_party, user = make_rp(), make_rp(first_party=False), make_user()
    first_party.sign_in(user)  # a session exists
    third_party.http = first_party.http
    callback = third_party.callback(third_party.authorize(prompt="none"))
    assert callback["error"] == "consent_required"


def test_the_consent_form_needs_its_csrf_token(make_rp, make_user):
    rp, user = make_rp(first_party=False), make_user()
    after_login = rp.submit_login(rp.authorize(), user["username"], user["password"])
    forged = rp.http.post(after_login.headers["Location"],
                          data={"csrf_token": "forged", "decision": "allow"})
    assert forged.status_code == 400 and "Location" not in forged.headers


def test_users_list_and_revoke_their_consents(client, make_rp, make_user):
    rp, user = make_rp(first_party=False, client_name="Reports"), make_user()
    scope = "openid email offline_access"
    after_login = rp.submit_login(rp.authorize(scope=scope), user["username"], user["password"])
    rp.callback(_consent(rp, after_login, "allow"))
    own = login(client, user["username"], user["password"]).get_json()

    listed = client.get("/api/v1/auth/consents", headers=bearer(own["token"]))
    assert listed.status_code == 200
    [consent] = listed.get_json()["consents"]
    assert consent["client_id"] == rp.client_id and consent["client_name"] == "Reports"
    assert set(consent["scope"].split()) == {"openid", "email", "offline_access"}
    assert consent["granted_at"].endswith("Z")

    # the third party's own token may not read or withdraw the user's consents
    third = rp.tokens_for(user, scope=scope)
    assert client.get("/api/v1/auth/consents",
                      headers=bearer(third["access_token"])).status_code == 403

    revoked = client.delete(f"/api/v1/auth/consents/{rp.client_id}", headers=bearer(own["token"]))
    assert revoked.status_code == 204
    again = client.delete(f"/api/v1/auth/consents/{rp.client_id}", headers=bearer(own["token"]))
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "NOT_FOUND"
    assert rp.authorize(scope=scope).headers["Location"].startswith("/consent/")
    assert client.get("/api/v1/auth/consents").status_code == 401


def test_withdrawing_consent_ends_what_the_client_holds_for_the_user(client, make_rp, make_user):
    """Its refresh families end and its access tokens stop working, with or without a
    refresh token; another client's tokens stand; consenting again starts afresh."""
    rp, other, user = (make_rp(first_party=False, client_name="Reports"),
                       make_rp(first_party=False, client_name="Other"), make_user())
    scope = "openid email offline_access"
    after_login = rp.submit_login(rp.authorize(scope=scope), user["username"], user["password"])
    first = rp.exchange(rp.callback(_consent(rp, after_login, "allow"))["code"]).get_json()
    second = rp.tokens_for(user, scope=scope)
    without_refresh = rp.tokens_for(user, scope="openid email")
    kept = other.exchange(other.callback(_consent(other, other.authorize(scope=scope),
                                                  "allow"))["code"]).get_json()
    own = login(client, user["username"], user["password"]).get_json()

    assert client.delete(f"/api/v1/auth/consents/{rp.client_id}",
                         headers=bearer(own["token"])).status_code == 204
    for tokens in (first, second, without_refresh):
        assert client.get("/oauth/userinfo",
                          headers=bearer(tokens["access_token"])).status_code == 401
    for tokens in (first, second):
        refused = rp.refresh(tokens["refresh_token"])
        assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"
    assert client.get("/oauth/userinfo", headers=bearer(kept["access_token"])).status_code == 200
    assert other.refresh(kept["refresh_token"]).status_code == 200

    # asked again (the browser is still signed in from before the withdrawal), and what the
    # new consent gives works: its family began after the withdrawal
    again = rp.exchange(rp.callback(_consent(rp, rp.authorize(scope=scope), "allow"))["code"])
    assert again.status_code == 200
    refreshed = rp.refresh(again.get_json()["refresh_token"])
    assert refreshed.status_code == 200
    assert client.get("/oauth/userinfo",
                      headers=bearer(refreshed.get_json()["access_token"])).status_code == 200


def test_a_code_issued_before_a_withdrawal_gives_nothing_after_it(client, make_rp, make_user):
    rp, user = make_rp(first_party=False, client_name="Reports"), make_user()
    scope = "openid email offline_access"
    after_login = rp.submit_login(rp.authorize(scope=scope), user["username"], user["password"])
    rp.callback(_consent(rp, after_login, "allow"))
    code = rp.callback(rp.authorize(scope=scope))["code"]  # remembered consent: a code at once
    own = login(client, user["username"], user["password"]).get_json()
    assert client.delete(f"/api/v1/auth/consents/{rp.client_id}",
                         headers=bearer(own["token"])).status_code == 204
    refused = rp.exchange(code)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


def test_a_family_from_before_its_start_was_kept_counts_from_its_sign_in(app, client, make_rp,
                                                                          make_user):
    """A family written by an earlier release has no start moment: it counts from the
    sign-in, which is earlier, so a withdrawal still ends it."""
    from app.extensions import services

    rp, user = make_rp(first_party=False, client_name="Reports"), make_user()
    scope = "openid email offline_access"
    after_login = rp.submit_login(rp.authorize(scope=scope), user["username"], user["password"])
    tokens = rp.exchange(rp.callback(_consent(rp, after_login, "allow"))["code"]).get_json()
    with app.app_context():
        store = services().store
        store.client.hdel(store.key("rf", tokens["refresh_token"].split(".")[0]), "st")
    own = login(client, user["username"], user["password"]).get_json()
    assert client.delete(f"/api/v1/auth/consents/{rp.client_id}",
                         headers=bearer(own["token"])).status_code == 204
    assert rp.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def _withdrawing_in_the_middle(client, rp, user, monkeypatch, cls, name):
    """Make ``cls.name`` withdraw the consent (another request) on its first call, after
    doing its own work: the withdrawal lands in the middle of the request that calls it."""
    own = login(client, user["username"], user["password"]).get_json()
    original, started, done = getattr(cls, name), [], []

    def meanwhile(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if not started:  # once (the withdrawal itself calls it too)
            started.append(True)
            done.append(client.delete(f"/api/v1/auth/consents/{rp.client_id}",
                                      headers=bearer(own["token"])).status_code)
        return result

    monkeypatch.setattr(cls, name, meanwhile)
    return done


def _consented(rp, user, scope="openid email offline_access"):
    after_login = rp.submit_login(rp.authorize(scope=scope), user["username"], user["password"])
    return rp.callback(_consent(rp, after_login, "allow"))["code"]


def test_a_withdrawal_between_the_consent_read_and_the_code_leaves_the_code_worthless(
        client, make_rp, make_user, monkeypatch):
    from app.repositories import SqlConsentDirectory

    rp, user = make_rp(first_party=False, client_name="Reports"), make_user()
    rp.exchange(_consented(rp, user))
    done = _withdrawing_in_the_middle(client, rp, user, monkeypatch, SqlConsentDirectory, "find")
    code = rp.callback(rp.authorize(scope="openid email offline_access"))["code"]
    assert done == [204]  # the consent was found, then withdrawn, then the code saved
    refused = rp.exchange(code)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


def test_a_withdrawal_right_after_the_consent_is_given_leaves_the_code_worthless(
        client, make_rp, make_user, monkeypatch):
    from app.repositories import SqlConsentDirectory

    rp, user = make_rp(first_party=False, client_name="Reports"), make_user()
    scope = "openid email offline_access"
    after_login = rp.submit_login(rp.authorize(scope=scope), user["username"], user["password"])
    done = _withdrawing_in_the_middle(client, rp, user, monkeypatch, SqlConsentDirectory, "grant")
    code = rp.callback(_consent(rp, after_login, "allow"))["code"]
    assert done == [204]  # consented, withdrawn in another tab, then the code saved
    refused = rp.exchange(code)
    assert refused.status_code == 400 and refused.get_json()["error"] == "invalid_grant"


def test_a_withdrawal_during_a_code_exchange_or_a_refresh_leaves_nothing_working(
        client, make_rp, make_user, monkeypatch):
    """The tokens count as issued, and the family as begun, when the watermarks were read."""
    from app.repositories import SqlAccountDirectory

    rp, user = make_rp(first_party=False, client_name="Reports"), make_user()
    code = _consented(rp, user)
    done = _withdrawing_in_the_middle(client, rp, user, monkeypatch, SqlAccountDirectory,
                                      "find_by_id")
    tokens = rp.exchange(code)
    assert done == [204] and tokens.status_code == 200  # it read the account before
    assert client.get("/oauth/userinfo",
                      headers=bearer(tokens.get_json()["access_token"])).status_code == 401
    assert rp.refresh(tokens.get_json()["refresh_token"]).get_json()["error"] == "invalid_grant"

    monkeypatch.undo()
    again = rp.exchange(rp.callback(_consent(rp, rp.authorize(
        scope="openid email offline_access"), "allow"))["code"]).get_json()
    done = _withdrawing_in_the_middle(client, rp, user, monkeypatch, SqlAccountDirectory,
                                      "find_by_id")
    refreshed = rp.refresh(again["refresh_token"])
    assert done == [204] and refreshed.status_code == 200
    assert client.get("/oauth/userinfo",
                      headers=bearer(refreshed.get_json()["access_token"])).status_code == 401
    assert rp.refresh(refreshed.get_json()["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_a_third_party_token_carries_no_rights_on_the_infracast_api(client, make_rp, make_user,
                                                                     make_tenant):
    """Consent grants identity scopes; it never lets a third party act as the user."""
    from tests.helpers import jwt_parts

    tenant = make_tenant()
    admin = make_user(roles=["admin"], tenants={tenant: "admin"})
    rp = make_rp(first_party=False)
    after_login = rp.submit_login(rp.authorize(scope="openid email offline_access"),
                                  admin["username"], admin["password"])
    tokens = rp.exchange(rp.callback(_consent(rp, after_login, "allow"))["code"]).get_json()
    claims = jwt_parts(tokens["access_token"])[1]
    assert claims["roles"] == [] and claims["tenants"] == {}
    headers = bearer(tokens["access_token"])
    assert client.get("/api/v1/admin/users", headers=headers).status_code == 403
    assert client.post("/api/v1/api-keys", headers=headers, json={
        "name": "x", "tenants": [tenant], "permissions": ["admin:*"]}).status_code == 403
    assert client.get("/oauth/userinfo", headers=headers).status_code == 200
    # the refreshed token stays without rights
    refreshed = client.post("/oauth/token", data={
        "grant_type": "refresh_token", "client_id": rp.client_id,
        "refresh_token": tokens["refresh_token"]}).get_json()
    assert jwt_parts(refreshed["access_token"])[1]["tenants"] == {}


FORBIDDEN = {"error": {"code": "FORBIDDEN", "message": "Insufficient permissions"}}


def _refused(app) -> list[tuple]:
    return [(r["outcome"], r["actor"], r["target"], r["details"])
            for r in audit_events(app, "api.access")]


def _refusal(user, rp, path) -> tuple:
    return ("denied", user["id"], path, {"reason": "third_party_client", "client_id": rp.client_id})


def test_a_third_party_token_cannot_see_or_touch_the_users_api_keys(app, client, make_rp,
                                                                     make_user, make_tenant):
    """Its tokens carry no rights, but the routes scoped to the caller's own keys must not
    take it for the user either: each refusal is a 403, audited."""
    tenant = make_tenant()
    user = make_user(tenants={tenant: "admin"})
    own = bearer(login(client, user["username"], user["password"]).get_json()["token"])
    key = client.post("/api/v1/api-keys", headers=own, json={
        "name": "ci", "tenants": [tenant], "permissions": ["nodes:read"]}).get_json()
    rp = make_rp(first_party=False)
    third_party = bearer(rp.exchange(_consented(rp, user)).get_json()["access_token"])
    key_path = f"/api/v1/api-keys/{key['id']}"
    calls = [("GET", "/api/v1/api-keys"), ("POST", "/api/v1/api-keys"), ("GET", key_path),
             ("DELETE", key_path), ("POST", f"{key_path}/rotate")]
    for method, path in calls:
        response = client.open(path, method=method, headers=third_party, json={
            "name": "x", "tenants": [tenant], "permissions": ["nodes:read"]})
        assert (response.status_code, response.get_json()) == (403, FORBIDDEN), (method, path)
    assert _refused(app) == [_refusal(user, rp, path) for _, path in calls]
    # the key is still there, with its secret unchanged
    assert client.get(key_path, headers=own).get_json()["id"] == key["id"]
    assert [k["id"] for k in client.get("/api/v1/api-keys", headers=own).get_json()["items"]] \
        == [key["id"]]


def test_a_third_party_token_cannot_read_the_users_account(app, client, make_rp, make_user,
                                                           make_tenant):
    """/auth/me (e-mail, roles, memberships) is for the user's own first-party tokens."""
    user = make_user(tenants={make_tenant(): "admin"})
    rp = make_rp(first_party=False)
    third_party = bearer(rp.exchange(_consented(rp, user)).get_json()["access_token"])
    me = client.get("/api/v1/auth/me", headers=third_party)
    assert (me.status_code, me.get_json()) == (403, FORBIDDEN)
    assert _refused(app) == [_refusal(user, rp, "/api/v1/auth/me")]
    own = login(client, user["username"], user["password"]).get_json()["token"]
    assert client.get("/api/v1/auth/me", headers=bearer(own)).status_code == 200


def _allow_then_sign_in_again(rp, consent_url: str, page: str, user):
    """Allow on the consent page, be sent to sign in again, and do: the answer to the login."""
    answer = rp.http.post(consent_url, data={"csrf_token": csrf_token(page), "decision": "allow"})
    login_url = answer.headers["Location"]
    assert answer.status_code == 303 and login_url.startswith("/login/")
    form = rp.http.get(login_url)
    assert form.status_code == 200
    return rp.http.post(login_url, data={"csrf_token": csrf_token(form.get_data(True)),
                                         "username": user["username"],
                                         "password": user["password"]})


def test_a_sign_in_revoked_on_the_consent_page_asks_to_sign_in_again(app, make_rp, make_user):
    from app.extensions import services

    rp, user = make_rp(first_party=False), make_user()
    with freeze_time("2026-11-29 10:00:00"):
        after_login = rp.submit_login(rp.authorize(scope="openid email offline_access"),
                                      user["username"], user["password"])
        consent_url = after_login.headers["Location"]
        page = rp.http.get(consent_url).get_data(True)
    with freeze_time("2026-11-29 10:01:00"), app.app_context():
        services().tokens.revoke_user(user["id"])
    with freeze_time("2026-11-29 10:02:00"):
        after_login = _allow_then_sign_in_again(rp, consent_url, page, user)
        callback = rp.callback(_consent(rp, after_login, "allow"))
        assert rp.exchange(callback["code"]).status_code == 200


@pytest.mark.parametrize("prompt", [None, "consent"])
def test_a_sign_in_older_than_max_age_on_the_consent_page_asks_to_sign_in_again(
        make_rp, make_user, prompt):
    """OIDC Core §3.1.2.1: max_age holds when the code is issued, not only when the request
    arrives; a user whose sign-in was fresh enough when the request came, and who leaves the
    consent page open past it, signs in again (and the consent given stands,
    ``prompt=consent`` included: no second consent page)."""
    rp, user = make_rp(first_party=False), make_user()
    with freeze_time("2026-11-29 10:00:00"):
        rp.exchange(_consented(rp, user))  # signed in beforehand
    with freeze_time("2026-11-29 10:00:30"):
        # a scope more: the consent page is due without prompt=consent too
        request = rp.authorize(scope="openid profile email offline_access", max_age="60",
                               prompt=prompt)
        consent_url = request.headers["Location"]
        assert consent_url.startswith("/consent/")  # 30 s old: fresh enough, no login
        page = rp.http.get(consent_url).get_data(True)
    with freeze_time("2026-11-29 10:10:00"):
        callback = rp.callback(_allow_then_sign_in_again(rp, consent_url, page, user))
        tokens = rp.exchange(callback["code"]).get_json()
    signed_in_again = int(datetime(2026, 11, 29, 10, 10, tzinfo=timezone.utc).timestamp())
    assert jwt_parts(tokens["id_token"])[1]["auth_time"] == signed_in_again


def test_another_user_signing_in_after_the_consent_is_asked_again_with_prompt_consent(
        app, make_rp, make_user):
    """The consent given on the page, before max_age sent the browser to sign in again, was
    the first user's: a different user signing in there is shown the page that
    ``prompt=consent`` asks for, although a stored consent of theirs covers the scopes."""
    from app.extensions import services

    rp, alice, bob = make_rp(first_party=False), make_user(), make_user()
    scope = "openid email offline_access"
    with app.app_context():
        services().consents.grant(bob["id"], rp.client_id, scope.split())
    with freeze_time("2026-11-29 10:00:00"):
        rp.exchange(_consented(rp, alice))
    with freeze_time("2026-11-29 10:00:30"):
        consent_url = rp.authorize(scope=scope, max_age="60", prompt="consent").headers["Location"]
        assert consent_url.startswith("/consent/")
        page = rp.http.get(consent_url).get_data(True)
    with freeze_time("2026-11-29 10:10:00"):
        after_login = _allow_then_sign_in_again(rp, consent_url, page, bob)
        assert after_login.headers["Location"].startswith("/consent/")
        callback = rp.callback(_consent(rp, after_login, "allow"))
        tokens = rp.exchange(callback["code"]).get_json()
    assert jwt_parts(tokens["id_token"])[1]["sub"] == bob["id"]


@pytest.mark.parametrize("first_party, prompt", [(False, None), (True, "consent")])
def test_the_sign_in_made_for_the_request_meets_max_age_through_the_consent_page(
        make_rp, make_user, first_party, prompt):
    """max_age=0 asks for a sign-in now (as prompt=login): the one made for the request
    meets it, however long the consent page then takes (a login in the interaction, as in
    node-oidc-provider), rather than sending the user back to sign in again and again."""
    rp, user = make_rp(first_party=first_party), make_user()
    with freeze_time("2026-11-29 10:00:00.500") as clock:
        request = rp.authorize(scope="openid email offline_access", max_age="0", prompt=prompt)
        after_login = rp.submit_login(request, user["username"], user["password"])
        clock.tick(20)  # reading the consent page
        callback = rp.callback(_consent(rp, after_login, "allow"))
        tokens = rp.exchange(callback["code"]).get_json()
    signed_in = int(datetime(2026, 11, 29, 10, 0, tzinfo=timezone.utc).timestamp())
    assert jwt_parts(tokens["id_token"])[1]["auth_time"] == signed_in


def test_a_waiting_request_is_stored_as_the_previous_release_reads_it(app, make_rp, make_user):
    """During a rolling deploy (or after a rollback) the previous release reads a waiting
    request as Interaction(**record) with the fields it knows: the mark of a sign-in made
    for the request is kept beside the record, never in it."""
    import json

    from app.extensions import services

    rp, user = make_rp(first_party=False), make_user()
    after_login = rp.submit_login(rp.authorize(scope="openid email offline_access", max_age="0"),
                                  user["username"], user["password"])
    interaction_id = after_login.headers["Location"].split("/")[2]
    with app.app_context():
        flow = services().flow
        record, mark = flow.store.mget([flow._key(interaction_id),
                                        flow._signed_in_key(interaction_id)])
    assert set(json.loads(record)) == {"params", "session", "login", "consent"}
    assert json.loads(mark) == {"session": json.loads(record)["session"]}
    assert "code" in rp.callback(_consent(rp, after_login, "allow"))  # and it is honoured


def _at_once(*calls):
    """Run each call in a thread of its own, all at once; their results."""
    results: list = [None] * len(calls)

    def run(i, call):
        try:
            results[i] = call()
        except BaseException as error:  # handed back to the test
            results[i] = error

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def _second_tab(app, http):
    """Another test client with the first one's IdP session cookie: the same browser."""
    tab = app.test_client()
    tab.set_cookie("idp_session", http.get_cookie("idp_session").value)
    return tab


def _codes(responses) -> list[str]:
    return [query_of(r.headers["Location"])["code"] for r in responses
            if r.status_code in (302, 303) and "code=" in r.headers.get("Location", "")]


def _both_wait_after(monkeypatch, cls, name):
    """Hold both requests after ``cls.name`` (ours), so both have read the waiting request
    before either answers it."""
    barrier, original = threading.Barrier(2, timeout=20), getattr(cls, name)

    def held(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        barrier.wait()
        return result

    monkeypatch.setattr(cls, name, held)


def test_a_consent_form_posted_twice_at_once_gets_one_code(app, make_rp, make_user, monkeypatch):
    """A double click, or the page open in two tabs: one authorization request is answered
    once; the other post finds it answered."""
    from app.repositories import SqlConsentDirectory

    rp, user = make_rp(first_party=False), make_user()
    consent_url = rp.submit_login(rp.authorize(scope="openid email offline_access"),
                                  user["username"], user["password"]).headers["Location"]
    form = {"csrf_token": csrf_token(rp.http.get(consent_url).get_data(True)), "decision": "allow"}
    _both_wait_after(monkeypatch, SqlConsentDirectory, "grant")
    tabs = (rp.http, _second_tab(app, rp.http))
    responses = _at_once(*[lambda tab=tab: tab.post(consent_url, data=form) for tab in tabs])
    assert len(_codes(responses)) == 1
    assert sorted(r.status_code for r in responses) == [303, 404]


def test_a_login_form_posted_twice_at_once_gets_one_code(app, make_rp, make_user, monkeypatch):
    from idp.sessions import SessionStore

    rp, user = make_rp(), make_user()
    login_url = rp.authorize(scope="openid email").headers["Location"]
    form = {"csrf_token": csrf_token(rp.http.get(login_url).get_data(True)),
            "username": user["username"], "password": user["password"]}
    _both_wait_after(monkeypatch, SessionStore, "sign_in")
    tabs = (rp.http, _second_tab(app, rp.http))
    responses = _at_once(*[lambda tab=tab: tab.post(login_url, data=form) for tab in tabs])
    assert len(_codes(responses)) == 1
    assert sorted(r.status_code for r in responses) == [303, 404]


def test_a_request_answered_in_another_tab_is_not_saved_again(app, make_rp):
    """Allow is answered (the code) while a sign-in in another tab resumes the same request
    and would leave it waiting on the consent page again: it stays answered."""
    from app.extensions import services
    from idp.authorize import InteractionExpired

    rp = make_rp(first_party=False)
    login_url = rp.authorize(scope="openid email").headers["Location"]
    interaction_id = login_url.split("/")[2]
    with app.test_request_context():
        flow = services().flow
        interaction = flow.waiting(interaction_id, services().sessions.find(
            rp.http.get_cookie("idp_session").value))
        flow._spend(interaction)  # answered meanwhile, in another tab
        with pytest.raises(InteractionExpired):
            flow._save(interaction, waiting=True)
        assert flow.store.mget(flow._keys(interaction_id)) == [None, None]


def test_a_withdrawal_while_a_consent_is_recorded_stands(app, client, make_rp, make_user,
                                                          monkeypatch):
    """The user allows more scopes in one tab and withdraws the client's consent in another
    at that moment: the withdrawal waits for the grant and removes it all, rather than the
    grant's write bringing back the scopes it had just withdrawn."""
    import time

    import app.repositories as repositories

    rp, user = make_rp(first_party=False), make_user()
    rp.exchange(_consented(rp, user))
    own = bearer(login(client, user["username"], user["password"]).get_json()["token"])
    consent_url = rp.authorize(scope="openid profile").headers["Location"]
    form = {"csrf_token": csrf_token(rp.http.get(consent_url).get_data(True)), "decision": "allow"}
    granting, original = threading.Event(), repositories._upsert_insert
    granter = []

    def upsert_insert(conn):
        if threading.current_thread() in granter and not granting.is_set():
            granting.set()  # the grant has read the consent; it writes in a moment
            time.sleep(0.4)
        return original(conn)

    monkeypatch.setattr(repositories, "_upsert_insert", upsert_insert)
    allow = threading.Thread(target=lambda: rp.http.post(consent_url, data=form))
    granter.append(allow)
    allow.start()
    assert granting.wait(10)
    withdrawn = app.test_client().delete(f"/api/v1/auth/consents/{rp.client_id}", headers=own)
    allow.join(20)
    assert withdrawn.status_code == 204
    listed = client.get("/api/v1/auth/consents", headers=own).get_json()["consents"]
    assert [c for c in listed if c["client_id"] == rp.client_id] == []
    assert rp.callback(rp.authorize(scope="openid email", prompt="none"))["error"] == \
        "consent_required"


def test_two_consent_grants_at_once_keep_both(app, make_rp, make_user, monkeypatch):
    """Two tabs allow different scopes to a client the user never consented to before: both
    find no consent, and the second must merge with the first, not overwrite it."""
    import app.repositories as repositories
    from app.extensions import services

    rp, user = make_rp(first_party=False), make_user()
    barrier, original, held = threading.Barrier(2, timeout=20), repositories._upsert_insert, set()

    def upsert_insert(conn):
        if threading.get_ident() not in held:  # both have found no consent
            held.add(threading.get_ident())
            barrier.wait()
        return original(conn)

    monkeypatch.setattr(repositories, "_upsert_insert", upsert_insert)

    def grant(scopes):
        with app.app_context():
            services().consents.grant(user["id"], rp.client_id, scopes)

    _at_once(lambda: grant(["openid", "email"]), lambda: grant(["openid", "profile"]))
    with app.app_context():
        assert sorted(services().consents.find(user["id"], rp.client_id).scopes) == [
            "email", "openid", "profile"]
