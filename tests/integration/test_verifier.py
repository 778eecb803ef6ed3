"""The downstream verifier against an issuer of our own over real HTTP (tests/keyserver.py).

Keys are generated locally; the key server counts every request it receives, so caching
and the unknown-kid rate limit are measured, not assumed. Time moves with freezegun.
"""

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone

import pytest
from freezegun import freeze_time

from idp.verifier import (ACCESS_TOKEN, API_KEY, InvalidToken, Principal, Verifier,
                          VerifierUnavailable)
from tests.keyserver import (AUDIENCE, claims_for, forge, mint, new_key, public_jwk,
                             sign_raw)


def _verifier(key_server, **options):
    return Verifier(key_server.url, AUDIENCE, **options)


def test_a_good_token_gives_its_principal(key_server, issuer_key):
    token = mint(issuer_key, key_server.url, tenants={"acme": ["nodes:read"], "beta": ["admin:*"]},
                 roles=["admin"], scope="openid profile")
    principal = _verifier(key_server).verify(token)
    assert isinstance(principal, Principal)
    assert (principal.subject, principal.client_id, principal.sid, principal.token_type) == (
        "user-1", "infracast", "family-1", ACCESS_TOKEN)
    assert principal.roles == ("admin",)
    assert principal.scopes == {"openid", "profile"}
    assert principal.tenants == {"acme": ("nodes:read",), "beta": ("admin:*",)}
    assert principal.jti and principal.expires_at > time.time()
    assert principal.allows("acme", "nodes:read")
    assert not principal.allows("acme", "nodes:write")
    assert principal.allows("beta", "nodes:write")  # admin:* satisfies everything
    assert not principal.allows("gamma", "nodes:read")


def test_a_platform_admin_holds_every_tenant(key_server, issuer_key):
    token = mint(issuer_key, key_server.url, tenants={"*": ["admin:*"]})
    principal = _verifier(key_server).verify(token)
    assert principal.allows("any-tenant", "findings:write")


def test_the_full_media_type_and_an_audience_list_are_accepted(key_server, issuer_key):
    token = mint(issuer_key, key_server.url, header={"typ": "application/at+jwt"},
                 aud=["other-api", AUDIENCE])
    assert _verifier(key_server).verify(token).subject == "user-1"


@pytest.mark.parametrize("header", [
    {"typ": "JWT"},          # an ID token is not an access token
    {"typ": None},
    {"kid": None},
])
def test_headers_other_than_ours_are_refused(key_server, issuer_key, header):
    with pytest.raises(InvalidToken):
        _verifier(key_server).verify(mint(issuer_key, key_server.url, header=header))


def test_a_header_naming_another_algorithm_is_refused_over_a_good_signature(key_server,
                                                                         issuer_key):
    """Signed exactly as RS256 signs, so only the header's alg can refuse it: the algorithm
    is our key's, never the header's (RFC 8725 §3.1)."""
    header = {"alg": "PS256", "typ": "at+jwt", "kid": issuer_key.kid}
    token = sign_raw(issuer_key, header, json.dumps(claims_for(key_server.url)).encode())
    with pytest.raises(InvalidToken, match="alg"):
        _verifier(key_server).verify(token)


def test_alg_none_is_refused(key_server, issuer_key):
    header = {"alg": "none", "typ": "at+jwt", "kid": issuer_key.kid}
    with pytest.raises(InvalidToken):
        _verifier(key_server).verify(forge(header, claims_for(key_server.url)))


@pytest.mark.parametrize("secret", ["pem", "jwk", "n"])
def test_hs256_keyed_with_our_public_key_is_refused(key_server, issuer_key, secret):
    """The classic key-confusion attack: HMAC with the published public key as the secret."""
    jwk = public_jwk(issuer_key)
    secrets = {"pem": issuer_key.as_pem(private=False), "jwk": json.dumps(jwk).encode(),
               "n": jwk["n"].encode()}
    verifier = _verifier(key_server)
    for alg in ("HS256", "RS256"):
        token = forge({"alg": alg, "typ": "at+jwt", "kid": issuer_key.kid},
                      claims_for(key_server.url), secrets[secret])
        with pytest.raises(InvalidToken):
            verifier.verify(token)


def test_a_key_embedded_in_the_header_is_never_trusted(key_server, issuer_key):
    attacker = new_key()
    header = {"kid": issuer_key.kid, "jwk": public_jwk(attacker),
              "jku": "http://attacker.test/jwks.json"}
    token = mint(attacker, key_server.url, header=header)
    with pytest.raises(InvalidToken):
        _verifier(key_server).verify(token)


def test_a_critical_header_extension_is_refused(key_server, issuer_key):
    """RFC 7515 §4.1.11: we understand no extension, so any "crit" one refuses the token."""
    header = {"alg": "RS256", "typ": "at+jwt", "kid": issuer_key.kid,
              "crit": ["urn:example:extension"], "urn:example:extension": True}
    payload = json.dumps(claims_for(key_server.url)).encode()
    verifier = _verifier(key_server)
    good = sign_raw(issuer_key, {"alg": "RS256", "typ": "at+jwt", "kid": issuer_key.kid}, payload)
    assert verifier.verify(good).subject == "user-1"  # the helper signs as the IdP does
    with pytest.raises(InvalidToken):
        verifier.verify(sign_raw(issuer_key, header, payload))


@pytest.mark.parametrize("part", [0, 1, 2])
def test_a_changed_header_payload_or_signature_is_refused(key_server, issuer_key, part):
    """Every part of the token is covered: one changed character in any of them refuses it."""
    token = mint(issuer_key, key_server.url)
    verifier = _verifier(key_server)
    assert verifier.verify(token).subject == "user-1"
    other = mint(issuer_key, key_server.url, sub="user-2", header={"typ": "application/at+jwt"})
    parts = token.split(".")
    parts[part] = other.split(".")[part]  # well-formed, from another genuine token
    with pytest.raises(InvalidToken):
        verifier.verify(".".join(parts))
    parts = token.split(".")
    parts[part] = parts[part][:-2] + ("AA" if parts[part][-2:] != "AA" else "BB")
    with pytest.raises(InvalidToken):
        verifier.verify(".".join(parts))


# the instants below are relative to this one, and the test runs at it (freezegun): a
# suite that takes longer than the leeway to reach it must not turn "nbf in 120 s" valid
COLLECTED_AT = int(time.time())


@pytest.mark.parametrize("claims", [
    {"iss": "https://elsewhere.example"},
    {"aud": "another-api"},
    {"aud": None},
    {"exp": COLLECTED_AT - 31},          # past the 30 s leeway
    {"nbf": COLLECTED_AT + 120},
    {"iat": COLLECTED_AT + 120},
    {"exp": None}, {"sub": None}, {"jti": None}, {"client_id": None}, {"iat": None},
    {"iat": float("nan")}, {"exp": float("inf")}, {"nbf": float("nan")}, {"exp": True},
    {"tenants": ["acme"]},
    {"tenants": {"acme": "nodes:read"}},
    {"roles": "admin"},
])
def test_claims_are_checked(key_server, issuer_key, claims):
    with freeze_time(datetime.fromtimestamp(COLLECTED_AT, timezone.utc)):
        with pytest.raises(InvalidToken):
            _verifier(key_server).verify(mint(issuer_key, key_server.url, **claims))


def test_expiry_has_a_small_leeway(key_server, issuer_key):
    with freeze_time() as clock:
        token = mint(issuer_key, key_server.url, exp=int(time.time()) + 10)
        verifier = _verifier(key_server)
        clock.tick(35)  # 25 s past exp, within 30 s
        assert verifier.verify(token).subject == "user-1"
        clock.tick(10)
        with pytest.raises(InvalidToken):
            verifier.verify(token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 20000, "Bearer",
                                   "eyJhbGciOiJSUzI1NiJ9..", "ic_live_"])
def test_garbage_is_an_invalid_token(key_server, token):
    with pytest.raises(InvalidToken):
        _verifier(key_server).verify(token)


def test_a_flood_of_unknown_kids_fetches_the_jwks_once_per_interval(key_server, issuer_key):
    attacker = new_key()
    verifier = _verifier(key_server, unknown_kid_interval=60)

    def bogus():
        token = mint(attacker, key_server.url, header={"kid": f"bogus-{threading.get_ident()}"})
        with pytest.raises(InvalidToken):
            verifier.verify(token)

    def flood(count=100, threads=10):
        workers = [threading.Thread(target=lambda: [bogus() for _ in range(count // threads)])
                   for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    with freeze_time() as clock:
        verifier.verify(mint(issuer_key, key_server.url))
        assert key_server.jwks_requests == 1
        flood()
        assert key_server.jwks_requests == 1  # just fetched: no kid is worth another fetch yet

        clock.tick(61)
        flood()
        assert key_server.jwks_requests == 2  # one refetch for a hundred bogus kids

        # a key the IdP really added is found, within the same limit
        added = new_key()
        key_server.keys.append(added)
        token = mint(added, key_server.url)
        with pytest.raises(InvalidToken):
            verifier.verify(token)
        clock.tick(61)
        assert verifier.verify(token).subject == "user-1"
        assert key_server.jwks_requests == 3
    assert key_server.discovery_requests == 1


def test_documents_are_cached_for_their_max_age_and_revalidated(key_server, issuer_key):
    key_server.max_age = 120
    verifier = _verifier(key_server)
    token = mint(issuer_key, key_server.url, exp=int(time.time()) + 3600)
    with freeze_time() as clock:
        verifier.verify(token)
        clock.tick(119)
        verifier.verify(token)
        assert key_server.jwks_requests == 1
        clock.tick(1)
        verifier.verify(token)  # revalidated with If-None-Match: a 304 keeps the keys
        assert key_server.jwks_requests == 2
        assert key_server.discovery_requests == 2


@pytest.mark.parametrize("age, fresh_for", [("100", 20), ("500", 1), ("0", 120),
                                            ("soon", 120), ("-5", 120)])
def test_the_age_a_cdn_adds_counts_against_max_age(key_server, issuer_key, age, fresh_for):
    """RFC 9111 §4.2.3: a JWKS that waited in a CDN for 100 of its 120 s is fresh for 20 s
    more, never for another 120 (key rotation's publish delay counts on it)."""
    key_server.max_age, key_server.age = 120, age
    verifier = _verifier(key_server)
    token = mint(issuer_key, key_server.url, exp=int(time.time()) + 3600)
    with freeze_time() as clock:
        verifier.verify(token)
        clock.tick(fresh_for - 0.5)
        verifier.verify(token)
        assert key_server.jwks_requests == 1
        clock.tick(0.5)
        verifier.verify(token)
        assert key_server.jwks_requests == 2


def test_an_unreachable_idp_keeps_cached_keys_for_a_while_then_fails_closed(key_server, issuer_key):
    key_server.max_age = 60
    verifier = _verifier(key_server, retry_interval=5, stale_if_error=600)
    token = mint(issuer_key, key_server.url, exp=int(time.time()) + 3600)
    with freeze_time() as clock:
        verifier.verify(token)
        key_server.status = 503
        clock.tick(60)
        for _ in range(20):
            assert verifier.verify(token).subject == "user-1"  # stale keys, one attempt
        assert (key_server.discovery_requests, key_server.jwks_requests) == (2, 2)
        clock.tick(5)
        verifier.verify(token)
        assert (key_server.discovery_requests, key_server.jwks_requests) == (3, 3)
        clock.tick(600)
        with pytest.raises(VerifierUnavailable):
            verifier.verify(token)
        key_server.status = 200
        clock.tick(5)
        assert verifier.verify(token).subject == "user-1"


def _in_thread(call, *args) -> tuple[threading.Thread, list]:
    """``call(*args)`` started in a thread; the list gets its result or its exception."""
    outcome: list = []

    def run():
        try:
            outcome.append(call(*args))
        except Exception as error:  # noqa: BLE001 - handed to the test
            outcome.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, outcome


def test_a_slow_refetch_does_not_hold_up_tokens_whose_key_is_cached(key_server, issuer_key):
    # real time, not freezegun: a thread's frames can make freezegun hand it the real clock
    key_server.max_age = 1
    verifier = _verifier(key_server, timeout=60)  # the held refetch must not time out first
    token = mint(issuer_key, key_server.url)
    verifier.verify(token)
    time.sleep(1.1)  # stale now, well within stale_if_error
    key_server.hold("/jwks.json")
    refetching, refetched = _in_thread(verifier.verify, token)
    try:
        key_server.wait_for("/jwks.json", 2)  # the refetch is at the IdP, held there
        answered, answer = _in_thread(verifier.verify, token)
        answered.join(timeout=10)
        assert not answered.is_alive(), "a cached key waited for the refetch"
        assert answer[0].subject == "user-1"
    finally:
        key_server.release()
        refetching.join(timeout=30)
    assert refetched[0].subject == "user-1"


def test_an_unknown_kid_while_the_idp_is_unreachable_is_unavailable_not_invalid(key_server,
                                                                               issuer_key):
    key_server.max_age = 60
    verifier = _verifier(key_server, retry_interval=5)
    with freeze_time() as clock:
        verifier.verify(mint(issuer_key, key_server.url))
        added = new_key()  # a key the IdP published while we could not ask it
        key_server.keys.append(added)
        token = mint(added, key_server.url)
        key_server.status = 503
        clock.tick(61)
        with pytest.raises(VerifierUnavailable):
            verifier.verify(token)
        with pytest.raises(VerifierUnavailable):  # within retry_interval: not asked again
            verifier.verify(token)
        assert verifier.verify(mint(issuer_key, key_server.url)).subject == "user-1"
        key_server.status = 200
        clock.tick(5)
        assert verifier.verify(token).subject == "user-1"


def test_no_keys_at_all_is_unavailable_not_invalid(key_server, issuer_key):
    key_server.status = 500
    verifier = _verifier(key_server)
    with pytest.raises(VerifierUnavailable):
        verifier.verify(mint(issuer_key, key_server.url))
    with pytest.raises(VerifierUnavailable):
        verifier.refresh()


def test_discovery_must_name_the_issuer_we_asked(key_server, issuer_key):
    verifier = Verifier(key_server.url + "/", AUDIENCE)  # the same host, another issuer string
    with pytest.raises(VerifierUnavailable):
        verifier.verify(mint(issuer_key, key_server.url + "/"))


def test_the_revocation_hook_sees_the_claims_and_is_obeyed(key_server, issuer_key):
    revoked_jtis, seen = set(), []

    def still_good(claims):
        seen.append(claims)
        return claims["jti"] not in revoked_jtis

    verifier = _verifier(key_server, revocation=still_good)
    token = mint(issuer_key, key_server.url, jti="jti-1")
    assert verifier.verify(token).jti == "jti-1"
    assert seen[0]["sid"] == "family-1" and seen[0]["sub"] == "user-1"
    revoked_jtis.add("jti-1")
    with pytest.raises(InvalidToken):
        verifier.verify(token)


def test_a_failing_revocation_hook_fails_closed(key_server, issuer_key):
    def unreachable(claims):
        raise ConnectionError("redis is down")

    with pytest.raises(VerifierUnavailable):
        _verifier(key_server, revocation=unreachable).verify(mint(issuer_key, key_server.url))


GOOD_KEY, REVOKED_KEY = "ic_live_" + "g" * 43, "ic_live_" + "r" * 43


def test_api_keys_go_through_the_introspector_with_the_callers_address(key_server):
    asked = []

    def introspect(token, client_ip):
        asked.append((token, client_ip))
        if token == GOOD_KEY:
            return {"active": True, "sub": "key-1", "client_id": "key-1",
                    "tenants": {"acme": ["nodes:read"]}, "exp": int(time.time()) + 60,
                    "token_type": "api_key"}
        return {"active": False}

    verifier = _verifier(key_server, introspection=introspect)
    principal = verifier.verify(GOOD_KEY, client_ip="203.0.113.7")
    assert (principal.token_type, principal.subject) == (API_KEY, "key-1")
    assert principal.allows("acme", "nodes:read") and not principal.allows("acme", "nodes:write")
    assert asked == [(GOOD_KEY, "203.0.113.7")]
    with pytest.raises(InvalidToken):
        verifier.verify(REVOKED_KEY, client_ip="203.0.113.7")
    assert key_server.jwks_requests == 0  # API keys never need the JWKS


@pytest.mark.parametrize("junk", ["ic_live_", "ic_live_good", "ic_live_" + "a" * 31,
                                  "ic_live_" + "a" * 93])
def test_a_malformed_api_key_is_refused_without_asking_the_idp(key_server, junk):
    asked = []
    verifier = _verifier(key_server, introspection=lambda *args: asked.append(args))
    with pytest.raises(InvalidToken):
        verifier.verify(junk)
    with pytest.raises(InvalidToken):
        verifier.verify_api_key(junk)
    assert asked == [] and key_server.jwks_requests == 0


def test_an_introspection_answer_for_another_kind_of_token_is_refused(key_server):
    def introspect(token, client_ip):
        return {"active": True, "sub": "user-1", "token_type": "Bearer",
                "tenants": {"acme": ["nodes:read"]}}

    with pytest.raises(InvalidToken):
        _verifier(key_server, introspection=introspect).verify("ic_live_" + "a" * 43)


@pytest.mark.parametrize("instant", [{"exp": float("nan")}, {"iat": float("inf")},
                                     {"exp": True}])
def test_an_introspection_answer_with_a_broken_instant_is_refused(key_server, instant):
    def introspect(token, client_ip):
        return {"active": True, "sub": "key-1", "token_type": "api_key",
                "tenants": {"acme": ["nodes:read"]}, **instant}

    with pytest.raises(InvalidToken):
        _verifier(key_server, introspection=introspect).verify("ic_live_" + "a" * 43)


def test_access_tokens_may_be_checked_by_introspection_too(key_server, issuer_key):
    active, asked = {"active": True}, []

    def introspect(token, client_ip):
        asked.append((token, client_ip))
        return active

    verifier = _verifier(key_server, introspection=introspect, introspect_access_tokens=True)
    token = mint(issuer_key, key_server.url)
    assert verifier.verify(token, client_ip="203.0.113.7").token_type == ACCESS_TOKEN
    assert asked == [(token, None)]  # an access token is the same from every address
    active = {"active": False}
    with pytest.raises(InvalidToken):
        verifier.verify(token)
    with pytest.raises(InvalidToken):  # forged: refused before the IdP is asked
        verifier.verify(mint(new_key(), key_server.url))
    assert len(asked) == 2


def test_api_keys_without_an_introspector_are_refused(key_server):
    with pytest.raises(InvalidToken):
        _verifier(key_server).verify("ic_live_" + "a" * 43)


def test_the_verifier_imports_neither_the_app_nor_the_orm():
    code = ("import sys, idp.verifier, idp.verifier_flask; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('app', 'flask_sqlalchemy', 'sqlalchemy', 'keys', 'redis', 'authlib')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("module", ["idp.verifier_redis", "idp.verifier_introspection"])
def test_the_verifier_hooks_import_neither_the_app_nor_the_orm(module):
    """A resource server imports the hooks without the IdP's app, database or Flask."""
    code = (f"import sys, {module}; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('app', 'flask', 'flask_sqlalchemy', 'sqlalchemy', 'psycopg', 'keys', 'authlib', "
            "'argon2', 'fakeredis')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
