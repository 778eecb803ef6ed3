"""/oauth/authorize, the login page and the browser session (OIDC Core §3.1.2, RFC 6749 §4.1)."""

import pytest
from authlib.oidc.core.util import create_half_hash
from freezegun import freeze_time
from joserfc import jwt
from joserfc.jwk import KeySet

from app import create_app
from app.clients import register_client
from tests.conftest import base_config
from tests.helpers import bearer, jwt_parts, login, round_trips
from tests.oidc import REDIRECT_URI, RelyingParty, csrf_token

ISSUER = "http://127.0.0.1:8000"


def test_code_flow_with_pkce_gives_tokens_and_a_verifiable_id_token(client, make_rp, make_user):
    rp, user = make_rp(), make_user()
    callback = rp.sign_in(user, nonce="n-0S6_WzA2Mj")
    assert set(callback) == {"code", "state", "iss"} and callback["iss"] == ISSUER
    body = rp.exchange(callback["code"]).get_json()
    assert body["token_type"] == "Bearer" and body["scope"] == "openid profile email"
    assert "refresh_token" not in body  # no offline_access asked for

    keys = KeySet.import_key_set(client.get("/.well-known/jwks.json").get_json())
    id_token = jwt.decode(body["id_token"], keys, algorithms=["RS256"])
    claims = id_token.claims
    assert id_token.header["typ"] == "JWT" and id_token.header["kid"]
    assert claims["iss"] == ISSUER and claims["sub"] == user["id"]
    assert claims["aud"] == rp.client_id and claims["azp"] == rp.client_id
    assert claims["nonce"] == "n-0S6_WzA2Mj"
    assert claims["exp"] > claims["iat"] >= claims["auth_time"]
    assert claims["preferred_username"] == user["username"]
    assert claims["email"] == f"{user['username']}@example.test"
    assert claims["at_hash"] == create_half_hash(body["access_token"], "RS256").decode()
    header, access = jwt_parts(body["access_token"])
    assert header["typ"] == "at+jwt" and access["client_id"] == rp.client_id
    assert access["auth_time"] == claims["auth_time"]


def test_refresh_token_only_with_offline_access_and_the_refresh_grant(make_rp, make_user):
    user = make_user()
    with_grant = make_rp()
    body = with_grant.tokens_for(user, scope="openid offline_access")
    assert body["refresh_token"] and body["scope"] == "openid offline_access"
    _, access = jwt_parts(body["access_token"])
    assert access["sid"] == body["refresh_token"].split(".")[0]

    without_grant = make_rp(grant_types=["authorization_code"])
    body = without_grant.tokens_for(user, scope="openid offline_access")
    assert "refresh_token" not in body and body["scope"] == "openid"


def test_a_second_authorize_in_the_same_session_skips_the_form(make_rp, make_user):
    rp, user = make_rp(), make_user()
    first = rp.sign_in(user)
    again = rp.authorize()
    assert again.status_code == 302
    second = rp.callback(again)
    assert second["code"] != first["code"]
    assert rp.exchange(second["code"]).status_code == 200


def test_the_session_cookie_holds_only_an_id_and_is_httponly_and_lax(client, make_rp, make_user):
    rp = make_rp()
    response = rp.authorize()
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("idp_session=") and "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie and "Secure" not in cookie
    value = cookie.split(";")[0].split("=", 1)[1]
    assert len(value) >= 43


def test_the_cookie_is_secure_with_the_host_prefix_on_an_https_issuer(app, pg_schema, redis_ns,
                                                                       clean):
    https_app = create_app(base_config(
        ISSUER="https://id.example.test", DATABASE_URL=pg_schema.url, REDIS_URL=redis_ns.url,
        REDIS_KEY_PREFIX=redis_ns.prefix))
    with https_app.app_context():
        client_id = register_client({"client_name": "Web", "redirect_uris": [REDIRECT_URI],
                                     "token_endpoint_auth_method": "none"}).client.client_id
    response = https_app.test_client().get(
        "/oauth/authorize", base_url="https://id.example.test", query_string={
            "response_type": "code", "client_id": client_id,
            "redirect_uri": REDIRECT_URI, "scope": "openid", "code_challenge": "x" * 43,
            "code_challenge_method": "S256"})
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("__Host-idp_session=")
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_login_page_is_accessible_and_says_the_same_as_the_api(client, make_rp, make_user):
    rp, user = make_rp(client_name="Nodes <Console>"), make_user()
    response = rp.authorize()
    page = client.get(response.headers["Location"])
    html = page.get_data(True)
    assert page.headers["Content-Type"].startswith("text/html")
    assert "Nodes &lt;Console&gt;" in html  # escaped
    assert '<label for="username">' in html and '<label for="password">' in html
    assert 'autocomplete="username"' in html and 'autocomplete="current-password"' in html
    assert '<html lang="en">' in html and "<script" not in html
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"

    for username in (user["username"], "nobody-at-all"):
        failed = rp.submit_login(rp.authorize(), username, "wrong password")
        assert failed.status_code == 401
        assert failed.headers["WWW-Authenticate"] == "Bearer"  # RFC 9110 §15.5.2
        html = failed.get_data(True)
        api_message = login(client, username, "wrong password").get_json()["error"]["message"]
        assert f'role="alert" id="form-error">{api_message}</div>' in html
        assert 'aria-invalid="true" aria-describedby="form-error"' in html


def test_brute_force_limits_apply_to_the_login_page(client, make_rp, make_user):
    rp, user = make_rp(), make_user()
    for _ in range(6):  # LOGIN_FREE_ATTEMPTS, then one more, which starts the delay
        assert rp.submit_login(rp.authorize(), user["username"], "wrong").status_code == 401
    blocked = rp.submit_login(rp.authorize(), user["username"], user["password"])
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) >= 1
    assert "Too many attempts" in blocked.get_data(True)


def test_the_login_form_needs_its_csrf_token_and_its_own_browser(app, client, make_rp,
                                                                 make_user):
    rp, user = make_rp(), make_user()
    login_url = rp.authorize().headers["Location"]
    form = {"username": user["username"], "password": user["password"]}
    assert client.post(login_url, data={**form, "csrf_token": "forged"}).status_code == 400
    other_browser = app.test_client()
    stolen = other_browser.post(login_url, data={**form, "csrf_token": "x"})
    assert stolen.status_code == 400 and "Location" not in stolen.headers
    # even with its own valid session and token, another browser cannot finish this request
    own_url = RelyingParty(other_browser, rp.client_id).authorize().headers["Location"]
    own_token = csrf_token(other_browser.get(own_url).get_data(True))
    hijack = other_browser.post(login_url, data={**form, "csrf_token": own_token})
    assert hijack.status_code == 404 and "Location" not in hijack.headers


def test_prompt_none_without_a_session_is_login_required(make_rp):
    rp = make_rp()
    callback = rp.callback(rp.authorize(prompt="none", state="s1"))
    assert callback["error"] == "login_required" and "code" not in callback
    assert callback["state"] == "s1" and callback["iss"] == ISSUER


def test_prompt_none_with_a_session_answers_at_once(make_rp, make_user):
    rp, user = make_rp(), make_user()
    rp.sign_in(user)
    assert "code" in rp.callback(rp.authorize(prompt="none"))


def test_prompt_none_with_an_id_token_hint_of_another_user_is_login_required(app, make_rp,
                                                                            make_user):
    rp, user = make_rp(), make_user()
    own_hint = rp.tokens_for(user)["id_token"]
    other = RelyingParty(app.test_client(), rp.client_id)
    other_hint = other.tokens_for(make_user())["id_token"]
    assert "code" in rp.callback(rp.authorize(prompt="none", id_token_hint=own_hint))
    refused = rp.callback(rp.authorize(prompt="none", id_token_hint=other_hint, state="s6"))
    assert refused["error"] == "login_required" and refused["state"] == "s6"
    assert "code" not in refused
    for forged in ("e30.e30.", own_hint[:-4] + "AAAA"):
        bad = rp.callback(rp.authorize(prompt="none", id_token_hint=forged))
        assert bad["error"] == "invalid_request" and "code" not in bad


def test_an_id_token_hint_of_another_user_asks_that_user_to_sign_in(app, make_rp, make_user):
    """OIDC Core §3.1.2.1: the user the hint names must be signed in or sign in for the
    request. Alice is signed in and the hint names Bob: the login page, again after Alice
    signs in there, and a code for Bob once he does. A hint that is not our ID token is
    refused without prompt=none too."""
    rp, alice = make_rp(), make_user()
    other, bob = RelyingParty(app.test_client(), rp.client_id), make_user()
    hint_for_bob = other.tokens_for(bob)["id_token"]
    rp.sign_in(alice)
    request = rp.authorize(id_token_hint=hint_for_bob)
    again = rp.submit_login(request, alice["username"], alice["password"])
    assert again.status_code == 303 and again.headers["Location"].startswith("/login/")
    page = rp.http.get(again.headers["Location"])  # the same request waits on, for Bob
    assert page.status_code == 200
    callback = rp.callback(rp.http.post(again.headers["Location"], data={
        "csrf_token": csrf_token(page.get_data(True)), "username": bob["username"],
        "password": bob["password"]}))
    tokens = rp.exchange(callback["code"]).get_json()
    assert jwt_parts(tokens["id_token"])[1]["sub"] == bob["id"]
    assert "code" in rp.callback(rp.authorize(id_token_hint=hint_for_bob))  # Bob's session
    bad = rp.callback(rp.authorize(id_token_hint="e30.e30."))
    assert bad["error"] == "invalid_request" and "code" not in bad


def test_the_hint_is_verified_once_per_request(app, make_rp, make_user, monkeypatch):
    """An RSA check: the request that weighs it and the page it leads to share one."""
    from idp.id_tokens import IdTokenIssuer

    first_party, alice = make_rp(), make_user()
    hint = first_party.tokens_for(alice)["id_token"]  # Alice is signed in, and named
    third_party = RelyingParty(first_party.http, make_rp(first_party=False).client_id)
    calls, original = [], IdTokenIssuer.verify_hint

    def counted(self, token):
        calls.append(token)
        return original(self, token)

    monkeypatch.setattr(IdTokenIssuer, "verify_hint", counted)
    consent_url = third_party.authorize(id_token_hint=hint).headers["Location"]
    assert consent_url.startswith("/consent/") and len(calls) == 1


def test_prompt_login_asks_again_and_moves_auth_time(make_rp, make_user):
    rp, user = make_rp(), make_user()
    with freeze_time("2026-11-29 10:00:00"):
        first = rp.tokens_for(user)
    with freeze_time("2026-11-29 10:05:00"):
        response = rp.authorize(prompt="login")
        assert response.headers["Location"].startswith("/login/")
        callback = rp.callback(rp.submit_login(response, user["username"], user["password"]))
        second = rp.exchange(callback["code"]).get_json()
    assert jwt_parts(second["id_token"])[1]["auth_time"] - \
        jwt_parts(first["id_token"])[1]["auth_time"] == 300


def test_max_age(app, make_rp, make_user):
    rp, user = make_rp(), make_user()
    with freeze_time("2026-11-29 10:00:00"):
        rp.sign_in(user)
    with freeze_time("2026-11-29 10:10:00"):
        assert "code" in rp.callback(rp.authorize(max_age="900"))
        assert rp.authorize(max_age="300").headers["Location"].startswith("/login/")
        assert rp.callback(rp.authorize(max_age="300", prompt="none"))["error"] == "login_required"
        for bad in ("soon", "²", "-1", "9" * 11):
            assert rp.callback(rp.authorize(max_age=bad))["error"] == "invalid_request"
    signed_out = RelyingParty(app.test_client(), rp.client_id)  # a browser signed in nowhere
    assert signed_out.callback(signed_out.authorize(max_age="soon"))["error"] == "invalid_request"


def test_max_age_0_is_met_by_the_sign_in_it_asks_for(make_rp, make_user):
    """max_age=0 is prompt=login (OIDC Core §3.1.2.1): the sign-in made for the request
    answers it, though a fraction of a second has passed since its auth_time's whole second."""
    rp, user = make_rp(), make_user()
    with freeze_time("2026-11-29 10:00:00.500"):
        response = rp.authorize(max_age="0")
        assert response.headers["Location"].startswith("/login/")
        assert "code" in rp.callback(rp.submit_login(response, user["username"],
                                                     user["password"]))


@pytest.mark.parametrize("change, error", [
    ({"response_type": None}, "invalid_request"),
    ({"response_type": "token"}, "unsupported_response_type"),
    ({"response_type": 'token"\\'}, "unsupported_response_type"),
    ({"code_challenge_method": "plain"}, "invalid_request"),
    ({"code_challenge_method": None}, "invalid_request"),
    ({"code_challenge": None, "code_challenge_method": None}, "invalid_request"),
    ({"code_challenge": "short"}, "invalid_request"),
    ({"scope": "openid admin"}, "invalid_scope"),
    ({"prompt": "none login"}, "invalid_request"),
    ({"response_mode": "fragment"}, "invalid_request"),
    ({"response_mode": "form_post"}, "invalid_request"),
    ({"response_mode": "query.jwt"}, "invalid_request"),
])
def test_bad_requests_go_back_to_the_registered_uri(make_rp, change, error):
    rp = make_rp()
    callback = rp.callback(rp.authorize(state="xyz", **change))
    assert callback["error"] == error and callback["state"] == "xyz"
    assert callback["iss"] == ISSUER and "code" not in callback


@pytest.mark.parametrize("scope", ["email", "openid", "profile email"])
def test_a_scope_the_client_is_not_registered_for_is_invalid_scope(make_rp, make_user, scope):
    """As at the token endpoint: refused, never silently narrowed (to no ID token, say)."""
    rp, user = make_rp(scope="profile"), make_user()
    for _ in range(2):  # without a session, then with one
        callback = rp.callback(rp.authorize(scope=scope, state="s2"))
        assert callback["error"] == "invalid_scope" and callback["state"] == "s2"
        assert "code" not in callback
        rp.sign_in(user, scope="profile")
    body = rp.tokens_for(user, scope="profile")
    assert body["scope"] == "profile" and "id_token" not in body


@pytest.mark.parametrize("name", ["nonce", "prompt", "max_age", "tenant", "idp_hint", 'a"b'])
def test_a_repeated_parameter_goes_back_as_invalid_request(make_rp, make_user, name):
    """RFC 6749 §3.1: never silently the first of two values, signed in or not."""
    rp, user = make_rp(), make_user()
    for _ in range(2):
        callback = rp.callback(rp.authorize(state="xyz", **{name: ["1", "2"]}))
        assert callback["error"] == "invalid_request" and "code" not in callback
        assert callback["state"] == "xyz" and callback["iss"] == ISSUER
        rp.sign_in(user)


def test_response_mode_query_is_the_default_spelled_out(make_rp, make_user):
    rp, user = make_rp(), make_user()
    assert rp.exchange(rp.sign_in(user, response_mode="query")["code"]).status_code == 200


@pytest.mark.parametrize("change", [
    {"client_id": "no-such-client"},
    {"client_id": None},
    {"redirect_uri": "http://127.0.0.1:9999/other"},
    {"redirect_uri": 'http://127.0.0.1:9999/cb"\\<é>'},
    {"redirect_uri": "https://attacker.example/cb"},
])
def test_unknown_client_or_redirect_uri_never_redirects(make_rp, change):
    rp = make_rp()
    response = rp.authorize(**change)
    assert response.status_code == 400
    assert "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<h1>" in response.get_data(True)


@pytest.mark.parametrize("registered, requested", [
    ("http://127.0.0.1/callback", "http://127.0.0.1:53124/callback"),
    ("http://127.0.0.1:9999/callback", "http://127.0.0.1:53124/callback"),
    ("http://[::1]/callback", "http://[::1]:61023/callback"),
])
def test_a_native_app_loopback_redirect_uri_may_use_any_port(client, ctx, make_user,
                                                             registered, requested):
    """RFC 8252 §7.3: a native app listens on whatever port the OS gives it, and "the
    authorization server MUST allow any port to be specified at the time of the request for
    loopback IP redirect URIs" (RFC 9700 §4.1.3 keeps that one exception to exact matching)."""
    native = register_client({"client_name": "CLI", "grant_types": ["authorization_code"],
                              "token_endpoint_auth_method": "none",
                              "redirect_uris": [registered]})
    rp, user = RelyingParty(client, native.client.client_id, redirect_uri=requested), make_user()
    callback = rp.sign_in(user, state="s9")  # lands on the requested URI, port included
    assert callback["state"] == "s9" and "error" not in callback
    assert rp.exchange(callback["code"]).status_code == 200


@pytest.mark.parametrize("registered, requested", [
    ("http://127.0.0.1/callback", "http://127.0.0.1:53124/other"),
    ("http://127.0.0.1/callback", "http://127.0.0.1:53124/callback?x=1"),
    ("http://127.0.0.1/callback", "http://127.0.0.1:53124/callback#"),
    ("http://127.0.0.1/callback", "http://127.0.0.1:53124/call\tback"),
    ("http://127.0.0.1/callback", "http://[::1]:53124/callback"),
    ("http://127.0.0.1/callback", "http://localhost:53124/callback"),  # RFC 8252 §8.3
    ("http://127.0.0.1/callback", "http://attacker@127.0.0.1:53124/callback"),
    ("http://127.0.0.1/callback", "http://127.0.0.1:99999/callback"),  # ports that do not parse
    ("http://127.0.0.1/callback", "http://127.0.0.1:+1/callback"),
    ("https://rp.example/callback", "https://rp.example:8443/callback"),  # not loopback
])
def test_only_the_port_of_a_loopback_redirect_uri_may_differ(client, ctx, registered, requested):
    native = register_client({"client_name": "CLI", "grant_types": ["authorization_code"],
                              "token_endpoint_auth_method": "none",
                              "redirect_uris": [registered]})
    response = RelyingParty(client, native.client.client_id, redirect_uri=requested).authorize()
    assert response.status_code == 400 and "Location" not in response.headers
    assert "redirect_uri is not registered" in response.get_data(True)


def test_an_openid_request_without_redirect_uri_is_refused(make_rp, make_user):
    """OIDC Core §3.1.2.1: redirect_uri is REQUIRED in an OpenID Connect request, even from a
    client with a single registered URI; a plain OAuth request may leave it out (RFC 6749
    §3.1.2.3)."""
    rp, user = make_rp(), make_user()
    rp.sign_in(user)  # signed in: a code would come at once
    refused = rp.authorize(redirect_uri=None, state="s7")
    assert refused.status_code == 400 and "Location" not in refused.headers
    assert "Missing &#39;redirect_uri&#39;" in refused.get_data(True)
    assert "code" in rp.callback(rp.authorize(redirect_uri=None, scope="profile"))
    # nor is any other error of such a request sent to the registered URI
    wrong_type = rp.authorize(redirect_uri=None, response_type="token")
    assert wrong_type.status_code == 400 and "Location" not in wrong_type.headers
    plain = rp.callback(rp.authorize(redirect_uri=None, response_type="token", scope="profile"))
    assert plain["error"] == "unsupported_response_type"


def test_confidential_client_pkce_is_optional_but_checked_when_sent(make_rp, make_user):
    rp, user = make_rp(public=False), make_user()
    callback = rp.sign_in(user, code_challenge=None, code_challenge_method=None)
    assert rp.exchange(callback["code"], code_verifier=None).status_code == 200
    callback = rp.sign_in(user)
    wrong = rp.exchange(callback["code"], code_verifier="x" * 50)
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"


def test_tenant_scoped_authorization(make_rp, make_user, make_tenant):
    tenant = make_tenant()
    member = make_user(tenants={tenant: "viewer"})
    rp = make_rp()
    body = rp.tokens_for(member, tenant=tenant)
    assert list(jwt_parts(body["access_token"])[1]["tenants"]) == [tenant]
    outsider = make_user()
    rp.http.delete_cookie("idp_session")
    denied = rp.sign_in(outsider, tenant=tenant)
    assert denied["error"] == "access_denied"


def test_a_request_refused_after_the_login_form_keeps_the_sign_in(app, make_rp, make_user,
                                                                  make_tenant):
    rp, user = make_rp(), make_user()
    with round_trips(app) as trips:
        denied = rp.sign_in(user, tenant=make_tenant(), state="s4")
    assert denied["error"] == "access_denied" and denied["state"] == "s4"
    assert trips.commands("MGET", "ia") == 2  # the login page's, and the form's
    assert "code" in rp.callback(rp.authorize())  # signed in: no form


def test_the_login_form_resumes_the_request_without_reading_it_again(app, make_rp, make_user):
    rp, user = make_rp(), make_user()
    login_url = rp.authorize().headers["Location"]
    form = {"csrf_token": csrf_token(rp.http.get(login_url).get_data(True)),
            "username": user["username"], "password": user["password"]}
    with round_trips(app) as trips:
        callback = rp.callback(rp.http.post(login_url, data=form))
    assert rp.exchange(callback["code"]).status_code == 200
    assert trips.commands("MGET", "ia") == 1 and trips.statements("users") == 1


def test_a_code_is_issued_without_validating_the_request_again(monkeypatch, make_rp, make_user):
    from idp.grants.authorization_code import AuthorizationCodeGrant

    validations = []
    validate = AuthorizationCodeGrant.validate_authorization_request

    def counted(grant):
        validations.append(grant.request.payload.client_id)
        return validate(grant)

    monkeypatch.setattr(AuthorizationCodeGrant, "validate_authorization_request", counted)
    rp, user = make_rp(), make_user()
    rp.sign_in(user)
    validations.clear()
    callback = rp.callback(rp.authorize(state="s5"))
    assert set(callback) == {"code", "state", "iss"} and callback["state"] == "s5"
    assert callback["iss"] == ISSUER and len(validations) == 1
    assert rp.exchange(callback["code"]).status_code == 200


def test_a_disabled_user_loses_the_session(app, make_rp, make_user):
    from app.extensions import db
    from app.models import User

    rp, user = make_rp(), make_user()
    rp.sign_in(user)
    with app.app_context():
        db.session.get(User, user["id"]).disabled = True
        db.session.commit()
    assert rp.authorize().headers["Location"].startswith("/login/")


def test_after_a_revoked_sign_in_the_login_form_works_at_the_first_try(app, make_rp, make_user,
                                                                     token_for):
    """The revoked session was ended under the request that found it dead: the login page
    was then a 404, or its form a 400."""
    rp, user, admin = make_rp(), make_user(), make_user(roles=["admin"])
    with freeze_time("2026-11-29 10:00:00"):
        rp.sign_in(user)
    with freeze_time("2026-11-29 10:01:00"):
        admin = bearer(token_for(admin))
        for disabled in (True, False):  # disabling revokes every sign-in so far
            assert app.test_client().patch(f"/api/v1/admin/users/{user['id']}", headers=admin,
                                           json={"disabled": disabled}).status_code == 200
    with freeze_time("2026-11-29 10:02:00"):
        callback = rp.sign_in(user)
        assert rp.exchange(callback["code"]).status_code == 200


def test_a_sign_in_in_the_same_second_as_a_revocation_stands(app, make_rp, make_user,
                                                              token_for):
    """Disabling and enabling the user revokes every sign-in before it, to the millisecond:
    one a moment later in the same second keeps its session, its code and its refresh token."""
    rp, user, admin = make_rp(), make_user(), make_user(roles=["admin"])
    with freeze_time("2026-11-29 10:01:00.100") as clock:
        admin = bearer(token_for(admin))
        for disabled in (True, False):
            assert app.test_client().patch(f"/api/v1/admin/users/{user['id']}", headers=admin,
                                           json={"disabled": disabled}).status_code == 200
        clock.tick(0.4)
        rp.sign_in(user, scope="openid offline_access")
        again = rp.authorize(scope="openid offline_access")  # the session stands: no form
        assert again.status_code == 302 and not again.headers["Location"].startswith("/login/")
        tokens = rp.exchange(rp.callback(again)["code"])
        assert tokens.status_code == 200, tokens.get_json()
        assert jwt_parts(tokens.get_json()["id_token"])[1]["auth_time"] == 1795946460
        refreshed = rp.refresh(tokens.get_json()["refresh_token"])
        assert refreshed.status_code == 200, refreshed.get_json()


ODD = ["", " ", "\x00", "é", '"\\', "a" * 3000, "%ff", "\n", "none", "login", "0", "²", "{}"]


def test_odd_input_is_never_a_500(client, make_rp):
    import random

    rp = make_rp()
    rng = random.Random(5)
    base = rp.params()
    names = list(base) + ["prompt", "max_age", "tenant", "response_mode", "request"]
    for _ in range(120):
        params = {**base, **{name: rng.choice(ODD) for name in rng.sample(names, 3)}}
        for response in (client.get("/oauth/authorize", query_string=params),
                         client.post("/oauth/authorize", data=params)):
            assert response.status_code < 500, params
    for path in ("/login/x", "/login/" + "a" * 40, "/consent/%00", "/consent/" + "é" * 20):
        for method in (client.get, client.post):
            assert method(path, data={"csrf_token": "x"}).status_code < 500, path
    login_url = rp.authorize().headers["Location"]
    page = client.get(login_url).get_data(True)
    for username in ("\x00", "é" * 200):
        response = client.post(login_url, data={"csrf_token": csrf_token(page),
                                                "username": username, "password": "\x00"})
        assert response.status_code in (400, 401)
    for hint in ("a" * 9000, "e30.e30.", '"'):
        response = client.get("/oauth/logout", query_string={
            "id_token_hint": hint, "post_logout_redirect_uri": "javascript:alert(1)",
            "client_id": "\x00"})
        assert response.status_code == 400
    assert login(client, "\x00", "x").status_code in (400, 401)


@pytest.mark.parametrize("name, error", [("request", "request_not_supported"),
                                         ("request_uri", "request_uri_not_supported")])
@pytest.mark.parametrize("outside", [
    {},
    # what the object would carry is not asked outside it (OIDC Core §6.1 asks only for
    # response_type, client_id, scope and redirect_uri)
    {"code_challenge": None, "code_challenge_method": None, "nonce": None},
    {"prompt": "none"},  # and no sign-in: the object, not login_required
])
def test_request_objects_are_refused_before_anything_else(make_rp, name, error, outside):
    """OIDC Core §6.1, §6.2: a server without request objects MUST answer the matching
    error, whatever else the request lacks."""
    rp = make_rp()
    callback = rp.callback(rp.authorize(state="ro", **outside,
                                        **{name: "eyJhbGciOiJub25lIn0.e30."}))
    assert callback["error"] == error and "code" not in callback
    assert callback["state"] == "ro" and callback["iss"] == ISSUER


def test_another_response_mode_is_refused_before_prompt_none_is_answered(make_rp):
    rp = make_rp()
    callback = rp.callback(rp.authorize(prompt="none", response_mode="form_post"))
    assert callback["error"] == "invalid_request"


def test_prompt_select_account_shows_the_login_page(make_rp, make_user):
    """OIDC Core §3.1.2.1: the user is asked which account (the login page, where anyone may
    sign in), never answered for the one signed in."""
    rp, user, other = make_rp(), make_user(), make_user()
    rp.sign_in(user)
    response = rp.authorize(prompt="select_account")
    assert response.headers["Location"].startswith("/login/")
    callback = rp.callback(rp.submit_login(response, other["username"], other["password"]))
    id_token = rp.exchange(callback["code"]).get_json()["id_token"]
    assert jwt_parts(id_token)[1]["sub"] == other["id"]


@pytest.mark.parametrize("method, path", [("PUT", "/login/abcdefghijklmnopqrstuvwxyz"),
                                          ("DELETE", "/consent/abcdefghijklmnopqrstuvwxyz"),
                                          ("PATCH", "/oauth/authorize")])
def test_a_page_asked_with_a_method_it_does_not_answer_is_a_405_page(client, method, path):
    """Routing refuses the method before any blueprint; the URL is still a page's."""
    response = client.open(path, method=method)
    assert response.status_code == 405 and response.mimetype == "text/html"
    # what a HEAD and an OPTIONS of the page say too: it answers neither
    assert response.headers["Allow"] == "GET, POST"
    for method in ("HEAD", "OPTIONS"):
        refused = client.open(path, method=method)
        assert refused.status_code == 405 and refused.headers["Allow"] == "GET, POST"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert response.headers["Cache-Control"] == "no-store"

