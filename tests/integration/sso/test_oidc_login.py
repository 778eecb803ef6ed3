"""Signing in through Okta and Azure AD (issue 7): our side through the Flask test client,
the upstream a real OpenID Connect provider process reached over HTTP."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest
from freezegun import freeze_time

from idp.permissions import ADMIN_ALL, READ, WRITE
from tests.conftest import audit_events, bearer
from tests.federation.conftest import AZURE_TENANT
from tests.federation.upstream import DEFAULT_USER
from tests.helpers import free_port, jwt_parts
from tests.integration.sso.conftest import (ISSUER, created, federated_users,
                                            lands_on_relying_party, sso_sign_in, via_upstream)
from tests.oidc import query_of
from tests.sso import OKTA_DOMAIN, azure_body, okta_body

AZURE_OID = "00000000-0000-0000-66f3-3332eca7ea81"


def tokens(rp, callback) -> dict:
    response = rp.exchange(rp.callback(callback)["code"])
    assert response.status_code == 200, response.get_json()
    return response.get_json()


# -- the happy paths ---------------------------------------------------------------------

def test_okta_first_login_creates_a_user_and_the_second_reaches_it_with_a_fresh_profile(
        sso_app, browser, rp, upstream, configure, make_tenant):
    acme = make_tenant("acme")
    configure("okta", okta_body(upstream, default_tenants=[{"id": acme, "role": "viewer"}]))
    assert created(sso_app) == (1, 0)  # the admin

    params = rp.params()
    started = browser.get("/api/v1/auth/sso/okta/login", query_string=params)
    callback = browser.get(via_upstream(browser, started, upstream))
    back = rp.callback(callback)
    assert back["state"] == params["state"] and back["iss"] == ISSUER
    body = rp.exchange(back["code"]).get_json()
    _, access = jwt_parts(body["access_token"])
    [user] = federated_users(sso_app)
    assert access["sub"] == user["id"] and access["tenants"] == {acme: list(READ)}
    assert user == {
        "id": user["id"], "username": "okta.ada@customer.example",
        "email": "ada@customer.example", "email_verified": True, "name": "Ada Lovelace",
        "password_hash": None, "provider": "okta", "upstream": OKTA_DOMAIN,
        "subject": DEFAULT_USER["sub"], "tenants": {acme: "viewer"}}
    assert [e["target"] for e in audit_events(sso_app, "sso.user.create")] == [user["id"]]
    [login] = audit_events(sso_app, "sso.login")
    assert login["outcome"] == "success" and login["actor"] == user["id"]
    assert login["target"] == "okta" and login["details"]["created"] is True

    upstream.set(user={**DEFAULT_USER, "email": "ada.king@customer.example",
                       "email_verified": False, "name": "Ada King"})
    second = sso_app.test_client()  # another browser, no IdP session
    rp.http = second
    again = tokens(rp, sso_sign_in(second, rp, upstream))
    assert jwt_parts(again["access_token"])[1]["sub"] == user["id"]
    [updated] = federated_users(sso_app)
    assert (updated["id"], updated["username"]) == (user["id"], user["username"])
    assert (updated["email"], updated["email_verified"], updated["name"]) == (
        "ada.king@customer.example", False, "Ada King")
    assert created(sso_app) == (2, 1)
    assert len(audit_events(sso_app, "sso.user.create")) == 1


def test_azure_ad_issuer_shape_and_the_seed_code_exchange(sso_app, browser, rp, upstream,
                                                          configure, make_tenant):
    beta = make_tenant("beta")
    upstream.set(user={**DEFAULT_USER, "oid": AZURE_OID})
    shown = configure("azure", azure_body(default_tenants=[{"id": beta, "role": "editor"}]))
    assert shown["issuer"] == f"{upstream.url}/{AZURE_TENANT}/v2.0"
    assert shown["redirect_uri"] == f"{ISSUER}/api/v1/auth/sso/azure/callback"

    started = browser.get("/api/v1/auth/sso/azure/login", query_string=rp.params())
    assert started.headers["Location"].startswith(f"{upstream.url}/{AZURE_TENANT}/v2.0/authorize?")
    callback = browser.get(via_upstream(browser, started, upstream, "azure"))
    code = rp.callback(callback)["code"]
    seed = browser.post("/api/v1/auth/token", json={
        "code": code, "redirect_uri": rp.redirect_uri, "client_id": rp.client_id,
        "code_verifier": rp.verifier})
    assert seed.status_code == 200, seed.get_json()
    body = seed.get_json()
    assert body["token_type"] == "Bearer" and body["user"]["username"] == "azure.ada@customer.example"
    assert body["user"]["tenants"] == [{"id": beta, "role": "editor"}]
    me = browser.get("/api/v1/auth/me", headers=bearer(body["token"]))
    assert me.status_code == 200 and me.get_json()["id"] == body["user"]["id"]
    [user] = federated_users(sso_app)
    assert (user["upstream"], user["subject"]) == (AZURE_TENANT, AZURE_OID)


def test_an_azure_user_is_reached_by_their_oid_when_the_sub_changes(sso_app, browser, rp,
                                                                     upstream, configure):
    upstream.set(user={**DEFAULT_USER, "oid": AZURE_OID})
    configure("azure", azure_body())
    tokens(rp, sso_sign_in(browser, rp, upstream, "azure"))
    # the app registered again: Azure AD's pairwise sub changes, the object id does not
    upstream.set(user={**DEFAULT_USER, "oid": AZURE_OID, "sub": "another-pairwise-sub"})
    other = sso_app.test_client()
    rp.http = other
    tokens(rp, sso_sign_in(other, rp, upstream, "azure"))
    [user] = federated_users(sso_app)
    assert user["subject"] == AZURE_OID and created(sso_app) == (2, 1)


def test_an_azure_link_keyed_by_sub_before_oid_is_re_keyed_not_duplicated(sso_app, browser, rp,
                                                                          upstream, configure):
    from app.extensions import db
    from app.models import FederatedIdentity
    from app.sso.identities import link_id

    upstream.set(user={**DEFAULT_USER, "oid": AZURE_OID})
    configure("azure", azure_body())
    tokens(rp, sso_sign_in(browser, rp, upstream, "azure"))
    [first] = federated_users(sso_app)
    with sso_app.app_context():  # the link as a release keying Azure AD by sub left it
        link = db.session.get(FederatedIdentity, link_id("azure", AZURE_TENANT, AZURE_OID))
        link.id = link_id("azure", AZURE_TENANT, DEFAULT_USER["sub"])
        link.subject = DEFAULT_USER["sub"]
        db.session.commit()
    other = sso_app.test_client()
    rp.http = other
    tokens(rp, sso_sign_in(other, rp, upstream, "azure"))
    [user] = federated_users(sso_app)
    assert (user["id"], user["subject"]) == (first["id"], AZURE_OID)
    assert created(sso_app) == (2, 1)
    with sso_app.app_context():
        assert db.session.get(FederatedIdentity,
                              link_id("azure", AZURE_TENANT, AZURE_OID)) is not None


def test_group_mappings_decide_the_memberships_at_every_login(sso_app, browser, rp, upstream,
                                                               configure, make_tenant, ctx):
    from app.extensions import db
    from app.models import Tenant

    acme, beta, gone = make_tenant("acme"), make_tenant("beta"), make_tenant("gone")
    configure("okta", okta_body(upstream, default_tenants=[{"id": beta, "role": "viewer"}],
                                group_mappings={
                                    "infra-admins": [{"id": acme, "role": "admin"},
                                                     {"id": beta, "role": "editor"}],
                                    "Everyone": [{"id": gone, "role": "viewer"}]}))
    db.session.delete(db.session.get(Tenant, gone))  # a tenant deleted since: skipped
    db.session.commit()

    first = tokens(rp, sso_sign_in(browser, rp, upstream))  # groups Everyone, infra-admins
    assert federated_users(sso_app)[0]["tenants"] == {acme: "admin", beta: "editor"}
    assert jwt_parts(first["access_token"])[1]["tenants"] == {
        acme: [ADMIN_ALL], beta: list(READ + WRITE)}
    assert browser.get("/oauth/userinfo", headers=bearer(first["access_token"])).status_code == 200

    upstream.set(user={**DEFAULT_USER, "groups": ["Everyone"]})  # left infra-admins upstream
    second_browser = sso_app.test_client()
    rp.http = second_browser
    second = tokens(rp, sso_sign_in(second_browser, rp, upstream))
    assert federated_users(sso_app)[0]["tenants"] == {beta: "viewer"}
    assert jwt_parts(second["access_token"])[1]["tenants"] == {beta: list(READ)}
    # the token issued with the old memberships is revoked; the new one works
    assert browser.get("/oauth/userinfo", headers=bearer(first["access_token"])).status_code == 401
    assert browser.get("/oauth/userinfo", headers=bearer(second["access_token"])).status_code == 200
    [_, changed] = audit_events(sso_app, "sso.login")
    assert changed["details"]["memberships_changed"] is True


def test_a_replaced_connection_is_used_at_the_next_login(sso_app, browser, rp, upstream,
                                                         configure, make_tenant):
    acme = make_tenant("acme")
    configure("okta", okta_body(upstream))
    tokens(rp, sso_sign_in(browser, rp, upstream))
    assert federated_users(sso_app)[0]["tenants"] == {}

    configure("okta", okta_body(upstream, default_tenants=[{"id": acme, "role": "viewer"}]))
    other = sso_app.test_client()
    rp.http = other
    tokens(rp, sso_sign_in(other, rp, upstream))
    assert federated_users(sso_app)[0]["tenants"] == {acme: "viewer"}


# -- idp_hint and the login page ---------------------------------------------------------

def test_idp_hint_on_the_authorization_endpoint_goes_upstream(sso_app, browser, rp, upstream,
                                                              configure):
    configure("okta", okta_body(upstream))
    started = rp.authorize(idp_hint="okta")
    assert tokens(rp, browser.get(via_upstream(browser, started, upstream)))["access_token"]
    # signed in now: the same request is answered without going anywhere
    assert lands_on_relying_party(rp.authorize(idp_hint="okta"))


def test_prompt_login_and_max_age_go_upstream(sso_app, browser, rp, upstream, configure):
    configure("okta", okta_body(upstream))
    tokens(rp, browser.get(via_upstream(browser, rp.authorize(idp_hint="okta"), upstream)))
    assert upstream.status()["last_authorize"] == {"prompt": None, "max_age": None}
    # signed in here and at the upstream: a relying party asking for a fresh sign-in must
    # not get one the upstream's session answers silently
    back = via_upstream(browser, rp.authorize(idp_hint="okta", prompt="login"), upstream)
    assert upstream.status()["last_authorize"] == {"prompt": "login", "max_age": None}
    assert tokens(rp, browser.get(back))["access_token"]
    # nor one that asks the user to choose the account (OIDC Core §3.1.2.1)
    back = via_upstream(browser, rp.authorize(idp_hint="okta", prompt="select_account"),
                        upstream)
    assert upstream.status()["last_authorize"] == {"prompt": "login", "max_age": None}
    assert tokens(rp, browser.get(back))["access_token"]
    other = sso_app.test_client()
    rp.http = other
    via_upstream(other, rp.authorize(idp_hint="okta", max_age="600"), upstream)
    assert upstream.status()["last_authorize"] == {"prompt": None, "max_age": "600"}


@pytest.mark.parametrize("hint", ["azure", "saml", "github", ""])
def test_a_hint_at_a_provider_that_is_not_configured_shows_the_login_page(browser, rp, upstream,
                                                                          configure, hint):
    configure("okta", okta_body(upstream))
    response = rp.authorize(idp_hint=hint)
    assert response.status_code == 302 and response.headers["Location"].startswith("/login/")


def test_an_sso_login_url_of_a_provider_not_configured_shows_the_login_page(browser, rp):
    response = browser.get("/api/v1/auth/sso/azure/login", query_string=rp.params())
    assert response.status_code == 302 and response.headers["Location"].startswith("/login/")
    assert browser.get("/api/v1/auth/sso/github/login").status_code == 404


def test_the_login_page_offers_the_configured_providers(sso_app, browser, rp, upstream,
                                                        configure):
    configure("okta", okta_body(upstream))
    configure("azure", azure_body())
    login_url = rp.authorize().headers["Location"]
    page = browser.get(login_url).get_data(True)
    interaction = login_url.rsplit("/", 1)[1]
    for provider, name in (("okta", "Okta"), ("azure", "Microsoft Entra ID")):
        assert (f'<a class="button secondary wide" href="/login/{interaction}/sso/{provider}">'
                f'Sign in with {name}</a>') in page
    assert "<script" not in page and 'src="http' not in page and 'href="http' not in page

    started = browser.get(f"/login/{interaction}/sso/okta")
    assert tokens(rp, browser.get(via_upstream(browser, started, upstream)))["access_token"]
    # the button of a request that belongs to another browser leads nowhere
    assert sso_app.test_client().get(f"/login/{interaction}/sso/okta").status_code == 404


# -- bad input: an error page, and nothing created -------------------------------------------

def refused(sso_app, response, status: int, text: str) -> None:
    page = response.get_data(True)
    assert response.status_code == status, page[:500]
    if status == 401:  # contract §2, RFC 9110 §15.5.2: a 401 names a challenge
        assert response.headers["WWW-Authenticate"] == "Bearer"
    assert text in page and 'role="alert"' in page
    assert not lands_on_relying_party(response)
    assert created(sso_app) == (1, 0)  # the admin alone


def test_a_tampered_state_is_refused(sso_app, browser, rp, upstream, configure):
    configure("okta", okta_body(upstream))
    back = via_upstream(browser, browser.get("/api/v1/auth/sso/okta/login",
                                             query_string=rp.params()), upstream)
    state = query_of(back)["state"]
    tampered = back.replace(f"state={state}", f"state={state[:-2]}xy")
    refused(sso_app, browser.get(tampered), 400, "expired or was already used")
    missing = back.replace(f"state={state}", "nostate=1")
    refused(sso_app, browser.get(missing), 400, "expired or was already used")
    [first, _] = audit_events(sso_app, "sso.login")
    assert first["outcome"] == "failure" and first["details"]["reason"] == "state"


def test_a_replayed_state_is_refused(sso_app, browser, rp, upstream, configure):
    configure("okta", okta_body(upstream))
    back = via_upstream(browser, browser.get("/api/v1/auth/sso/okta/login",
                                             query_string=rp.params()), upstream)
    assert lands_on_relying_party(browser.get(back))
    replay = browser.get(back)
    assert replay.status_code == 400 and not lands_on_relying_party(replay)
    assert created(sso_app) == (2, 1)


def test_a_head_request_does_not_spend_the_state(sso_app, browser, rp, upstream, configure):
    """A link checker's HEAD of the callback URL leaves the user's GET working."""
    configure("okta", okta_body(upstream))
    back = via_upstream(browser, browser.get("/api/v1/auth/sso/okta/login",
                                             query_string=rp.params()), upstream)
    head = browser.head(back)
    assert head.status_code == 405 and head.headers["Allow"] == "GET"
    assert lands_on_relying_party(browser.get(back))


def test_an_expired_state_is_refused(sso_app, browser, rp, upstream, configure):
    configure("okta", okta_body(upstream))
    back = via_upstream(browser, browser.get("/api/v1/auth/sso/okta/login",
                                             query_string=rp.params()), upstream)
    with freeze_time(datetime.now(timezone.utc) + timedelta(seconds=601)):
        refused(sso_app, browser.get(back), 400, "expired or was already used")


def test_a_state_for_another_provider_is_refused(sso_app, browser, rp, upstream, configure):
    configure("okta", okta_body(upstream))
    configure("azure", azure_body())
    back = via_upstream(browser, browser.get("/api/v1/auth/sso/okta/login",
                                             query_string=rp.params()), upstream)
    refused(sso_app, browser.get(back.replace("/sso/okta/", "/sso/azure/")), 400,
            "expired or was already used")


def test_a_callback_in_another_browser_is_refused(sso_app, browser, rp, upstream, configure):
    # login CSRF: an attacker's own callback URL, opened in the victim's browser
    configure("okta", okta_body(upstream))
    back = via_upstream(browser, browser.get("/api/v1/auth/sso/okta/login",
                                             query_string=rp.params()), upstream)
    refused(sso_app, sso_app.test_client().get(back), 400, "started in another browser")
    assert audit_events(sso_app, "sso.login")[0]["details"]["reason"] == "browser"


@pytest.mark.parametrize("behaviour", [
    {"claims": {"nonce": "not-the-nonce"}},
    {"claims": {"aud": "another-client"}},
    {"claims": {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000}},
    {"claims": {"iss": "https://evil.example.test"}},
    {"signing": "unknown-key"},
    {"signing": "tampered"},
    {"signing": "none"},
    {"signing": "hs256-public-key"},
    {"authorize_params": {"error": "access_denied"}},
], ids=["nonce", "audience", "expired", "issuer", "unknown-key", "tampered", "unsigned",
        "hs256", "denied"])
def test_an_id_token_or_answer_the_connector_refuses_is_a_401_page(sso_app, browser, rp, upstream,
                                                                     configure, behaviour):
    configure("okta", okta_body(upstream))
    upstream.set(**behaviour)
    response = sso_sign_in(browser, rp, upstream)
    refused(sso_app, response, 401, "Sign-in failed")
    [failure] = audit_events(sso_app, "sso.login")
    assert failure["outcome"] == "failure" and failure["details"]["reason"] == "rejected"
    assert failure["details"]["detail"]  # the connector's reason, for the log


@pytest.mark.parametrize("auth_time, params", [
    ("", {"prompt": "login"}),
    ([], {"max_age": "0"}),
], ids=["empty-string-with-prompt-login", "empty-list-with-max-age-0"])
def test_an_upstream_auth_time_that_is_no_number_is_a_401_page_not_a_500(
        sso_app, browser, rp, upstream, configure, auth_time, params):
    """Authlib skips a falsy ``auth_time`` (``if auth_time and not ...``): the connector's
    own freshness check must refuse it rather than do arithmetic on it."""
    configure("okta", okta_body(upstream))
    upstream.set(claims={"auth_time": auth_time})
    refused(sso_app, sso_sign_in(browser, rp, upstream, **params), 401, "Sign-in failed")
    [failure] = audit_events(sso_app, "sso.login")
    assert failure["outcome"] == "failure" and failure["details"]["reason"] == "rejected"
    assert "auth_time" in failure["details"]["detail"]


@pytest.mark.parametrize("broken", [{"token": "not-json"}, {"token": "http-500"},
                                    {"token": "wrong-shape"}, {"keys": "not-json"}])
def test_an_upstream_answering_garbage_at_the_callback_is_a_503_page(sso_app, browser, rp,
                                                                      upstream, configure, broken):
    configure("okta", okta_body(upstream))
    started = browser.get("/api/v1/auth/sso/okta/login", query_string=rp.params())
    back = via_upstream(browser, started, upstream)
    upstream.set(broken=broken)
    refused(sso_app, browser.get(back), 503, "Temporarily unavailable")
    assert audit_events(sso_app, "sso.login")[0]["details"]["reason"] == "unavailable"


def test_an_upstream_that_is_down_or_garbled_before_the_login_is_a_503_page(
        sso_app, browser, rp, upstream, configure):
    configure("okta", okta_body(upstream, issuer=f"http://127.0.0.1:{free_port()}"))
    response = browser.get("/api/v1/auth/sso/okta/login", query_string=rp.params())
    refused(sso_app, response, 503, "could not be reached")

    configure("okta", okta_body(upstream))
    upstream.set(broken={".well-known/openid-configuration": "not-json"})
    refused(sso_app, rp.authorize(idp_hint="okta"), 503, "invalid response")


def test_a_subject_the_database_could_not_hold_is_a_401_page_and_audited(
        sso_app, browser, rp, upstream, configure):
    configure("okta", okta_body(upstream))
    upstream.set(user={**DEFAULT_USER, "sub": "s" * 2000})
    refused(sso_app, sso_sign_in(browser, rp, upstream), 401, "Sign-in failed")
    [failure] = audit_events(sso_app, "sso.login")
    assert failure["outcome"] == "failure" and failure["details"]["reason"] == "rejected"
    assert "longer than 255" in failure["details"]["detail"]


def test_a_name_or_email_with_a_nul_is_dropped_and_never_locks_the_user_out(
        sso_app, browser, rp, upstream, configure):
    configure("okta", okta_body(upstream))
    upstream.set(user={**DEFAULT_USER, "name": "Ada\x00Lovelace", "email": "ada\x00@customer.example"})
    tokens(rp, sso_sign_in(browser, rp, upstream))
    [user] = federated_users(sso_app)
    assert (user["name"], user["email"], user["email_verified"]) == (None, None, False)
    again = sso_app.test_client()
    rp.http = again
    tokens(rp, sso_sign_in(again, rp, upstream))
    assert created(sso_app) == (2, 1)


# -- no takeover, disabled users ---------------------------------------------------------

def test_a_local_user_with_the_same_email_or_user_name_is_never_taken_over(
        sso_app, browser, rp, upstream, configure, make_user, make_tenant):
    acme = make_tenant("acme")
    local = make_user(username="ada", email="ada@customer.example", tenants={acme: "admin"})
    squatter = make_user(username="okta.ada@customer.example", email="someone@example.test")
    configure("okta", okta_body(upstream))

    body = tokens(rp, sso_sign_in(browser, rp, upstream))
    [federated] = federated_users(sso_app)
    assert federated["id"] not in (local["id"], squatter["id"])
    assert federated["username"].startswith("okta.ada@customer.example-")
    assert federated["email"] == "ada@customer.example" and federated["tenants"] == {}
    claims = jwt_parts(body["access_token"])[1]
    assert claims["sub"] == federated["id"] and claims["tenants"] == {}
    # the local account is untouched and still signs in with its password
    me = browser.post("/api/v1/auth/token", json={"username": "ada",
                                                  "password": local["password"]}).get_json()
    assert me["user"]["id"] == local["id"] and me["user"]["tenants"] == [{"id": acme, "role": "admin"}]


def test_a_federated_user_has_no_password_to_sign_in_with(sso_app, browser, rp, upstream,
                                                          configure):
    configure("okta", okta_body(upstream))
    tokens(rp, sso_sign_in(browser, rp, upstream))
    response = browser.post("/api/v1/auth/token", json={
        "username": "okta.ada@customer.example", "password": "anything at all"})
    assert response.status_code == 401


def test_a_user_deleted_during_their_sso_sign_in_is_refused_not_a_500(
        sso_app, browser, rp, upstream, configure, admin, monkeypatch):
    from app.sso.identities import FederatedAccounts

    configure("okta", okta_body(upstream))
    tokens(rp, sso_sign_in(browser, rp, upstream))
    [user] = federated_users(sso_app)
    original, started = FederatedAccounts._link, []

    def link_then_delete(self, connection, identity):
        found = original(self, connection, identity)
        if not started:  # an admin deletes the user between the link and the account read
            started.append(browser.delete(f"/api/v1/admin/users/{user['id']}",
                                          headers=admin).status_code)
        return found

    monkeypatch.setattr(FederatedAccounts, "_link", link_then_delete)
    rp.http = other = sso_app.test_client()
    response = sso_sign_in(other, rp, upstream)
    assert started == [204]
    assert response.status_code == 403 and not lands_on_relying_party(response)


def test_a_disabled_user_cannot_sign_in_through_sso(sso_app, browser, rp, upstream, configure,
                                                    admin):
    configure("okta", okta_body(upstream))
    tokens(rp, sso_sign_in(browser, rp, upstream))
    [user] = federated_users(sso_app)
    disabled = browser.patch(f"/api/v1/admin/users/{user['id']}", json={"disabled": True},
                             headers=admin)
    assert disabled.status_code == 200

    other = sso_app.test_client()
    rp.http = other
    response = sso_sign_in(other, rp, upstream)
    assert response.status_code == 403 and "This account is disabled" in response.get_data(True)
    assert not lands_on_relying_party(response)
    failure = audit_events(sso_app, "sso.login")[-1]
    assert failure == {**failure, "outcome": "failure", "actor": user["id"], "target": "okta"}
    assert failure["details"]["reason"] == "disabled"
