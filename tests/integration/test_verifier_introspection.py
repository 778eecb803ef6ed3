"""The verifier's RFC 7662 client against the IdP itself, over real HTTP.

The IdP app runs in a werkzeug server thread (``idp_over_http``) on PostgreSQL and Redis
and counts the requests it receives, so the positive cache is measured at the IdP. Time
moves with freezegun (in both the client and the IdP, which share the process).
"""

import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
import requests
from freezegun import freeze_time

from app.clients import register_client
from idp.verifier import ACCESS_TOKEN, API_KEY, InvalidToken, Verifier, VerifierUnavailable
from idp.verifier_introspection import IntrospectionClient
from tests.helpers import free_port, new_api_key, revoke_api_key
from tests.keyserver import AUDIENCE

INTROSPECT = ("POST", "/oauth/introspect")
DISCOVERY = ("GET", "/.well-known/openid-configuration")
PASSWORD = "correct horse battery"


@pytest.fixture
def tenant(make_tenant):
    return make_tenant()


@pytest.fixture
def admin_token(idp_over_http, make_user, tenant):
    user = make_user(password=PASSWORD, tenants={tenant: "admin"})
    return _login(idp_over_http, user["username"])


@pytest.fixture
def rs_client(clean):
    """A confidential client registered as a resource server: (client_id, secret)."""
    with clean.app_context():
        registered = register_client({"client_name": "Nodes API",
                                      "grant_types": ["refresh_token"],  # it never gets a token to refresh
                                      "token_endpoint_auth_method": "client_secret_basic",
                                      "resource_server": True})
        return registered.client.client_id, registered.client_secret


def _login(idp, username):
    answer = requests.post(idp.url + "/api/v1/auth/token", timeout=10,
                           json={"username": username, "password": PASSWORD})
    assert answer.status_code == 200, answer.text
    return answer.json()["token"]


def _new_key(idp, token, tenant, **fields):
    return new_api_key(idp.url, token, [tenant], permissions=["nodes:read", "nodes:write"],
                       **fields)


def _verifier(idp, rs_client, cache_seconds=5.0, **options):
    client = IntrospectionClient(idp.url, *rs_client, cache_seconds=cache_seconds)
    return Verifier(idp.url, AUDIENCE, introspection=client, **options)


def test_an_api_key_becomes_a_principal_through_the_idp(idp_over_http, rs_client, admin_token,
                                                        tenant):
    expires = (datetime.now(timezone.utc) + timedelta(days=30)).replace(microsecond=0)
    key = _new_key(idp_over_http, admin_token, tenant, allowed_ips=["10.0.0.0/8"],
                   expires_at=expires.strftime("%Y-%m-%dT%H:%M:%SZ"))
    verifier = _verifier(idp_over_http, rs_client)
    principal = verifier.verify(key["key"], client_ip="10.1.2.3")
    assert (principal.token_type, principal.subject, principal.client_id) == (
        API_KEY, key["id"], key["id"])
    assert principal.tenants == {tenant: ("nodes:read", "nodes:write")}
    assert principal.scopes == {"nodes:read", "nodes:write"}
    assert principal.expires_at == int(expires.timestamp())
    assert principal.allows(tenant, "nodes:write") and not principal.allows("other", "nodes:read")
    # the IdP checks the caller's address against allowed_ips; no address, no entry
    for outside in ("192.0.2.1", None):
        with pytest.raises(InvalidToken):
            verifier.verify(key["key"], client_ip=outside)
    assert verifier.introspection.endpoint == idp_over_http.url + "/oauth/introspect"
    assert idp_over_http.count(*DISCOVERY) == 1


def test_active_answers_are_cached_briefly_and_per_caller_address(idp_over_http, rs_client,
                                                                  admin_token, tenant):
    key = _new_key(idp_over_http, admin_token, tenant, allowed_ips=["10.0.0.0/8"])["key"]
    verifier = _verifier(idp_over_http, rs_client, cache_seconds=5)
    before = idp_over_http.count(*INTROSPECT)
    with freeze_time() as clock:
        for _ in range(3):
            verifier.verify(key, client_ip="10.1.2.3")
        assert idp_over_http.count(*INTROSPECT) == before + 1
        verifier.verify(key, client_ip="10.9.9.9")  # another caller: its own question
        assert idp_over_http.count(*INTROSPECT) == before + 2
        for _ in range(2):  # outside the allowlist: never answered from another's cache entry
            with pytest.raises(InvalidToken):
                verifier.verify(key, client_ip="192.0.2.1")
        assert idp_over_http.count(*INTROSPECT) == before + 4
        clock.tick(4.9)
        verifier.verify(key, client_ip="10.1.2.3")
        assert idp_over_http.count(*INTROSPECT) == before + 4
        clock.tick(0.1)
        verifier.verify(key, client_ip="10.1.2.3")
        assert idp_over_http.count(*INTROSPECT) == before + 5


def test_a_revoked_key_is_accepted_at_most_for_the_cache_ttl(idp_over_http, rs_client,
                                                              admin_token, tenant):
    key = _new_key(idp_over_http, admin_token, tenant)
    verifier = _verifier(idp_over_http, rs_client, cache_seconds=5)
    with freeze_time() as clock:
        verifier.verify(key["key"])
        revoke_api_key(idp_over_http.url, admin_token, key["id"])
        clock.tick(4)
        # the documented staleness: this process asked just before the revocation
        assert verifier.verify(key["key"]).subject == key["id"]
        clock.tick(1)
        asked = idp_over_http.count(*INTROSPECT)
        for _ in range(2):  # and the refusal is not cached: each call asks again
            with pytest.raises(InvalidToken):
                verifier.verify(key["key"])
        assert idp_over_http.count(*INTROSPECT) == asked + 2


def test_the_cache_never_outlives_the_key(idp_over_http, rs_client, admin_token, tenant):
    with freeze_time(datetime.now(timezone.utc).replace(microsecond=0)) as clock:
        expires = datetime.now(timezone.utc) + timedelta(seconds=10)
        key = _new_key(idp_over_http, admin_token, tenant,
                       expires_at=expires.strftime("%Y-%m-%dT%H:%M:%SZ"))["key"]
        verifier = _verifier(idp_over_http, rs_client, cache_seconds=60)
        verifier.verify(key)
        asked = idp_over_http.count(*INTROSPECT)
        clock.tick(9)
        verifier.verify(key)
        assert idp_over_http.count(*INTROSPECT) == asked
        clock.tick(1)  # the key's exp: the IdP is asked again, and says no
        with pytest.raises(InvalidToken):
            verifier.verify(key)
        assert idp_over_http.count(*INTROSPECT) == asked + 1


def test_a_full_cache_lets_the_oldest_answer_go(idp_over_http, rs_client, admin_token, tenant):
    first, second, third = (_new_key(idp_over_http, admin_token, tenant)["key"]
                            for _ in range(3))
    client = IntrospectionClient(idp_over_http.url, *rs_client, cache_seconds=5, max_cached=2)
    verifier = Verifier(idp_over_http.url, AUDIENCE, introspection=client)

    def asks(key) -> int:
        before = idp_over_http.count(*INTROSPECT)
        verifier.verify(key)
        return idp_over_http.count(*INTROSPECT) - before

    with freeze_time() as clock:
        assert [asks(first), asks(second), asks(third)] == [1, 1, 1]  # the first made room
        assert [asks(second), asks(third), asks(first)] == [0, 0, 1]  # the second made room
        assert len(client._cache) == 2
        clock.tick(5)  # every answer has expired: none is used, each goes once asked again
        assert [asks(third), asks(first), asks(third)] == [1, 1, 0]
        assert len(client._cache) == 2


def test_access_tokens_through_introspection(idp_over_http, rs_client, make_user, tenant):
    user = make_user(password=PASSWORD, tenants={tenant: "viewer"})
    token = _login(idp_over_http, user["username"])
    verifier = _verifier(idp_over_http, rs_client, cache_seconds=0, introspect_access_tokens=True)
    before = idp_over_http.count(*INTROSPECT)
    principal = verifier.verify(token)
    assert (principal.token_type, principal.subject) == (ACCESS_TOKEN, user["id"])
    assert principal.allows(tenant, "nodes:read")
    assert idp_over_http.count(*INTROSPECT) == before + 1
    logout = requests.post(idp_over_http.url + "/api/v1/auth/logout", json={}, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    assert logout.status_code == 204
    with pytest.raises(InvalidToken):
        verifier.verify(token)
    # a token that fails the local checks never costs the IdP a request
    with pytest.raises(InvalidToken):
        verifier.verify(token[:-4] + "AAAA")
    assert idp_over_http.count(*INTROSPECT) == before + 2


def test_an_idp_that_cannot_answer_is_a_503_never_a_pass(idp_over_http, rs_client, admin_token,
                                                        tenant):
    key = _new_key(idp_over_http, admin_token, tenant)["key"]
    client_id, secret = rs_client
    with pytest.raises(VerifierUnavailable):  # our credentials refused (HTTP 401)
        _verifier(idp_over_http, (client_id, secret + "x")).verify(key)

    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(VerifierUnavailable):  # nothing listens there
        Verifier(nowhere, AUDIENCE,
                 introspection=IntrospectionClient(nowhere, client_id, secret)).verify(key)

    slow = IntrospectionClient(idp_over_http.url, client_id, secret, timeout=0.5)
    verifier = Verifier(idp_over_http.url, AUDIENCE, introspection=slow)
    slow.endpoint  # discovery answers; introspection will not, in time
    idp_over_http.hold("/oauth/introspect")
    try:
        with pytest.raises(VerifierUnavailable):
            verifier.verify(key)
    finally:
        idp_over_http.release()
    assert verifier.verify(key).token_type == API_KEY  # nothing of the failure was kept


def test_a_slow_discovery_refetch_does_not_hold_up_cached_answers(idp_over_http, rs_client,
                                                                   admin_token, tenant):
    cached, other = (_new_key(idp_over_http, admin_token, tenant)["key"] for _ in range(2))
    # the held refetch must outlast the wait below, not time out first
    verifier = Verifier(idp_over_http.url, AUDIENCE, introspection=IntrospectionClient(
        idp_over_http.url, *rs_client, cache_seconds=300, timeout=60))
    with freeze_time() as clock:
        verifier.introspection.endpoint  # discovery, fresh for its max-age (300 s)
        clock.tick(100)
        verifier.verify(cached)  # cached until 400 s
        clock.tick(200)  # discovery is stale now, the cached answer is not
        idp_over_http.hold("/.well-known/openid-configuration")
        asked = idp_over_http.count(*DISCOVERY)
        refetching = threading.Thread(target=lambda: verifier.verify(other))
        refetching.start()
        try:
            for _ in range(3000):  # until the refetch is at the IdP, held there
                if idp_over_http.count(*DISCOVERY) > asked:
                    break
                time.sleep(0.01)
            else:
                pytest.fail("the stale discovery was not refetched")
            answered = threading.Thread(target=verifier.verify, args=(cached,))
            answered.start()
            answered.join(timeout=10)
            assert not answered.is_alive()
        finally:
            idp_over_http.release()
            refetching.join(timeout=30)


def test_a_slow_discovery_refetch_does_not_hold_up_the_known_endpoint(key_server):
    # the key server's discovery, fresh for one second (real time: freezegun may hand a
    # thread the real clock)
    key_server.max_age = 1
    client = IntrospectionClient(key_server.url, "nodes-api", "secret", timeout=60)
    endpoint = client.endpoint
    time.sleep(1.1)  # stale now; the endpoint it named is still known
    key_server.hold("/.well-known/openid-configuration")
    refetching = threading.Thread(target=lambda: client.endpoint)
    refetching.start()
    try:
        key_server.wait_for("/.well-known/openid-configuration", 2)  # held at the IdP
        answer = []
        answered = threading.Thread(target=lambda: answer.append(client.endpoint))
        answered.start()
        answered.join(timeout=10)
        assert not answered.is_alive(), "the endpoint waited for the discovery refetch"
        assert answer == [endpoint]
    finally:
        key_server.release()
        refetching.join(timeout=30)


def test_settings_that_would_fail_open_are_refused():
    with pytest.raises(ValueError):
        IntrospectionClient("http://127.0.0.1:1", "nodes-api", "secret", cache_seconds=3600)
    with pytest.raises(ValueError):
        IntrospectionClient("http://127.0.0.1:1", "nodes-api", "")
    with pytest.raises(ValueError):
        Verifier("http://127.0.0.1:1", AUDIENCE, introspect_access_tokens=True)
