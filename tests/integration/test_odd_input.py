"""Odd input is a clear 4xx, never a 500 (found by review: each of these was a 500)."""

import base64
import io
import json

import pytest

from app.clients import register_client
from app.config import MAX_CONTENT_LENGTH
from tests.conftest import audit_events, bearer


@pytest.mark.parametrize("body", [
    '{"username": "a\\ud800", "password": "x"}',        # a lone surrogate escape
    '{"username": "a", "password": "\\udfff"}',
    # nested past the recursion limit, and well within the body size limit
    '{"username": ' + "[" * 5000 + "]" * 5000 + '}',
])
def test_json_that_is_not_text_or_too_deep_is_400(client, body):
    response = client.post("/api/v1/auth/token", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "INVALID_REQUEST"


@pytest.mark.parametrize("body, words", [
    ('{"username": "a", "password": "x", "tenant": {"deep": [["a\\u0000"]]}}',
     "'tenant' must not hold a NUL"),
    ('{"username": "a", "password": "x", "a\\u0000": 1}', "NUL"),
    # within json.dumps's depth, past that of the walk looking for a NUL
    ('{"username": ' + "[" * 450 + "]" * 450 + '}', "nested too deeply"),
])
def test_a_nul_anywhere_in_a_json_body_is_400_naming_its_field(client, body, words):
    response = client.post("/api/v1/auth/token", data=body, content_type="application/json")
    assert response.status_code == 400
    assert words in response.get_json()["error"]["message"]


def test_a_refresh_token_with_a_surrogate_is_400(client):
    response = client.post("/api/v1/auth/refresh", data='{"refresh_token": "a.\\ud800"}',
                           content_type="application/json")
    assert response.status_code == 400


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
@pytest.mark.parametrize("header", ["Basic //46/w==", "Basic !!!not-base64", "Basic ",
                                    "Basic Og==",
                                    # another scheme with nothing after it: a server strips
                                    # SP and HTAB around a value, never U+00A0
                                    "Bearer ", "Bearer \xa0", "Digest ", " "])
def test_malformed_basic_credentials_are_invalid_client(client, path, header):
    response = client.post(path, data={"grant_type": "client_credentials", "token": "x"},
                           headers={"Authorization": header})
    assert response.status_code == 401  # RFC 6749 §5.2, as below
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith('Basic error="invalid_client"')


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
@pytest.mark.parametrize("header", [
    "Basic " + base64.b64encode(b"no-such-client:").decode(),  # an empty password
    "Basic " + base64.b64encode(b"no-such-client").decode(),   # no password at all
    "Basic !!!not-base64",                                     # Authlib reads nothing from it
    "Basic Og==",                                              # ':', no client id
])
def test_invalid_client_is_401_with_www_authenticate_whenever_basic_was_used(client, path,
                                                                             header):
    """RFC 6749 §5.2: "If the client attempted to authenticate via the Authorization request
    header field, the authorization server MUST respond with an HTTP 401 (Unauthorized)
    status code and include the WWW-Authenticate response header field". A client_id in the
    form beside the header made it a public client's request (Authlib's ``none``): 400."""
    response = client.post(path, headers={"Authorization": header}, data={
        "grant_type": "password", "username": "someone", "password": "secret",
        "token": "x", "client_id": "no-such-client"})
    assert response.status_code == 401
    assert response.get_json()["error"] == "invalid_client"
    assert response.headers["WWW-Authenticate"].startswith('Basic error="invalid_client"')


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/revoke", "/oauth/introspect"])
def test_an_unknown_client_and_a_wrong_secret_answer_alike(client, clean, path):
    """invalid_client is 401 however the client authenticated (RFC 6749 §5.2 allows it, RFC
    7662 §2.3 asks it of introspection): a 400 for an unknown client_id beside the 401 of a
    known one's wrong secret told anyone which client ids exist."""
    with clean.app_context():
        known = register_client({"client_name": "by form", "grant_types": ["password"],
                                 "token_endpoint_auth_method": "client_secret_post",
                                 "resource_server": True}).client.client_id
    answers = [client.post(path, data={"grant_type": "password", "username": "a",
                                       "password": "b", "token": "x", "client_id": client_id,
                                       "client_secret": "wrong"})
               for client_id in (known, "client-nobody0")]
    for response in answers:
        assert response.status_code == 401
        assert response.get_json()["error"] == "invalid_client"
        assert response.headers["WWW-Authenticate"].startswith('Basic error="invalid_client"')
    assert answers[0].get_json() == answers[1].get_json()


def test_odd_admin_and_key_inputs(client, make_user, token_for, make_tenant):
    tenant = make_tenant()
    headers = bearer(token_for(make_user(roles=["admin"], tenants={tenant: "admin"})))
    for limit in ("²", "9" * 5000, "-1"):
        assert client.get(f"/api/v1/admin/tenants?limit={limit}", headers=headers).status_code == 400
    expiry = client.post("/api/v1/api-keys", headers=headers, json={
        "name": "x", "tenants": [tenant], "permissions": ["nodes:read"],
        "expires_at": "9999-12-31T23:59:59-23:00"})
    assert expiry.status_code == 400 and "'expires_at'" in expiry.get_json()["error"]["message"]
    bad_uri = client.post("/api/v1/admin/clients", headers=headers, json={
        "client_name": "x", "grant_types": ["authorization_code"], "redirect_uris": ["http://[::1"]})
    assert bad_uri.status_code == 400
    newline = client.post("/api/v1/admin/tenants", headers=headers, json={"id": "acme\n", "name": "x"})
    assert newline.status_code == 400


def test_an_overlong_username_on_the_password_grant_is_400_and_audits_stay_writable(
        client, clean, make_user):
    with clean.app_context():
        registered = register_client({"client_name": "CLI", "grant_types": ["password"],
                                      "token_endpoint_auth_method": "none"})
        client_id = registered.client.client_id
    user = make_user()
    padded = client.post("/oauth/token", data={"grant_type": "password", "client_id": client_id,
                                               "username": user["username"] + "\t" * 300,
                                               "password": "wrong password"})
    # refused like any wrong password, before anything is counted, hashed or audited
    assert padded.status_code == 400 and padded.get_json()["error"] == "invalid_grant"
    assert audit_events(clean, "login") == []
    # an attempt at the limit is checked, and its failure is audited
    near = client.post("/oauth/token", data={"grant_type": "password", "client_id": client_id,
                                             "username": user["username"] + "\t" * 20,
                                             "password": "wrong password"})
    assert near.status_code == 400 and near.get_json()["error"] == "invalid_grant"
    assert audit_events(clean, "login")[-1]["outcome"] == "failure"


def test_a_refused_admin_access_with_a_nul_in_the_path_is_403_and_audited(
        client, clean, make_user, token_for, make_tenant):
    """PostgreSQL refuses NUL in text and jsonb: the audit row gets U+FFFD in its place."""
    tenant_admin = make_user(tenants={make_tenant(): "admin"})
    response = client.get("/api/v1/admin/users/%00", headers=bearer(token_for(tenant_admin)))
    assert response.status_code == 403 and response.get_json()["error"]["code"] == "FORBIDDEN"
    assert [(r["outcome"], r["actor"], r["target"]) for r in audit_events(clean, "admin.access")] \
        == [("denied", tenant_admin["id"], "/api/v1/admin/users/\ufffd")]


def test_audit_values_with_a_nul_stay_writable(clean):
    """An attacker-chosen value anywhere in an event (an upstream's error detail, a name in
    a list) must not make the event unwritable."""
    from app.extensions import services

    with clean.app_context():
        services().audit("sso.login", "failure", actor="user\x00", target="okta\x00",
                         detail="bad\x00claim", tenants=["acme\x00"], seen={"sub": ["\x00"]},
                         attempts=3)
    assert audit_events(clean, "sso.login") == [{
        "outcome": "failure", "actor": "user\ufffd", "target": "okta\ufffd", "client_ip": None,
        "details": {"detail": "bad\ufffdclaim", "tenants": ["acme\ufffd"],
                    "seen": {"sub": ["\ufffd"]}, "attempts": 3}}]


def test_repeated_parameters_and_hints(client, clean):
    with clean.app_context():
        registered = register_client({"client_name": "RS", "grant_types": ["client_credentials"],
                                      "token_endpoint_auth_method": "client_secret_post",
                                      "resource_server": True})
        client_id, secret = registered.client.client_id, registered.client_secret
    repeated = client.post("/oauth/token", data={"grant_type": ["client_credentials"] * 2,
                                                 "client_id": client_id, "client_secret": secret})
    assert repeated.status_code == 400 and repeated.get_json()["error"] == "invalid_request"
    # an unknown token_type_hint is ignored (RFC 7009 §2.1, RFC 7662 §2.1)
    for path in ("/oauth/revoke", "/oauth/introspect"):
        answer = client.post(path, data={"token": "x", "token_type_hint": "something_else",
                                         "client_id": client_id, "client_secret": secret})
        assert answer.status_code == 200, (path, answer.get_json())


@pytest.mark.parametrize("name", ['a"b', "a\\b", "é", "a\x7fb"])
def test_a_repeated_parameter_whose_name_cannot_be_quoted_is_400(client, clean, name):
    """Authlib refuses these characters in an error description (RFC 6749 §5.2): each was a 500."""
    with clean.app_context():
        registered = register_client({"client_name": "RS", "grant_types": ["client_credentials"],
                                      "token_endpoint_auth_method": "client_secret_post",
                                      "resource_server": True})
        credentials = {"client_id": registered.client.client_id,
                       "client_secret": registered.client_secret}
    for path in ("/oauth/token", "/oauth/revoke", "/oauth/introspect"):
        response = client.post(path, data={name: ["1", "2"], "grant_type": "client_credentials",
                                           "token": "x", **credentials})
        assert response.status_code == 400, (path, response.get_data(True))
        body = response.get_json()
        assert body["error"] == "invalid_request" and name not in body["error_description"]
    quotable = client.post("/oauth/token", data={"a'b": ["1", "2"], **credentials,
                                                  "grant_type": "client_credentials"})
    assert quotable.get_json()["error_description"] == "'a'b' is given more than once"


def _chunked(client, path, raw: bytes, content_type: str, headers: dict | None = None):
    """``raw`` as an HTTP/1.1 chunked body: no Content-Length."""
    return client.post(path, input_stream=io.BytesIO(raw),
                       headers={"Content-Type": content_type, "Transfer-Encoding": "chunked",
                                **(headers or {})},
                       environ_overrides={"wsgi.input_terminated": True})


def test_a_chunked_body_is_refused_at_the_limit_not_cut_short(client, make_user):
    """Werkzeug stops a chunked body at MAX_CONTENT_LENGTH without a word: a form cut there
    still parses, short of its last parameters, and JSON padded past it still parses. Both
    are 413, as with a Content-Length; below the limit they are read whole."""
    user = make_user()
    padding = b" " * MAX_CONTENT_LENGTH
    login = json.dumps({"username": user["username"], "password": user["password"]}).encode()
    assert _chunked(client, "/api/v1/auth/token", login + padding,
                    "application/json").status_code == 413
    assert _chunked(client, "/api/v1/auth/token", login, "application/json").status_code == 200
    form = b"grant_type=password&username=" + b"x" * MAX_CONTENT_LENGTH + b"&scope=openid"
    cut = _chunked(client, "/oauth/token", form, "application/x-www-form-urlencoded")
    assert cut.status_code == 413 and cut.get_json()["error"] == "invalid_request"
    exactly = login + b" " * (MAX_CONTENT_LENGTH - len(login))  # at the limit, not past it
    assert _chunked(client, "/api/v1/auth/token", exactly, "application/json").status_code == 200
    one_more = exactly + b" "
    assert _chunked(client, "/api/v1/auth/token", one_more, "application/json",
                    headers={"Transfer-Encoding": "gzip, Chunked"}).status_code == 413


def test_the_saml_endpoint_keeps_its_own_body_limit_when_the_body_comes_chunked(client):
    """Its limit (a SAML Response of up to 512 KiB, form-encoded) is larger than the rest's;
    the body is read under it whether or not a Content-Length comes with it."""
    form = b"SAMLResponse=" + b"A" * (100 * 1024) + b"&RelayState=x"
    for response in (_chunked(client, "/api/v1/auth/sso/saml/acs", form,
                              "application/x-www-form-urlencoded"),
                     client.post("/api/v1/auth/sso/saml/acs", data=form,
                                 content_type="application/x-www-form-urlencoded")):
        assert response.status_code != 413
    too_large = b"SAMLResponse=" + b"A" * (700 * 1024)
    for response in (_chunked(client, "/api/v1/auth/sso/saml/acs", too_large,
                              "application/x-www-form-urlencoded"),
                     client.post("/api/v1/auth/sso/saml/acs", data=too_large,
                                 content_type="application/x-www-form-urlencoded")):
        assert response.status_code == 413
        assert "(at most 644 KiB)" in response.get_data(True)  # its own limit, not 64


@pytest.mark.parametrize("path", ["/no-such-page", "/login/abcdefghijklmnopqrstuvwxyz"])
def test_a_host_that_is_no_host_name_is_400(client, path):
    """Routing refuses it (BadHost); answering the refusal must not route it again."""
    response = client.open(path, method="PUT", headers={"Host": "a" * 64 + ".example"})
    assert response.status_code == 400


def test_a_413_names_the_limit_only_when_the_body_went_past_it(client):
    """Werkzeug answers 413 also for a form of too many parts (Flask's MAX_FORM_PARTS), well
    within the byte limit."""
    parts = b"".join(b'--b\r\nContent-Disposition: form-data; name="%d"\r\n\r\n\r\n' % i
                     for i in range(1001)) + b"--b--\r\n"
    assert len(parts) < MAX_CONTENT_LENGTH
    many = client.post("/oauth/token", data=parts, content_type="multipart/form-data; boundary=b")
    assert many.status_code == 413 and "KiB" not in many.get_json()["error_description"]
    for response in (client.post("/oauth/token", data=b"a=" + b"x" * MAX_CONTENT_LENGTH,
                                 content_type="application/x-www-form-urlencoded"),
                     _chunked(client, "/oauth/token", b"a=" + b"x" * 4 * MAX_CONTENT_LENGTH,
                              "application/x-www-form-urlencoded")):
        assert response.get_json()["error_description"] == \
            "Request body too large (at most 64 KiB)"

