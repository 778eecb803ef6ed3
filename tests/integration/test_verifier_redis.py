"""The verifier's shared-Redis revocation check against real Redis, written by the IdP.

The IdP side is the app's own ``RevocationList`` (PostgreSQL for the durable records,
Redis for the copy); the downstream side is ``SharedRedisRevocationCheck`` on the same
Redis URL and key prefix, as a resource server would configure it.
"""

import time
import uuid

import pytest

from app.repositories import SqlDurableRevocations
from idp.revocation import JTI, RevocationList
from idp.rfc9068 import LEEWAY_SECONDS
from idp.store import Store
from idp.verifier import InvalidToken, Verifier, VerifierUnavailable
from idp.verifier_redis import SharedRedisRevocationCheck
from tests.keyserver import AUDIENCE, mint


def _claims(**overrides):
    now = int(time.time())
    return {"jti": uuid.uuid4().hex, "sub": "user-a", "sid": "fam-" + uuid.uuid4().hex[:8],
            "iat": now - 5, "exp": now + 3600, **overrides}


def test_it_reads_every_revocation_the_idp_writes(idp_revocations, downstream):
    token, family_token, user_token, roles_token, client_token, grant_token = (
        _claims(), _claims(), _claims(sub="user-b", sid=None), _claims(sub="user-c"),
        _claims(client_id="deleted-app"), _claims(sub="user-d", client_id="withdrawn-app"))
    good = [token, family_token, user_token, roles_token, client_token, grant_token]
    assert [downstream(claims) for claims in good] == [True] * 6

    idp_revocations.revoke_access_token(token["jti"], token["exp"])
    idp_revocations.revoke_family(family_token["sid"])
    idp_revocations.revoke_user("user-b")                  # disabled, deleted, new password
    idp_revocations.revoke_user_access_tokens("user-c")    # roles changed
    idp_revocations.revoke_client("deleted-app")           # the client was deleted
    idp_revocations.revoke_grant("user-d", "withdrawn-app")  # consent withdrawn

    later = {**_claims(sub="user-b", sid=None), "iat": int(time.time()) + 2}
    for claims, still_good in [(token, False), (family_token, False), (user_token, False),
                               (roles_token, False), (client_token, False),
                               (grant_token, False), ({**grant_token, "sub": "user-e"}, True),
                               ({**grant_token, "client_id": "another-app"}, True),
                               ({**client_token, "iat": int(time.time()) + 2}, True),
                               (later, True), (_claims(), True),
                               ({**token, "jti": "another"}, True)]:
        # the downstream verdict is the IdP's own, key for key
        assert downstream(claims) is still_good, claims
        assert idp_revocations.is_revoked(claims) is not still_good


def test_through_the_verifier_a_revoked_token_is_a_401(idp_revocations, downstream, key_server,
                                                        issuer_key):
    verifier = Verifier(key_server.url, AUDIENCE, revocation=downstream)
    kept, logged_out = (mint(issuer_key, key_server.url, jti=uuid.uuid4().hex) for _ in range(2))
    principal = verifier.verify(logged_out)
    assert principal.subject == "user-1"
    idp_revocations.revoke_access_token(principal.jti, principal.expires_at)
    with pytest.raises(InvalidToken):
        verifier.verify(logged_out)
    assert verifier.verify(kept).subject == "user-1"


def test_an_emptied_redis_fails_closed_until_the_idp_rebuilds(idp_revocations, downstream,
                                                              redis_ns):
    revoked, good = _claims(), _claims()
    idp_revocations.revoke_access_token(revoked["jti"], revoked["exp"])
    redis_ns.clear()  # what a restart without persistence leaves

    for claims in (revoked, good):
        with pytest.raises(VerifierUnavailable):
            downstream(claims)  # the copy cannot vouch for anything: not even the good one
    # the IdP checks a token of its own and rebuilds the copy from PostgreSQL
    assert idp_revocations.is_revoked(good) is False
    assert downstream(revoked) is False
    assert downstream(good) is True


def test_redis_down_fails_closed_and_an_empty_restart_waits_for_the_idp(ctx, own_redis):
    idp_side = RevocationList(Store.from_url(own_redis.url, prefix="idp"),
                              SqlDurableRevocations(), access_ttl=3600, refresh_ttl=86400)
    downstream = SharedRedisRevocationCheck(own_redis.url)  # the default prefix, "idp"
    try:
        revoked, good = _claims(), _claims()
        idp_side.revoke_family(revoked["sid"])
        assert idp_side.is_revoked(good) is False  # the first check completes the copy
        assert (downstream(revoked), downstream(good)) == (False, True)

        own_redis.stop()
        for claims in (revoked, good):
            with pytest.raises(VerifierUnavailable, match="cannot be read"):
                downstream(claims)

        own_redis.start()  # back, and empty
        with pytest.raises(VerifierUnavailable, match="epoch"):
            downstream(good)
        assert idp_side.is_revoked(revoked) is True  # the IdP rebuilds from the database
        assert (downstream(revoked), downstream(good)) == (False, True)
    finally:
        downstream.close()
        idp_side.store.client.close()


def test_a_redis_that_is_down_is_a_503_through_the_verifier(key_server, issuer_key, own_redis):
    downstream = SharedRedisRevocationCheck(own_redis.url)
    own_redis.stop()
    try:
        with pytest.raises(VerifierUnavailable):
            Verifier(key_server.url, AUDIENCE, revocation=downstream).verify(
                mint(issuer_key, key_server.url))
    finally:
        downstream.close()


def test_the_embedded_store_cannot_be_shared():
    with pytest.raises(ValueError):
        SharedRedisRevocationCheck("memory://")


def test_a_token_revoked_within_its_exp_leeway_is_refused(idp_revocations, downstream,
                                                          key_server, issuer_key):
    """Checkers accept a token until exp + leeway (30 s): a revocation made in that time
    must still be written and obeyed (RFC 7009 /oauth/revoke, logout)."""
    verifier = Verifier(key_server.url, AUDIENCE, revocation=downstream)
    now = int(time.time())
    token = mint(issuer_key, key_server.url, jti=uuid.uuid4().hex, iat=now - 600, nbf=now - 600,
                 exp=now - 5)
    principal = verifier.verify(token)  # past exp, within the leeway: accepted
    idp_revocations.revoke_access_token(principal.jti, principal.expires_at)
    with pytest.raises(InvalidToken):
        verifier.verify(token)
    assert idp_revocations.is_revoked(dict(principal.claims))


def test_a_revoked_token_stays_refused_through_the_exp_leeway(idp_revocations, downstream,
                                                              key_server, issuer_key):
    """The revocation outlives exp by the leeway: the token never comes back in between.
    (Redis expires keys in real time, so the copy's lifetime is read, not waited out.)"""
    verifier = Verifier(key_server.url, AUDIENCE, revocation=downstream)
    exp = int(time.time()) + 1
    token = mint(issuer_key, key_server.url, jti=uuid.uuid4().hex, exp=exp)
    principal = verifier.verify(token)
    idp_revocations.revoke_access_token(principal.jti, principal.expires_at)
    with pytest.raises(InvalidToken, match="revoked"):
        verifier.verify(token)
    copy = downstream.copy
    left_ms = copy.store.client.pttl(copy.key(JTI, principal.jti))
    assert left_ms >= (exp + LEEWAY_SECONDS - time.time() - 1) * 1000


def test_a_leeway_longer_than_revocations_are_kept_is_refused(key_server):
    assert Verifier(key_server.url, AUDIENCE, leeway=30).leeway == 30
    for leeway in (31, -1):
        with pytest.raises(ValueError, match="leeway"):
            Verifier(key_server.url, AUDIENCE, leeway=leeway)
