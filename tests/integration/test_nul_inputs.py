"""A NUL in a name, a password or a tenant id: PostgreSQL text cannot hold one, so it is
refused before any lookup, and in the form of the input it came in (a field named, the
uniform sign-in failure, an unknown tenant)."""

import pytest

from tests.conftest import bearer
from tests.oidc import client_secret_basic


@pytest.fixture
def admin(make_user, token_for):
    user = make_user(roles=["admin"])
    return {**user, "headers": bearer(token_for(user))}


def _password_grant(client, rp, **form):
    return client.post("/oauth/token", headers={"Authorization": client_secret_basic(rp.client_id, rp.secret)},
                       data={"grant_type": "password", **form})


# -- 1. no password the seed login refuses unread ------------------------------------------
def test_patch_refuses_a_nul_password_as_create_and_the_seed_login_do(client, admin, make_user):
    """The seed login refuses a NUL password unread: PATCH must not set one the user could
    never sign in with (create refuses it too)."""
    user = make_user()
    password = "long enough\x00pw"
    created = client.post("/api/v1/admin/users", headers=admin["headers"], json={
        "username": "nulpw", "email": "nulpw@example.test", "password": password})
    assert created.status_code == 400 and "'password'" in created.get_json()["error"]["message"]
    login = client.post("/api/v1/auth/token", json={"username": user["username"], "password": password})
    assert login.status_code == 400  # refused unread, whoever the user is
    patched = client.patch(f"/api/v1/admin/users/{user['id']}", headers=admin["headers"],
                           json={"password": password})
    assert patched.status_code == 400, patched.get_json()
    assert "'password'" in patched.get_json()["error"]["message"]


# -- 2. the password grant: a NUL user name is an unknown user -------------------------------
def test_password_grant_nul_username_is_the_uniform_invalid_grant(client, make_rp, make_user):
    rp = make_rp(public=False, grant_types=["password"])
    unknown = _password_grant(client, rp, username="ghost", password="some password")
    nul = _password_grant(client, rp, username="ghost\x00", password="some password")
    assert unknown.status_code == 400 and unknown.get_json()["error"] == "invalid_grant"
    assert (nul.status_code, nul.get_json()["error"]) == (400, "invalid_grant"), nul.get_json()


def test_login_page_nul_username_is_the_uniform_failure(client, make_rp, make_user):
    rp = make_rp()
    unknown = rp.submit_login(rp.authorize(), "ghost", "some password")
    rp2 = make_rp()
    nul = rp2.submit_login(rp2.authorize(), "ghost\x00", "some password")
    assert nul.status_code == unknown.status_code, (unknown.status_code, nul.get_data(True)[:300])


# -- 3. a platform admin's NUL tenant at the password grant ----------------------------------
def test_password_grant_admin_nul_tenant_is_an_unknown_tenant(client, make_rp, make_user):
    admin = make_user(roles=["admin"])
    rp = make_rp(public=False, grant_types=["password"])
    unknown = _password_grant(client, rp, username=admin["username"], password=admin["password"],
                              tenant="no-such-tenant")
    nul = _password_grant(client, rp, username=admin["username"], password=admin["password"],
                          tenant="acme\x00")
    assert unknown.status_code != 200
    assert (nul.status_code, nul.get_json()) == (unknown.status_code, unknown.get_json())


# -- 4. API keys: a 400 naming the field, not PostgreSQL's bare 'Invalid request' ----------
@pytest.mark.parametrize("change, name", [({"name": "deploy\x00"}, "name"),
                                          ({"tenants": ["acme\x00"]}, "tenants")])
def test_api_key_nul_is_a_400_naming_the_field(client, admin, make_tenant, change, name):
    tenant = make_tenant()
    body = {"name": "deploy", "tenants": [tenant], "permissions": ["nodes:read"], **change}
    response = client.post("/api/v1/api-keys", headers=admin["headers"], json=body)
    assert response.status_code == 400
    assert f"'{name}'" in response.get_json()["error"]["message"], response.get_json()


# -- 5. an id in the path: the route's 404 ------------------------------------------------
def test_consent_delete_with_a_nul_client_id_is_the_documented_404(client, make_user, token_for):
    """README: DELETE /api/v1/auth/consents/{client_id} -> 404 if there was no consent."""
    headers = bearer(token_for(make_user()))
    unknown = client.delete("/api/v1/auth/consents/nope", headers=headers)
    nul = client.delete("/api/v1/auth/consents/nope%00", headers=headers)
    assert unknown.status_code == 404
    assert (nul.status_code, nul.get_json()) == (unknown.status_code, unknown.get_json())


@pytest.mark.parametrize("method, suffix", [("get", ""), ("delete", ""), ("post", "/rotate")])
def test_api_key_id_with_a_nul_is_an_unknown_key(client, make_user, token_for, method, suffix):
    headers = bearer(token_for(make_user(roles=["admin"])))
    unknown = getattr(client, method)(f"/api/v1/api-keys/key-nope{suffix}", headers=headers, json={})
    nul = getattr(client, method)(f"/api/v1/api-keys/key-nope%00{suffix}", headers=headers, json={})
    assert unknown.status_code == 404
    assert (nul.status_code, nul.get_json()) == (unknown.status_code, unknown.get_json())


@pytest.mark.parametrize("method, path", [("get", "/api/v1/admin/users/"),
                                          ("patch", "/api/v1/admin/users/"),
                                          ("delete", "/api/v1/admin/users/"),
                                          ("get", "/api/v1/admin/clients/"),
                                          ("delete", "/api/v1/admin/clients/"),
                                          ("get", "/api/v1/admin/tenants/")])
def test_admin_id_with_a_nul_is_not_found(client, make_user, token_for, method, path):
    """Looked up nowhere: no id of ours holds a NUL, and PostgreSQL would refuse it."""
    headers = bearer(token_for(make_user(roles=["admin"])))
    kwargs = {"json": {"disabled": True}} if method == "patch" else {}
    unknown = getattr(client, method)(path + "nope", headers=headers, **kwargs)
    nul = getattr(client, method)(path + "nope%00", headers=headers, **kwargs)
    assert unknown.status_code == 404
    assert nul.status_code == 404, nul.get_json()
