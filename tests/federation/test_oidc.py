"""The OIDC connector against a real upstream provider process on loopback.

Happy paths for the Okta (org and custom authorization server) and Azure AD issuer shapes,
then every way the upstream, the browser or an attacker can get it wrong.
"""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc.jwk import ECKey, OctKey, RSAKey

from federation.connector import ConnectorError, Identity, UpstreamUnavailable
from federation.oidc import find_key, parse_jwks
from tests.federation.conftest import (
    AZURE_TENANT, CALLBACK, CLIENT_ID, CONNECTOR_OPTIONS, CREDENTIALS, authorize, okta, sign_in,
)
from tests.federation.upstream import DEFAULT_USER, UpstreamProcess
from tests.helpers import free_port

AZURE_USER = {  # what Azure AD v2.0 typically sends: no email_verified, groups as object ids
    "sub": "AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ",
    "email": "grace@contoso.example",
    "name": "Grace Hopper",
    "preferred_username": "grace@contoso.onmicrosoft.example",
    "groups": ["3f5c5e8a-9c4f-4a1e-9a53-2b1f4b0b7a11", "b7c1d2e3-0000-4a1e-9a53-2b1f4b0b7a12"],
    "oid": "00000000-0000-0000-66f3-3332eca7ea81",
    "tid": AZURE_TENANT,
}


class Clock:
    """An injected clock that tests can move forward."""

    def __init__(self):
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def rejected(connector, params, saved, error=ConnectorError) -> ConnectorError:
    with pytest.raises(error) as caught:
        connector.handle_callback(CALLBACK, params, saved)
    return caught.value


def refused_sign_in(connector, error=ConnectorError) -> ConnectorError:
    params, saved = authorize(connector)
    return rejected(connector, params, saved, error)


# -- happy paths ---------------------------------------------------------------------------

def test_okta_org_server_sign_in(okta_connector, upstream):
    identity = sign_in(okta_connector)
    assert identity == Identity(
        subject=DEFAULT_USER["sub"], email="ada@customer.example", email_verified=True,
        name="Ada Lovelace", username="ada@customer.example",
        groups=("Everyone", "infra-admins"))
    assert upstream.status()["last_client_auth"] == "client_secret_basic"


def test_okta_custom_authorization_server_sign_in(upstream, settings):
    connector = okta({"domain": "dev-123456.okta.com", "issuer": upstream.url + "/oauth2/default",
                      **CREDENTIALS}, settings, **CONNECTOR_OPTIONS)
    assert connector.config.issuer == upstream.url + "/oauth2/default"
    assert sign_in(connector).subject == DEFAULT_USER["sub"]


def test_azure_sign_in_with_the_tenant_issuer(azure_connector, upstream):
    upstream.set(user=AZURE_USER)
    assert azure_connector.config.issuer == f"{upstream.url}/{AZURE_TENANT}/v2.0"
    identity = sign_in(azure_connector)
    assert identity == Identity(
        subject=AZURE_USER["oid"], email="grace@contoso.example",
        email_verified=False,  # Azure AD sends no email_verified: never assume it
        name="Grace Hopper", username="grace@contoso.onmicrosoft.example",
        groups=tuple(AZURE_USER["groups"]),
        former_subject=AZURE_USER["sub"])  # what links were keyed by before oid


def test_an_azure_user_is_their_object_id_whatever_the_app_registration(azure_connector,
                                                                          upstream):
    # Azure AD's sub is pairwise per app registration: another client_id, another sub
    upstream.set(user=AZURE_USER)
    first = sign_in(azure_connector)
    upstream.set(user={**AZURE_USER, "sub": "BBBBBBBBBBBBBBBBBBBBBOtherAppRegistration"})
    assert sign_in(azure_connector).subject == first.subject == AZURE_USER["oid"]


@pytest.mark.parametrize("oid, reason", [(None, "oid claim is missing"),
                                         ("o" * 256, "oid claim is longer than 255")])
def test_azure_requires_the_object_id(azure_connector, upstream, oid, reason):
    upstream.set(user={**AZURE_USER, "oid": oid})
    error = refused_sign_in(azure_connector)
    assert error.message == NOT_VERIFIED and reason in error.reason


def test_okta_users_are_their_sub(okta_connector, upstream):
    upstream.set(user={**DEFAULT_USER, "oid": "00000000-0000-0000-66f3-3332eca7ea81"})
    assert sign_in(okta_connector).subject == DEFAULT_USER["sub"]


def test_groups_map_to_tenant_roles(upstream, settings):
    connector = okta({"domain": "dev-123456.okta.com", "issuer": upstream.url, **CREDENTIALS,
                      "default_tenants": [{"id": "acme", "role": "viewer"}],
                      "group_mappings": {"infra-admins": [{"id": "ops", "role": "admin"}]}},
                     settings, **CONNECTOR_OPTIONS)
    identity = sign_in(connector)
    assert connector.config.tenants.tenant_roles(identity.groups) == {"acme": "viewer", "ops": "admin"}


def test_minimal_claims(okta_connector, upstream):
    upstream.set(user={"sub": "someone"})
    assert sign_in(okta_connector) == Identity(subject="someone")


def test_login_url_carries_state_nonce_and_pkce(okta_connector, azure_connector, upstream):
    start = okta_connector.login(CALLBACK, "the-state")
    url = urlsplit(start.redirect_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == upstream.url + "/authorize"
    query = {name: values[0] for name, values in parse_qs(url.query).items()}
    assert query["response_type"] == "code"
    assert query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == CALLBACK
    assert query["state"] == "the-state"
    assert query["scope"] == "openid email profile groups"
    assert query["nonce"] == start.saved["nonce"]
    assert query["code_challenge_method"] == "S256"
    digest = hashlib.sha256(start.saved["code_verifier"].encode()).digest()
    assert query["code_challenge"] == base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert set(start.saved) == {"nonce", "code_verifier"}
    assert 43 <= len(start.saved["code_verifier"]) <= 128

    again = okta_connector.login(CALLBACK, "the-state")
    assert again.saved["nonce"] != start.saved["nonce"]
    assert again.saved["code_verifier"] != start.saved["code_verifier"]

    azure_query = parse_qs(urlsplit(azure_connector.login(CALLBACK, "s").redirect_url).query)
    assert azure_query["scope"] == ["openid email profile"]


def test_login_asks_the_upstream_for_a_fresh_sign_in_when_told(okta_connector, upstream):
    def query(**fresh) -> dict:
        url = okta_connector.login(CALLBACK, "s", **fresh).redirect_url
        return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}

    assert "prompt" not in query() and "max_age" not in query()
    assert query(force_authn=True)["prompt"] == "login"
    assert query(max_age=300)["max_age"] == "300" and "prompt" not in query(max_age=300)
    both = query(force_authn=True, max_age=0)
    assert (both["prompt"], both["max_age"]) == ("login", "0")
    # and the upstream receives them
    started = okta_connector.login(CALLBACK, "s", force_authn=True, max_age=60)
    assert requests.get(started.redirect_url, allow_redirects=False, timeout=5).status_code == 302
    assert upstream.status()["last_authorize"] == {"prompt": "login", "max_age": "60"}


def test_client_secret_post_when_that_is_all_the_upstream_supports(okta_connector, upstream):
    upstream.set(discovery={"token_endpoint_auth_methods_supported": ["client_secret_post"]})
    sign_in(okta_connector)
    assert upstream.status()["last_client_auth"] == "client_secret_post"


def test_client_secret_basic_when_discovery_lists_no_methods(okta_connector, upstream):
    upstream.set(discovery={"token_endpoint_auth_methods_supported": None})
    sign_in(okta_connector)
    assert upstream.status()["last_client_auth"] == "client_secret_basic"


def test_no_usable_client_authentication(okta_connector, upstream):
    upstream.set(discovery={"token_endpoint_auth_methods_supported": ["private_key_jwt"]})
    with pytest.raises(UpstreamUnavailable) as caught:  # before the user is sent upstream
        okta_connector.login(CALLBACK, "s")
    assert "private_key_jwt" in caught.value.reason


def test_discovery_and_jwks_are_cached(okta_connector, upstream):
    sign_in(okta_connector)
    sign_in(okta_connector)
    counts = upstream.status()["counts"]
    assert counts[".well-known/openid-configuration"] == 1
    assert counts["keys"] == 1
    assert counts["token"] == 2


def test_cache_expires(upstream, settings):
    clock = Clock()
    connector = okta({"domain": "dev-123456.okta.com", "issuer": upstream.url, **CREDENTIALS},
                     settings, clock=clock, metadata_ttl=600, jwks_ttl=300)
    upstream.set(claims={"exp": int(time.time()) + 3600})  # valid at the moved clock too
    sign_in(connector)
    clock.now += 301
    sign_in(connector)
    clock.now += 300
    sign_in(connector)
    counts = upstream.status()["counts"]
    assert counts[".well-known/openid-configuration"] == 2
    assert counts["keys"] == 3


def test_key_rotation_refetches_the_jwks(upstream, settings):
    clock = Clock()
    connector = okta({"domain": "dev-123456.okta.com", "issuer": upstream.url, **CREDENTIALS},
                     settings, clock=clock, jwks_refetch_interval=30)
    sign_in(connector)
    upstream.rotate_key()
    clock.now += 31  # still inside the JWKS's TTL, past the refetch interval
    assert sign_in(connector).subject == DEFAULT_USER["sub"]
    assert upstream.status()["counts"]["keys"] == 2


# -- the authorization response --------------------------------------------------------------

def test_access_denied_upstream(okta_connector, upstream):
    upstream.set(authorize_params={"error": "access_denied",
                                   "error_description": "User is not assigned to the app"})
    params, saved = authorize(okta_connector)
    assert "code" not in params
    error = rejected(okta_connector, params, saved)
    assert not isinstance(error, UpstreamUnavailable)
    assert error.message == "Sign-in was cancelled or denied at the identity provider."
    assert "access_denied" in error.reason and "not assigned" in error.reason
    assert "token" not in upstream.status()["counts"]


def test_other_upstream_errors(okta_connector):
    error = rejected(okta_connector, {"error": "server_error", "state": "s"},
                     {"nonce": "n", "code_verifier": "v"})
    assert error.message == "The identity provider could not complete the sign-in."


def test_callback_without_code_or_saved_state(okta_connector):
    saved = {"nonce": "n", "code_verifier": "v"}
    assert "without code" in rejected(okta_connector, {"state": "s"}, saved).reason
    assert "nonce" in rejected(okta_connector, {"code": "c"}, {}).reason
    assert "nonce" in rejected(okta_connector, {"code": "c"}, {"code_verifier": "v"}).reason


def test_authorization_response_from_another_issuer(okta_connector, upstream):
    upstream.set(authorize_params={"iss": "https://evil.example"})
    assert "iss" in refused_sign_in(okta_connector).reason
    upstream.set(authorize_params={"iss": upstream.url})
    assert sign_in(okta_connector).subject == DEFAULT_USER["sub"]


def test_iss_is_required_when_the_upstream_promises_it(okta_connector, upstream):
    upstream.set(discovery={"authorization_response_iss_parameter_supported": True})
    error = refused_sign_in(okta_connector)
    assert error.message == NOT_VERIFIED and "without iss" in error.reason
    assert "token" not in upstream.status()["counts"]  # refused before the code exchange
    upstream.set(authorize_params={"iss": upstream.url})
    assert sign_in(okta_connector).subject == DEFAULT_USER["sub"]


def test_an_error_response_is_believed_only_from_the_right_issuer(okta_connector, upstream):
    # RFC 9207 §2.4: the issuer is checked before anything else in the response, an error too
    # (the discovery document, read once by the connector, promises iss)
    upstream.set(discovery={"authorization_response_iss_parameter_supported": True})
    saved = {"nonce": "n", "code_verifier": "v"}
    wrong = rejected(okta_connector, {"error": "access_denied", "iss": "https://evil.example"},
                     saved)
    assert wrong.message == NOT_VERIFIED and "iss" in wrong.reason
    missing = rejected(okta_connector, {"error": "access_denied"}, saved)
    assert missing.message == NOT_VERIFIED and "without iss" in missing.reason
    right = rejected(okta_connector, {"error": "access_denied", "iss": upstream.url}, saved)
    assert right.message == "Sign-in was cancelled or denied at the identity provider."


def _signed_in_with(connector, **fresh):
    params, saved = authorize(connector, **fresh)
    return connector.handle_callback(CALLBACK, params, saved)


@pytest.mark.parametrize("connector_name", ["okta_connector", "azure_connector"])
def test_the_upstreams_auth_time_must_honour_max_age(request, upstream, connector_name):
    """OIDC Core §3.1.2.1: with max_age, auth_time is required and no older than asked."""
    connector = request.getfixturevalue(connector_name)
    if connector_name == "azure_connector":
        upstream.set(user=AZURE_USER)
    now = int(time.time())
    upstream.set(claims={"auth_time": now - 3600})  # an upstream session an hour old
    assert _signed_in_with(connector)  # nobody asked for a fresh one
    stale = pytest.raises(ConnectorError, _signed_in_with, connector, max_age=300).value
    assert stale.message == NOT_VERIFIED and "max_age" in stale.reason
    upstream.set(claims={"auth_time": None})
    for max_age in (0, 300):
        missing = pytest.raises(ConnectorError, _signed_in_with, connector, max_age=max_age)
        assert "auth_time" in missing.value.reason
    upstream.set(claims={"auth_time": now - 100})
    assert _signed_in_with(connector, max_age=300)


def test_prompt_login_needs_a_sign_in_after_the_request(okta_connector, upstream):
    now = int(time.time())
    upstream.set(claims={"auth_time": now - 3600})
    old = pytest.raises(ConnectorError, _signed_in_with, okta_connector, force_authn=True).value
    assert old.message == NOT_VERIFIED and "prompt=login" in old.reason
    upstream.set(claims={"auth_time": None})  # not sent: nothing to hold against it
    assert _signed_in_with(okta_connector, force_authn=True)
    upstream.set(claims={"auth_time": now})
    assert _signed_in_with(okta_connector, force_authn=True)


@pytest.mark.parametrize("fresh", [{}, {"force_authn": True}, {"max_age": 0}])
@pytest.mark.parametrize("auth_time", ["", [], False, True])
def test_an_auth_time_that_is_no_number_is_refused(okta_connector, upstream, auth_time, fresh):
    """OIDC Core §2: auth_time is a JSON number. Authlib lets a falsy value through (and a
    bool), which the freshness check must not do arithmetic on."""
    upstream.set(claims={"auth_time": auth_time})
    error = pytest.raises(ConnectorError, _signed_in_with, okta_connector, **fresh).value
    assert error.message == NOT_VERIFIED and "auth_time is not a number" in error.reason


def test_code_cannot_be_replayed(okta_connector):
    params, saved = authorize(okta_connector)
    okta_connector.handle_callback(CALLBACK, params, saved)
    error = rejected(okta_connector, params, saved)
    assert not isinstance(error, UpstreamUnavailable)
    assert "invalid_grant" in error.reason


def test_pkce_verifier_must_match(okta_connector):
    params, saved = authorize(okta_connector)
    error = rejected(okta_connector, params, {**saved, "code_verifier": "x" * 64})
    assert "invalid_grant" in error.reason


def test_wrong_client_secret(upstream, settings):
    connector = okta({"domain": "dev-123456.okta.com", "issuer": upstream.url,
                      "client_id": CLIENT_ID, "client_secret": "not-the-secret"},
                     settings, **CONNECTOR_OPTIONS)
    error = refused_sign_in(connector)
    assert "invalid_client" in error.reason
    assert "not-the-secret" not in error.reason + error.message


# -- the ID token ---------------------------------------------------------------------------

NOT_VERIFIED = "The sign-in could not be verified."


@pytest.mark.parametrize("connector_name", ["okta_connector", "azure_connector"])
@pytest.mark.parametrize("claims, reason", [
    ({"nonce": "an-old-nonce"}, "nonce"),
    ({"nonce": None}, "nonce"),
    ({"aud": "another-client"}, "aud"),
    ({"aud": ["another-client", "and-another"]}, "aud"),
    ({"aud": [CLIENT_ID, "another-client"]}, "azp"),
    ({"aud": [CLIENT_ID, "another-client"], "azp": "another-client"}, "azp"),
    ({"iss": "https://evil.example"}, "iss"),
    ({"sub": None}, "sub"),
    ({"sub": ""}, "sub"),
    ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
    ({"exp": None}, "exp"),
    ({"iat": int(time.time()) + 3600}, "iat"),
    ({"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}, "at_hash"),
    ({"at_hash": ["AAAA"]}, "malformed"),
    ({"auth_time": "yesterday"}, "auth_time"),
    ({"groups": "infra-admins"}, "groups"),
])
def test_id_token_claims_checked(request, upstream, connector_name, claims, reason):
    connector = request.getfixturevalue(connector_name)
    upstream.set(claims=claims)
    error = refused_sign_in(connector)
    assert error.message == NOT_VERIFIED
    assert reason in error.reason


@pytest.mark.parametrize("sub, reason", [
    ("s" * 256, "sub claim is longer than 255 characters"),  # OIDC Core §2
    ("a\x00b", "sub claim has control or non-ASCII characters"),
    ("line\nbreak", "control"),
    ("ünïcode", "non-ASCII"),
    (12345, "sub"),
])
def test_a_subject_the_database_could_not_hold_is_refused(okta_connector, upstream, sub, reason):
    upstream.set(user={**DEFAULT_USER, "sub": sub})
    error = refused_sign_in(okta_connector)
    assert error.message == NOT_VERIFIED
    assert reason in error.reason


def test_a_subject_of_255_characters_is_accepted(okta_connector, upstream):
    upstream.set(user={**DEFAULT_USER, "sub": "s" * 255})
    assert sign_in(okta_connector).subject == "s" * 255


def test_optional_claims_that_are_not_printable_or_too_long_are_dropped(okta_connector,
                                                                       upstream):
    upstream.set(user={"sub": "someone", "name": "Ada\x00Lovelace", "email": "ada@x.example\x7f",
                       "preferred_username": "a" * 1025,
                       "groups": ["ops", "bad\x00group", "g" * 257, "ops", "infra"]})
    assert sign_in(okta_connector) == Identity(subject="someone", groups=("ops", "infra"))


def test_several_audiences_with_our_azp(okta_connector, upstream):
    upstream.set(claims={"aud": [CLIENT_ID, "another-client"], "azp": CLIENT_ID})
    assert sign_in(okta_connector).subject == DEFAULT_USER["sub"]


def test_small_clock_skew_is_tolerated(okta_connector, upstream):
    upstream.set(claims={"iat": int(time.time()) + 20, "exp": int(time.time()) + 20})
    assert sign_in(okta_connector).subject == DEFAULT_USER["sub"]


@pytest.mark.parametrize("signing, reason", [
    ("unknown-key", "unknown key"),
    ("none", "alg 'none' is not allowed"),
    ("hs256-public-key", "alg 'HS256' is not allowed"),
    ("tampered", "bad_signature"),
    ("not-a-jwt", "not a compact JWS"),
])
def test_id_token_signature_checked(okta_connector, upstream, signing, reason):
    upstream.set(signing=signing)
    error = refused_sign_in(okta_connector)
    assert error.message == NOT_VERIFIED
    assert reason in error.reason


def test_unknown_key_refetches_the_jwks_at_most_once_per_interval(okta_connector, upstream):
    upstream.set(signing="unknown-key")
    refused_sign_in(okta_connector)
    refused_sign_in(okta_connector)
    # the first fetch is less than jwks_refetch_interval old: no refetch for either attempt
    assert upstream.status()["counts"]["keys"] == 1


# -- an upstream that is down or answers garbage -----------------------------------------

def test_upstream_down(settings):
    connector = okta({"domain": "dev-123456.okta.com",
                      "issuer": f"http://127.0.0.1:{free_port()}", **CREDENTIALS},
                     settings, **CONNECTOR_OPTIONS)
    with pytest.raises(UpstreamUnavailable) as caught:
        connector.login(CALLBACK, "s")
    assert caught.value.message == "The identity provider could not be reached. Try again later."
    assert "ConnectionError" in caught.value.reason


def test_upstream_stops_between_login_and_callback(settings, tmp_path):
    process = UpstreamProcess(CLIENT_ID, CREDENTIALS["client_secret"], tmp_path)
    try:
        connector = okta({"domain": "dev-123456.okta.com", "issuer": process.url,
                          **CREDENTIALS}, settings, **CONNECTOR_OPTIONS)
        params, saved = authorize(connector)
    finally:
        process.stop()
    error = rejected(connector, params, saved, UpstreamUnavailable)
    assert error.message == "The identity provider could not be reached. Try again later."


def test_token_endpoint_times_out(okta_connector, upstream):
    upstream.set(token_delay=3)
    error = refused_sign_in(okta_connector, UpstreamUnavailable)
    assert "Timeout" in error.reason  # the connector's timeout, not the upstream's answer


GARBAGE_REASONS = {"not-json": ("not JSON", "malformed"), "http-500": ("HTTP 500",),
                   "wrong-shape": ("is not a JSON", "without an id_token")}


@pytest.mark.parametrize("endpoint", [".well-known/openid-configuration", "keys", "token"])
@pytest.mark.parametrize("garbage", GARBAGE_REASONS)
def test_upstream_garbage(request, upstream, endpoint, garbage):
    connector = request.getfixturevalue("okta_connector")
    upstream.set(broken={endpoint: garbage})
    if endpoint == ".well-known/openid-configuration":
        with pytest.raises(UpstreamUnavailable) as caught:
            connector.login(CALLBACK, "s")
        error = caught.value
    else:
        error = refused_sign_in(connector, UpstreamUnavailable)
    assert error.message == "The identity provider sent an invalid response. Try again later."
    assert any(reason in error.reason for reason in GARBAGE_REASONS[garbage]), error.reason
    assert "<html>" not in error.reason


def test_token_response_with_fields_of_the_wrong_type(okta_connector, upstream):
    upstream.set(broken={"token": {"access_token": "at", "token_type": "Bearer",
                                   "expires_in": ["soon"], "id_token": "x.y.z"}})
    error = refused_sign_in(okta_connector, UpstreamUnavailable)
    assert error.message == "The identity provider sent an invalid response. Try again later."


def test_token_endpoint_error(okta_connector, upstream):
    upstream.set(broken={"token": {"error": "server_error", "error_description": "later"}})
    error = refused_sign_in(okta_connector)
    assert error.message == "The identity provider could not complete the sign-in."
    assert "server_error" in error.reason


def test_garbage_is_not_cached(okta_connector, upstream):
    upstream.set(broken={"keys": "not-json"})
    refused_sign_in(okta_connector, UpstreamUnavailable)
    upstream.set(broken={})
    assert sign_in(okta_connector).subject == DEFAULT_USER["sub"]


@pytest.mark.parametrize("discovery, reason", [
    ({"issuer": "https://evil.example"}, "discovery issuer 'https://evil.example'"),
    ({"issuer": None}, "discovery issuer None"),
    ({"token_endpoint": "http://evil.example/token"}, "token_endpoint must be an https:// URL"),
    ({"jwks_uri": None}, "jwks_uri is missing"),
    ({"authorization_endpoint": 42}, "authorization_endpoint is missing"),
    ({"token_endpoint_auth_methods_supported": "client_secret_basic"}, "not a list"),
])
def test_discovery_must_describe_this_issuer(okta_connector, upstream, discovery, reason):
    upstream.set(discovery=discovery)
    with pytest.raises(UpstreamUnavailable) as caught:
        okta_connector.login(CALLBACK, "s")
    assert reason in caught.value.reason


def test_azure_discovery_of_another_tenant_is_refused(azure_connector, upstream):
    upstream.set(discovery={"issuer": f"{upstream.url}/{'0' * 8}-0000-0000-0000-{'0' * 12}/v2.0"})
    with pytest.raises(UpstreamUnavailable, match="invalid response"):
        azure_connector.login(CALLBACK, "s")



# -- JWKS parsing and key selection ---------------------------------------------------------

def test_jwks_keeps_only_usable_signing_keys():
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS256"})
    ec = ECKey.generate_key("P-256", parameters={"kid": "ec-1"})
    encryption = RSAKey.generate_key(2048, parameters={"kid": "enc-1", "use": "enc"})
    document = {"keys": [
        rsa.as_dict(private=False), ec.as_dict(private=False),
        encryption.as_dict(private=False),
        OctKey.generate_key(256, parameters={"kid": "oct-1"}).as_dict(),
        {"kty": "RSA", "kid": "broken", "n": "not base64!", "e": "AQAB"},
        {"kty": "EC", "kid": "no-curve"}, "not a key", {"kid": "no-kty"},
    ]}
    keys = parse_jwks(document)
    assert sorted(key.kid for key in keys) == ["ec-1", "rsa-1"]
    assert find_key(keys, "rsa-1", "RS256").kid == "rsa-1"
    assert find_key(keys, "ec-1", "ES256").kid == "ec-1"
    assert find_key(keys, "ec-1", "RS256") is None  # a key is used only with its own type
    assert find_key(keys, "enc-1", "RS256") is None
    assert find_key(keys, None, "RS256").kid == "rsa-1"  # no kid: the only candidate
    two = parse_jwks({"keys": [rsa.as_dict(private=False),
                               RSAKey.generate_key(2048).as_dict(private=False)]})
    assert find_key(two, None, "RS256") is None  # no kid and a choice: refuse to guess


def test_jwks_key_alg_must_match_the_token():
    rsa = RSAKey.generate_key(2048, parameters={"kid": "rsa-1", "alg": "RS512"})
    assert find_key(parse_jwks({"keys": [rsa.as_dict(private=False)]}), "rsa-1", "RS256") is None
