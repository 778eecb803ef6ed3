"""grant_type=password on /oauth/token (RFC 6749 §4.3, errors per §5.2)."""

import pytest

from app.clients import register_client
from tests.helpers import basic_auth, jwt_parts


@pytest.fixture
def confidential(ctx):
    registered = register_client({"client_name": "CLI", "grant_types": ["password"],
                                  "token_endpoint_auth_method": "client_secret_basic",
                                  "scope": "profile email"})
    return registered.client.client_id, registered.client_secret


@pytest.fixture
def public(ctx):
    registered = register_client({"client_name": "Public", "grant_types": ["password"],
                                  "token_endpoint_auth_method": "none", "scope": "profile"})
    return registered.client.client_id


def test_confidential_client_with_basic_auth(client, confidential, make_user):
    client_id, secret = confidential
    user = make_user()
    response = client.post("/oauth/token", data={
        "grant_type": "password", "username": user["username"], "password": user["password"],
        "scope": "profile"}, headers=basic_auth(client_id, secret))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["scope"] == "profile"
    assert response.headers["Cache-Control"] == "no-store"
    header, claims = jwt_parts(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["client_id"] == client_id and claims["sub"] == user["id"]
    assert claims["scope"] == "profile"


def test_default_scope_is_the_registered_one(client, confidential, make_user):
    client_id, secret = confidential
    user = make_user()
    body = client.post("/oauth/token", data={"grant_type": "password", "username": user["username"],
                                             "password": user["password"]},
                       headers=basic_auth(client_id, secret)).get_json()
    assert body["scope"] == "profile email"


def test_public_client(client, public, make_user):
    user = make_user()
    response = client.post("/oauth/token", data={"grant_type": "password", "client_id": public,
                                                 "username": user["username"],
                                                 "password": user["password"]})
    assert response.status_code == 200


def test_confidential_client_must_authenticate(client, confidential, make_user):
    client_id, secret = confidential
    user = make_user()
    form = {"grant_type": "password", "username": user["username"], "password": user["password"]}
    wrong = client.post("/oauth/token", data=form, headers=basic_auth(client_id, "x" + secret))
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_client"
    assert "WWW-Authenticate" in wrong.headers
    as_public = client.post("/oauth/token", data={**form, "client_id": client_id})
    assert as_public.get_json()["error"] == "invalid_client"


def test_wrong_password_is_invalid_grant(client, confidential, make_user):
    client_id, secret = confidential
    user = make_user()
    response = client.post("/oauth/token", data={"grant_type": "password", "username": user["username"],
                                                 "password": "nope"},
                           headers=basic_auth(client_id, secret))
    assert response.status_code == 400
    assert response.get_json() == {"error": "invalid_grant",
                                   "error_description": "Invalid username or password"}


def test_protocol_errors_are_rfc6749_form(client, confidential, make_user):
    client_id, secret = confidential
    user = make_user()
    auth = basic_auth(client_id, secret)
    unsupported = client.post("/oauth/token", data={"grant_type": "urn:nope"}, headers=auth)
    assert unsupported.get_json()["error"] == "unsupported_grant_type"
    for no_grant_type in ({}, {"grant_type": ""}):
        answer = client.post("/oauth/token", data=no_grant_type, headers=auth)
        assert answer.status_code == 400 and answer.get_json() == {
            "error": "invalid_request", "error_description": "Missing 'grant_type'"}
    missing = client.post("/oauth/token", data={"grant_type": "password", "username": "a"}, headers=auth)
    assert missing.status_code == 400 and missing.get_json()["error"] == "invalid_request"
    scope = client.post("/oauth/token", data={"grant_type": "password", "username": user["username"],
                                              "password": user["password"], "scope": "openid"},
                        headers=auth)
    assert scope.get_json()["error"] == "invalid_scope"
    not_found = client.post("/oauth/nothing-here")
    assert not_found.status_code == 404 and not_found.get_json()["error"] == "invalid_request"


def test_client_without_the_grant_is_unauthorized_client(client, ctx, make_user):
    registered = register_client({"client_name": "No password", "grant_types": ["password"],
                                  "token_endpoint_auth_method": "client_secret_post"})
    # take the grant away after registration, as an admin would
    from app.extensions import db
    registered.client.grant_types = []
    db.session.commit()
    user = make_user()
    response = client.post("/oauth/token", data={
        "grant_type": "password", "username": user["username"], "password": user["password"],
        "client_id": registered.client.client_id, "client_secret": registered.client_secret})
    assert response.get_json()["error"] == "unauthorized_client"


def test_client_secret_is_stored_as_a_keyed_hash(ctx, confidential):
    from app.extensions import db
    from app.models import Client

    client_id, secret = confidential
    row = db.session.get(Client, client_id)
    assert secret not in row.client_secret_hash and len(row.client_secret_hash) == 64
    assert len(secret) >= 43  # 256 bits, URL-safe base64
