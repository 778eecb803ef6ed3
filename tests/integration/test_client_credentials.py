"""grant_type=client_credentials (RFC 6749 §4.4): the client is the subject."""

import pytest

from app.clients import register_client
from idp.errors import InvalidRequest
from tests.helpers import basic_auth, jwt_parts


@pytest.fixture
def machine(ctx, make_tenant):
    make_tenant("acme")
    make_tenant("beta")
    registered = register_client({
        "client_name": "Scanner", "grant_types": ["client_credentials"],
        "token_endpoint_auth_method": "client_secret_basic", "scope": "profile",
        "tenant_permissions": {"acme": ["nodes:read", "nodes:write"], "beta": ["jobs:read"]}})
    return registered.client.client_id, registered.client_secret


def test_the_client_is_the_subject_with_its_tenant_permissions(client, machine):
    client_id, secret = machine
    response = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                           headers=basic_auth(client_id, secret))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert "refresh_token" not in body and "id_token" not in body
    assert body["scope"] == "profile"
    header, claims = jwt_parts(body["access_token"])
    assert header["typ"] == "at+jwt"
    assert claims["sub"] == client_id and claims["client_id"] == client_id
    assert claims["tenants"] == {"acme": ["nodes:read", "nodes:write"], "beta": ["jobs:read"]}
    assert claims["roles"] == [] and "sid" not in claims


def test_a_tenant_narrows_the_token(client, machine):
    client_id, secret = machine
    narrowed = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                 "tenant": "beta"},
                           headers=basic_auth(client_id, secret)).get_json()
    assert jwt_parts(narrowed["access_token"])[1]["tenants"] == {"beta": ["jobs:read"]}
    other = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                              "tenant": "gamma"},
                        headers=basic_auth(client_id, secret))
    assert other.status_code == 403 and other.get_json()["error"] == "access_denied"


def test_only_authenticated_confidential_clients(client, machine, make_rp):
    client_id, secret = machine
    wrong = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                        headers=basic_auth(client_id, secret + "x"))
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_client"
    public = make_rp()
    as_public = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                                  "client_id": public.client_id})
    assert as_public.get_json()["error"] == "invalid_client"
    code_client = make_rp(public=False)
    not_registered = client.post("/oauth/token", data={"grant_type": "client_credentials"},
                                 headers=basic_auth(code_client.client_id, code_client.secret))
    assert not_registered.get_json()["error"] == "unauthorized_client"


def test_registration_rules(ctx):
    with pytest.raises(InvalidRequest, match="confidential"):
        register_client({"client_name": "x", "grant_types": ["client_credentials"],
                         "token_endpoint_auth_method": "none"})
    with pytest.raises(InvalidRequest, match="user id"):
        register_client({"client_name": "x", "grant_types": ["client_credentials"]},
                        client_id="6f1c2b1e-8d0a-4c1e-9a57-3f2b8c9d0e1f")
    with pytest.raises(InvalidRequest, match="post_logout_redirect_uris"):
        register_client({"client_name": "x", "redirect_uris": ["https://rp.example/cb"],
                         "post_logout_redirect_uris": ["http://rp.example/bye"]})


@pytest.mark.parametrize("path", ["/oauth/token", "/oauth/introspect", "/oauth/revoke"])
def test_one_authentication_method_per_request(client, machine, path):
    """RFC 6749 §2.3: a client MUST NOT use more than one method (§5.2: invalid_request)."""
    client_id, secret = machine
    form = {"grant_type": "client_credentials", "token": "x"}
    both = client.post(path, data={**form, "client_id": client_id, "client_secret": secret},
                       headers=basic_auth(client_id, secret))
    assert both.status_code == 400 and both.get_json()["error"] == "invalid_request"
    other = client.post(path, data={**form, "client_id": "client-someone-else"},
                        headers=basic_auth(client_id, secret))
    assert other.status_code == 400 and other.get_json()["error"] == "invalid_request"
    # the same client_id beside its Basic credentials is one method, and fine
    same = client.post("/oauth/token", data={"grant_type": "client_credentials",
                                             "client_id": client_id},
                       headers=basic_auth(client_id, secret))
    assert same.status_code == 200
