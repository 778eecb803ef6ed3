"""/oauth/userinfo (OIDC Core §5.3) and RP-initiated logout at /oauth/logout."""

import pytest
from freezegun import freeze_time

from tests.helpers import bearer
from tests.oidc import REDIRECT_URI, csrf_token, query_of

BYE = "http://127.0.0.1:9999/bye"


@pytest.mark.parametrize("scope, claims", [
    ("openid", {"sub"}),
    ("openid profile", {"sub", "preferred_username"}),
    ("openid email", {"sub", "email", "email_verified"}),
])
def test_userinfo_claims_follow_the_scope(client, make_rp, make_user, scope, claims):
    rp, user = make_rp(), make_user()
    token = rp.tokens_for(user, scope=scope)["access_token"]
    for method in (client.get, client.post):
        response = method("/oauth/userinfo", headers=bearer(token))
        assert response.status_code == 200
        body = response.get_json()
        assert set(body) == claims and body["sub"] == user["id"]
        assert response.headers["Cache-Control"] == "no-store"


def test_userinfo_refuses_bad_tokens(client, make_user):
    missing = client.get("/oauth/userinfo")
    assert missing.status_code == 401 and missing.get_json()["error"] == "invalid_token"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    bogus = client.get("/oauth/userinfo", headers=bearer("a.b.c"))
    assert bogus.status_code == 401
    user = make_user()
    # a token without openid (the seed login's) is good, but not for userinfo
    seed = client.post("/api/v1/auth/token", json={"username": user["username"],
                                                   "password": user["password"]}).get_json()
    no_openid = client.get("/oauth/userinfo", headers=bearer(seed["token"]))
    assert no_openid.status_code == 403
    assert no_openid.get_json()["error"] == "insufficient_scope"
    assert no_openid.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'


def _signed_in(make_rp, make_user, **metadata):
    rp, user = make_rp(post_logout_redirect_uris=[BYE], **metadata), make_user()
    tokens = rp.tokens_for(user)
    return rp, user, tokens


def test_logout_with_id_token_hint_ends_the_session_and_goes_back(make_rp, make_user):
    rp, user, tokens = _signed_in(make_rp, make_user)
    response = rp.http.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": BYE, "state": "bye-1",
        "client_id": rp.client_id})
    assert response.status_code == 302
    assert response.headers["Location"] == f"{BYE}?state=bye-1"
    assert "idp_session=;" in response.headers["Set-Cookie"]
    assert rp.authorize().headers["Location"].startswith("/login/")


def test_a_head_request_does_not_end_the_session(make_rp, make_user):
    """Flask would answer HEAD with the GET view: a scanner's HEAD of a logout link must
    not sign the user out."""
    rp, user, tokens = _signed_in(make_rp, make_user)
    head = rp.http.head("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    assert head.status_code == 405 and head.headers["Allow"] == "GET, POST"
    assert rp.authorize().headers["Location"].startswith(REDIRECT_URI)  # still signed in


def test_the_session_is_ended_in_the_store_not_only_in_the_cookie(app, make_rp, make_user):
    rp, user, tokens = _signed_in(make_rp, make_user)
    cookie = rp.http.get_cookie("idp_session").value
    rp.http.get("/oauth/logout", query_string={"id_token_hint": tokens["id_token"]})
    replayed = app.test_client()
    replayed.set_cookie("idp_session", cookie)
    response = replayed.get("/oauth/authorize", query_string=rp.params())
    assert response.headers["Location"].startswith("/login/")


def test_an_unregistered_post_logout_uri_shows_the_signed_out_page(make_rp, make_user):
    rp, user, tokens = _signed_in(make_rp, make_user)
    response = rp.http.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": REDIRECT_URI})
    assert response.status_code == 200 and "Location" not in response.headers
    assert "You are signed out" in response.get_data(True)
    assert rp.authorize().headers["Location"].startswith("/login/")


def test_logout_without_a_hint_is_confirmed_first(make_rp, make_user):
    rp, user, tokens = _signed_in(make_rp, make_user)
    page = rp.http.get("/oauth/logout", query_string={"post_logout_redirect_uri": BYE})
    assert page.status_code == 200 and "Sign out?" in page.get_data(True)
    assert "code" in rp.callback(rp.authorize())  # still signed in
    forged = rp.http.post("/oauth/logout", data={"confirm": "1", "csrf_token": "forged"})
    assert forged.status_code == 400
    confirmed = rp.http.post("/oauth/logout", data={
        "confirm": "1", "csrf_token": csrf_token(page.get_data(True)),
        "post_logout_redirect_uri": BYE})
    assert confirmed.status_code == 200  # no hint: no redirect (RP-Initiated Logout §3)
    assert rp.authorize().headers["Location"].startswith("/login/")


def test_a_hint_for_another_user_is_confirmed_first(make_rp, make_user):
    rp, user, tokens = _signed_in(make_rp, make_user)
    other = rp.__class__(rp.http.application.test_client(), rp.client_id)
    other_tokens = other.tokens_for(make_user())
    page = rp.http.get("/oauth/logout", query_string={"id_token_hint": other_tokens["id_token"]})
    assert "Sign out?" in page.get_data(True)


def test_an_id_token_of_an_earlier_session_of_the_same_user_is_confirmed_first(make_rp,
                                                                              make_user):
    """RP-Initiated Logout §2: the user is asked unless the ID token belongs to the current
    session. An ID token is no secret: an old one must not sign its user out unasked."""
    with freeze_time("2026-11-29 10:00:00") as frozen:
        rp, user, old = _signed_in(make_rp, make_user)
        rp.http.get("/oauth/logout", query_string={"id_token_hint": old["id_token"]})
        frozen.tick(60)
        current = rp.tokens_for(user)  # signed in again, in the same browser
        page = rp.http.get("/oauth/logout", query_string={"id_token_hint": old["id_token"]})
        assert page.status_code == 200 and "Sign out?" in page.get_data(True)
        ended = rp.http.get("/oauth/logout", query_string={"id_token_hint": current["id_token"]})
        assert "You are signed out" in ended.get_data(True)


@pytest.mark.parametrize("hint", ["not-a-jwt", "a.b.c", "access"])
def test_a_bad_hint_is_an_error_page(make_rp, make_user, hint):
    rp, user, tokens = _signed_in(make_rp, make_user)
    value = tokens["access_token"] if hint == "access" else hint
    response = rp.http.get("/oauth/logout", query_string={
        "id_token_hint": value, "post_logout_redirect_uri": BYE})
    assert response.status_code == 400 and "Location" not in response.headers
    assert response.headers["Content-Type"].startswith("text/html")
    assert "code" in rp.callback(rp.authorize())  # the session is untouched


def test_a_hint_for_another_client_is_refused(make_rp, make_user):
    rp, user, tokens = _signed_in(make_rp, make_user)
    other = make_rp()
    response = rp.http.get("/oauth/logout", query_string={
        "id_token_hint": tokens["id_token"], "client_id": other.client_id})
    assert response.status_code == 400
    assert query_of(response.headers.get("Location", "")) == {}
