"""``require()`` and the example resource server, in process, against a local key server."""

import pytest
from flask import Flask

from examples.resource_server import create_app
from examples.resource_server.app import settings_from_environment
from idp.verifier import Verifier
from idp import verifier_flask
from idp.verifier_flask import EXTENSION, require
from idp.verifier_introspection import IntrospectionClient
from idp.verifier_redis import SharedRedisRevocationCheck
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
    for headers in (_bearer("garbage"), {"Authorization": "Bearer"},
                    {"Authorization": "Bearer two words"}, {"Authorization": "bearer garbage"},
                    _bearer(wrong_audience)):
        refused = client.get(NODES, headers=headers)
        assert refused.status_code == 401
        assert refused.get_json()["error"]["code"] == "UNAUTHORIZED"
        assert refused.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"', headers


def test_another_authentication_scheme_gets_a_challenge_without_an_error_code(client):
    """RFC 6750 §3.1: a request that "attempted using an unsupported authentication method"
    lacks authentication information: the challenge SHOULD NOT carry an error code."""
    for scheme in ("Basic dXNlcjpwYXNz", "Digest username=\"u\"", "DPoP abc.def.ghi", ""):
        answer = client.get(NODES, headers={"Authorization": scheme})
        assert answer.status_code == 401
        assert answer.get_json() == {"error": {"code": "UNAUTHORIZED",
                                               "message": "Invalid or expired token"}}
        assert answer.headers["WWW-Authenticate"] == "Bearer", scheme


def test_a_missing_permission_and_another_tenant_are_403(client, key_server, issuer_key):
    reader = mint(issuer_key, key_server.url, tenants={"acme": ["nodes:read"]})
    forbidden = {"error": {"code": "FORBIDDEN", "message": "Insufficient permissions"}}
    denied = client.post(NODES, headers=_bearer(reader), json={"name": "web-1"})
    assert (denied.status_code, denied.get_json()) == (403, forbidden)
    other = client.get("/api/v1/tenants/beta/nodes", headers=_bearer(reader))
    assert (other.status_code, other.get_json()) == (403, forbidden)


def test_a_403_carries_the_insufficient_scope_bearer_challenge(client, key_server, issuer_key):
    """RFC 6750 §3: a request whose token does not enable access MUST get a
    WWW-Authenticate header; §3.1: error="insufficient_scope" with 403 (RFC 9068 §4)."""
    reader = mint(issuer_key, key_server.url, tenants={"acme": ["nodes:read"]})
    for denied in (client.post(NODES, headers=_bearer(reader), json={"name": "web-1"}),
                   client.get("/api/v1/tenants/beta/nodes", headers=_bearer(reader))):
        assert denied.status_code == 403
        assert denied.get_json()["error"]["code"] == "FORBIDDEN"
        assert denied.headers["WWW-Authenticate"] == 'Bearer error="insufficient_scope"'


def test_tenant_admins_and_platform_admins_may_do_everything_there(client, key_server, issuer_key):
    tenant_admin = mint(issuer_key, key_server.url, tenants={"acme": ["admin:*"]})
    platform_admin = mint(issuer_key, key_server.url, tenants={"*": ["admin:*"]})
    assert client.post(NODES, headers=_bearer(tenant_admin), json={"name": "a"}).status_code == 201
    assert client.get("/api/v1/tenants/beta/nodes",
                      headers=_bearer(tenant_admin)).status_code == 403
    assert client.post("/api/v1/tenants/beta/nodes", headers=_bearer(platform_admin),
                       json={"name": "b"}).status_code == 201
    # a tenant id with a line break makes a Location header that stays one header
    odd = client.post("/api/v1/tenants/acme%0D%0AX-Evil:%201/nodes",
                      headers=_bearer(platform_admin), json={"name": "c"})
    assert odd.status_code == 201 and "\n" not in odd.headers["Location"]


def test_bad_bodies_are_400_and_unknown_paths_404(client, key_server, issuer_key):
    writer = mint(issuer_key, key_server.url, tenants={"acme": ["nodes:write"]})
    for body in ({}, {"name": ""}, {"name": 7}, {"name": "x" * 201}, {"name": "a", "address": 1}):
        answer = client.post(NODES, headers=_bearer(writer), json=body)
        assert answer.status_code == 400 and answer.get_json()["error"]["code"] == "INVALID_REQUEST"
    assert client.get("/api/v1/nope").get_json()["error"]["code"] == "NOT_FOUND"


def test_every_error_of_the_service_is_never_cached(client, key_server, issuer_key):
    writer = mint(issuer_key, key_server.url, tenants={"acme": ["nodes:write"]})
    answers = [client.post(NODES, headers=_bearer(writer), json={}),       # its own 400
               client.get("/api/v1/nope"),                                  # 404
               client.delete(NODES, headers=_bearer(writer)),               # 405
               client.get(NODES)]                                           # require's 401
    assert [a.status_code for a in answers] == [400, 404, 405, 401]
    for answer in answers:
        assert answer.headers["Cache-Control"] == "no-store"
        assert set(answer.get_json()["error"]) == {"code", "message"}


def test_an_unreachable_idp_is_503_not_401(key_server, issuer_key):
    key_server.status = 503
    client = create_app(verifier=Verifier(key_server.url, AUDIENCE)).test_client()
    answer = client.get(NODES, headers=_bearer(mint(issuer_key, key_server.url)))
    assert answer.status_code == 503
    assert answer.get_json()["error"]["code"] == "UNAVAILABLE"


def test_the_settings_come_from_the_environment():
    settings = settings_from_environment({
        "IDP_ISSUER": "https://id.example", "IDP_REDIS_URL": "redis://redis.internal:6379/0",
        "IDP_INTROSPECTION_CACHE_SECONDS": "1.5", "IDP_INTROSPECT_ACCESS_TOKENS": "1",
        "TRUSTED_PROXIES": "2"})
    assert settings["IDP_ISSUER"] == "https://id.example"
    assert settings["IDP_REDIS_KEY_PREFIX"] == "idp" and settings["IDP_AUDIENCE"] == AUDIENCE
    assert (settings["IDP_INTROSPECTION_CACHE_SECONDS"], settings["IDP_INTROSPECT_ACCESS_TOKENS"],
            settings["TRUSTED_PROXIES"]) == (1.5, True, 2)
    assert settings["IDP_INTROSPECTION_CLIENT_ID"] is None
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        settings_from_environment({"TRUSTED_PROXIES": "one"})


def test_the_settings_build_the_revocation_check_and_the_introspection_client(redis_ns,
                                                                               key_server):
    app = create_app({"IDP_ISSUER": key_server.url, "IDP_AUDIENCE": AUDIENCE,
                      "IDP_REDIS_URL": redis_ns.url, "IDP_REDIS_KEY_PREFIX": redis_ns.prefix,
                      "IDP_INTROSPECTION_CLIENT_ID": "nodes-api",
                      "IDP_INTROSPECTION_CLIENT_SECRET": "s3cret",
                      "IDP_INTROSPECTION_CACHE_SECONDS": 2})
    verifier = app.extensions[EXTENSION]
    assert isinstance(verifier.revocation, SharedRedisRevocationCheck)
    assert verifier.revocation.copy.store.prefix == redis_ns.prefix
    assert isinstance(verifier.introspection, IntrospectionClient)
    assert (verifier.introspection.issuer, verifier.introspection.client_id,
            verifier.introspection.cache_seconds) == (key_server.url, "nodes-api", 2)
    assert verifier.introspect_access_tokens is False
    verifier.revocation.close()
    # without those settings: no revocation check, and API keys are refused
    plain = create_app({"IDP_ISSUER": key_server.url}).extensions[EXTENSION]
    assert (plain.revocation, plain.introspection) == (None, None)


@pytest.mark.parametrize("config", [
    {"IDP_INTROSPECTION_CLIENT_ID": "nodes-api"},                 # no secret
    {"IDP_INTROSPECTION_CLIENT_SECRET": "s3cret"},                # no client id
    {"IDP_INTROSPECT_ACCESS_TOKENS": True},                       # no client at all
    {"IDP_INTROSPECTION_CLIENT_ID": "nodes-api", "IDP_INTROSPECTION_CLIENT_SECRET": "s3cret",
     "IDP_INTROSPECTION_CACHE_SECONDS": 3600},                    # a stale cache, not a cache
    {"IDP_REDIS_URL": "memory://"},                               # the IdP's own process
])
def test_half_configured_checks_refuse_to_start(config):
    with pytest.raises(ValueError):
        create_app({"IDP_ISSUER": "http://127.0.0.1:1", **config})


@pytest.mark.parametrize("proxies, caller", [(0, "127.0.0.1"), (1, "203.0.113.7")])
def test_the_callers_address_is_the_peer_unless_a_proxy_is_trusted(key_server, proxies, caller):
    asked = []

    def introspect(token, client_ip):
        asked.append(client_ip)
        return {"active": True, "token_type": "api_key", "sub": "key-1",
                "tenants": {"acme": ["nodes:read"]}}

    client = create_app({"TRUSTED_PROXIES": proxies}, verifier=Verifier(
        key_server.url, AUDIENCE, introspection=introspect)).test_client()
    answer = client.get(NODES, headers={**_bearer("ic_live_" + "a" * 43),
                                        "X-Forwarded-For": "203.0.113.7"})
    assert answer.status_code == 200
    assert asked == [caller]


def test_a_negative_trusted_proxies_count_is_refused_at_start_up(key_server, monkeypatch):
    """ProxyFix(x_for=-1) would take the caller's own X-Forwarded-For entry as its address,
    the one an API key's allowed_ips is checked against: refuse to start instead."""
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        settings_from_environment({"TRUSTED_PROXIES": "-1"})
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        create_app({"IDP_ISSUER": key_server.url, "TRUSTED_PROXIES": -1})
    monkeypatch.setenv("TRUSTED_PROXIES", "-1")
    with pytest.raises(ValueError, match="TRUSTED_PROXIES"):
        create_app({"IDP_ISSUER": key_server.url})


def test_a_view_that_cannot_take_the_tenant_is_refused_when_decorated():
    with pytest.raises(TypeError, match="tenant"):
        require("nodes:read")(lambda: "never")
    with pytest.raises(TypeError, match="account"):
        require("nodes:read", tenant_arg="account")(lambda tenant: "never")
    require()(lambda: "any valid token")  # no permission, no tenant needed
    require("nodes:read")(lambda **view_args: "cannot tell: checked per request")


def test_a_route_without_the_tenant_fails_before_any_token_is_checked(key_server, issuer_key):
    app = Flask(__name__)
    app.testing = True  # the view's exception reaches the test instead of a 500
    verifier_flask.init_app(app, Verifier(key_server.url, AUDIENCE))

    @app.get("/nodes")
    @require("nodes:read")
    def nodes(**view_args):
        return {"nodes": []}

    client = app.test_client()
    for headers in ({}, _bearer("garbage"), _bearer(mint(issuer_key, key_server.url))):
        with pytest.raises(LookupError, match="<tenant>"):
            client.get("/nodes", headers=headers)
    assert key_server.jwks_requests == 0  # no token was verified for a view that cannot run
