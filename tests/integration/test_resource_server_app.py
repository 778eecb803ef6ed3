"""``require()`` and the example resource server, in process, against a local key server."""

import pytest

from examples.resource_server import create_app
from idp.verifier import Verifier
from tests.keyserver import AUDIENCE, mint

NODES = "/api/v1/tenants/acme/nodes"


@pytest.fixture
def client(key_server):
    return create_app({"IDP_ISSUER": key_server.url, "IDP_AUDIENCE": AUDIENCE}).test_client()


def _bearer(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_reader_lists_and_a_writer_adds(client, key_server, issuer_key):
    reader = mint(issuer_key, key_server.url, tenants={"acme": ["nodes:read"]})
    writer = mint(issuer_key, key_server.url, sub="user-2",
                  tenants={"acme": ["nodes:read", "nodes:write"]})
    assert client.get(NODES, headers=_bearer(reader)).get_json() == {"nodes": []}
    created = client.post(NODES, headers=_bearer(writer), json={"name": "web-1"})
    assert created.status_code == 201
    node = created.get_json()
    assert (node["name"], node["tenant"], node["created_by"]) == ("web-1", "acme", "user-2")
    assert created.headers["Location"] == f"{NODES}/{node['id']}"
    assert client.get(NODES, headers=_bearer(reader)).get_json() == {"nodes": [node]}


def test_no_token_and_a_bad_token_are_401_in_the_envelope(client, key_server, issuer_key):
    missing = client.get(NODES)
    assert missing.status_code == 401
    assert missing.get_json() == {"error": {"code": "UNAUTHORIZED",
                                            "message": "Invalid or expired token"}}
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    wrong_audience = mint(issuer_key, key_server.url, aud="other")
    for headers in (_bearer("garbage"), {"Authorization": "Basic dXNlcjpwYXNz"},
                    {"Authorization": "Bearer"}, _bearer(wrong_audience)):
        refused = client.get(NODES, headers=headers)
        assert refused.status_code == 401
        assert refused.get_json()["error"]["code"] == "UNAUTHORIZED"
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_missing_permission_and_another_tenant_are_403(client, key_server, issuer_key):
    reader = mint(issuer_key, key_server.url, tenants={"acme": ["nodes:read"]})
    forbidden = {"error": {"code": "FORBIDDEN", "message": "Insufficient permissions"}}
    denied = client.post(NODES, headers=_bearer(reader), json={"name": "web-1"})
    assert (denied.status_code, denied.get_json()) == (403, forbidden)
    other = client.get("/api/v1/tenants/beta/nodes", headers=_bearer(reader))
    assert (other.status_code, other.get_json()) == (403, forbidden)


def test_tenant_admins_and_platform_admins_may_do_everything_there(client, key_server, issuer_key):
    tenant_admin = mint(issuer_key, key_server.url, tenants={"acme": ["admin:*"]})
    platform_admin = mint(issuer_key, key_server.url, tenants={"*": ["admin:*"]})
    assert client.post(NODES, headers=_bearer(tenant_admin), json={"name": "a"}).status_code == 201
    assert client.get("/api/v1/tenants/beta/nodes",
                      headers=_bearer(tenant_admin)).status_code == 403
    assert client.post("/api/v1/tenants/beta/nodes", headers=_bearer(platform_admin),
                       json={"name": "b"}).status_code == 201


def test_bad_bodies_are_400_and_unknown_paths_404(client, key_server, issuer_key):
    writer = mint(issuer_key, key_server.url, tenants={"acme": ["nodes:write"]})
    for body in ({}, {"name": ""}, {"name": 7}, {"name": "x" * 201}, {"name": "a", "address": 1}):
        answer = client.post(NODES, headers=_bearer(writer), json=body)
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "INVALID_REQUEST"
    assert client.get("/api/v1/nope").get_json()["error"]["code"] == "NOT_FOUND"


def test_an_unreachable_idp_is_503_not_401(key_server, issuer_key):
    key_server.status = 503
    client = create_app(verifier=Verifier(key_server.url, AUDIENCE)).test_client()
    answer = client.get(NODES, headers=_bearer(mint(issuer_key, key_server.url)))
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "UNAVAILABLE"
