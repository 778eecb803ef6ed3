"""One contract, two stores: real Redis and the embedded memory:// store run the same tests.

Everything short-lived goes through ``idp.store.Store``; these tests drive it through the
services built on it (refresh families, revocations, the login throttle).
"""

import time
from datetime import datetime, timezone

import pytest
from freezegun import freeze_time

from app.extensions import services
from idp.errors import InvalidGrant, InvalidScope, RateLimited, Unavailable
from idp.refresh import ReuseDetected


@pytest.fixture(params=["redis", "memory"])
def svc(request, clean, embedded_app):
    app = clean if request.param == "redis" else embedded_app
    with app.app_context():
        yield services()


def test_single_use_and_replay_cache_primitives(svc):
    store = svc.store
    key = store.key("code", "abc")
    store.put(key, {"a": 1}, ttl=60)
    assert store.get(key) == {"a": 1}
    assert store.consume(key) == {"a": 1}
    assert store.consume(key) is None
    replay = store.key("seen", "assertion-1")
    assert store.add(replay, {}, ttl=60) is True
    assert store.add(replay, {}, ttl=60) is False
    assert store.key("x", "tag", "rest") == f"{store.prefix}:x:{{tag}}:rest"


def _start(svc, client_id="c1", scope="profile email", tenant=None, auth_time=None):
    return svc.tokens.families.start(user_id="u1", client_id=client_id, scope=scope,
                                     tenant=tenant, auth_time=auth_time or int(time.time()))


def test_rotation_and_reuse_detection(svc, monkeypatch):
    families = svc.tokens.families
    monkeypatch.setattr(families, "grace_seconds", 0)
    first = _start(svc)
    assert len(first.refresh_token.split(".")[1]) >= 43  # 256 bits
    second = families.rotate(first.refresh_token, "c1")
    assert second.refresh_token != first.refresh_token
    assert second.family == first.family
    with pytest.raises(ReuseDetected):
        families.rotate(first.refresh_token, "c1")
    # the family is dead: its newest token too
    with pytest.raises(InvalidGrant):
        families.rotate(second.refresh_token, "c1")


def test_families_keep_the_millisecond_and_stay_readable_by_the_previous_release(svc):
    """The sign-in's millisecond moment lives in a field of its own; ``data`` keeps the whole
    second that releases before it parse with ``int()`` (a rolling deploy, a rollback), and
    a family they wrote (no such field) still reads, at its whole second."""
    families, store = svc.tokens.families, svc.store
    started = families.start(user_id="u1", client_id="c1", scope="profile", tenant=None,
                             auth_time=1795946460.123)
    rotated = families.rotate(started.refresh_token, "c1")
    assert rotated.family.auth_time == 1795946460.123
    assert families.find(rotated.refresh_token).auth_time == 1795946460.123
    hash_key = store.key("rf", started.family.id)
    data = store.client.hget(hash_key, "data").decode()
    assert int(data.split("\x1f")[4]) == 1795946460  # what the previous release reads

    store.client.hdel(hash_key, "at")  # a family as the previous release wrote it
    latest = families.rotate(rotated.refresh_token, "c1")
    assert latest.family.auth_time == 1795946460
    # one with a fractional second in data and no 'at' (no release wrote it for long) reads too
    store.client.hset(hash_key, "data", data.replace("\x1f1795946460\x1f",
                                                     "\x1f1795946460.123\x1f"))
    assert families.rotate(latest.refresh_token, "c1").family.auth_time == 1795946460.123


def test_grace_window_returns_the_same_successor_once_per_token(svc, monkeypatch):
    families = svc.tokens.families
    monkeypatch.setattr(families, "grace_seconds", 5)
    first = _start(svc)
    second = families.rotate(first.refresh_token, "c1")
    again = families.rotate(first.refresh_token, "c1")
    assert again.refresh_token == second.refresh_token
    third = families.rotate(second.refresh_token, "c1")
    # once the successor has been used, the first token is plain reuse
    with pytest.raises(ReuseDetected):
        families.rotate(first.refresh_token, "c1")
    with pytest.raises(InvalidGrant):
        families.rotate(third.refresh_token, "c1")


def test_grace_window_ends(svc, monkeypatch):
    families = svc.tokens.families
    monkeypatch.setattr(families, "grace_seconds", 2)
    with freeze_time() as frozen:
        first = _start(svc)
        families.rotate(first.refresh_token, "c1")
        frozen.tick(3)
        with pytest.raises(ReuseDetected):
            families.rotate(first.refresh_token, "c1")


def test_wrong_client_wider_scope_and_forgeries_consume_nothing(svc):
    families = svc.tokens.families
    first = _start(svc, scope="profile email")
    with pytest.raises(InvalidGrant):
        families.rotate(first.refresh_token, "another-client")
    with pytest.raises(InvalidScope):
        families.rotate(first.refresh_token, "c1", scope="profile openid")
    forged = first.family.id + ".not-the-secret"
    with pytest.raises(InvalidGrant) as refused:
        families.rotate(forged, "c1")
    assert not isinstance(refused.value, ReuseDetected)
    # none of that consumed the real token or revoked the family
    assert families.rotate(first.refresh_token, "c1", scope="profile").family == first.family


def test_absolute_expiry(svc):
    families = svc.tokens.families
    with freeze_time() as frozen:
        token = _start(svc).refresh_token
        frozen.tick(svc.config["REFRESH_TOKEN_TTL"] - 10)
        token = families.rotate(token, "c1").refresh_token  # rotation never extends the family
        frozen.tick(11)
        with pytest.raises(InvalidGrant):
            families.rotate(token, "c1")


def test_find_and_end(svc):
    families = svc.tokens.families
    first = _start(svc)
    assert families.find(first.refresh_token) == first.family
    assert families.find("garbage") is None
    families.end(first.family.id)
    assert families.find(first.refresh_token) is None
    with pytest.raises(InvalidGrant):
        families.rotate(first.refresh_token, "c1")


def _claims(**overrides):
    now = int(time.time())
    return {"jti": "j-" + str(time.perf_counter_ns()), "sub": "user-a", "sid": "fam-a",
            "iat": now - 5, "exp": now + 3600, **overrides}


def test_revocations_by_jti_family_and_user(svc):
    revocations = svc.revocations
    token = _claims()
    assert revocations.is_revoked(token) is False
    revocations.revoke_access_token(token["jti"], token["exp"])
    assert revocations.is_revoked(token) is True
    other = _claims(sid="fam-b")
    revocations.revoke_family("fam-b")
    assert revocations.is_revoked(other) is True
    assert revocations.is_revoked(_claims(sid="fam-c")) is False
    user_token = _claims(sub="user-b", sid=None)
    revocations.revoke_user("user-b")
    assert revocations.is_revoked(user_token) is True
    # a token issued after the watermark is good again
    assert revocations.is_revoked(_claims(sub="user-b", sid=None, iat=int(time.time()) + 2)) is False


def test_an_emptied_store_is_rebuilt_before_any_token_is_accepted(svc):
    revocations = svc.revocations
    revoked = _claims()
    revocations.revoke_access_token(revoked["jti"], revoked["exp"])
    revocations.revoke_family("fam-x")
    revocations.revoke_user("user-x")
    assert revocations.is_revoked(revoked)
    # empty the store as a restart without persistence would
    client = svc.store.client
    client.delete(*client.keys(f"{svc.store.prefix}:*"))
    assert revocations.is_revoked(revoked) is True
    assert revocations.is_revoked(_claims(sid="fam-x")) is True
    assert revocations.is_revoked(_claims(sub="user-x", sid=None)) is True
    assert revocations.is_revoked(_claims(sid="fam-y")) is False


def test_readiness_refills_an_emptied_store(svc):
    """Resource servers read the copy directly; the IdP refills it without a token check."""
    from idp.revocation import RevocationCopy

    revoked = _claims()
    svc.revocations.revoke_access_token(revoked["jti"], revoked["exp"])
    client = svc.store.client
    client.delete(*client.keys(f"{svc.store.prefix}:*"))
    copy = RevocationCopy(svc.store)
    with pytest.raises(Unavailable):
        copy.is_revoked(revoked)  # a reader that cannot rebuild fails closed
    svc.revocations.ensure_copy()
    assert copy.is_revoked(revoked) is True


def test_throttle_counts_and_delays(svc):
    throttle = svc.throttle
    with freeze_time() as frozen:
        for _ in range(throttle.policy.free_attempts + 1):
            throttle.begin("alice", "10.0.0.1")
        with pytest.raises(RateLimited) as limited:
            throttle.begin("alice", "10.0.0.1")
        assert limited.value.retry_after >= 1
        # other accounts from that address, and this account from elsewhere, are untouched
        throttle.begin("bob", "10.0.0.1")
        throttle.begin("alice", "10.0.0.2")
        frozen.tick(3600)
        throttle.begin("alice", "10.0.0.1")
        throttle.succeeded("alice", "10.0.0.1")
        assert throttle.attempts("alice", "10.0.0.1") == 0


def test_throttle_counts_an_ipv6_host_by_its_64_and_a_mapped_ipv4_as_ipv4(svc):
    throttle = svc.throttle
    with freeze_time():
        throttle.begin("alice", "2001:db8:1:2::1")
        throttle.begin("alice", "2001:db8:1:2:ffff:ffff:ffff:ffff")
        throttle.begin("alice", "2001:DB8:1:2:0:0:0:1")
        assert throttle.attempts("alice", "2001:db8:1:2::abcd") == 3
        assert throttle.attempts("alice", "2001:db8:1:3::1") == 0  # another /64, another host
        throttle.begin("alice", "::ffff:192.0.2.7")
        throttle.begin("alice", "192.0.2.7")
        assert throttle.attempts("alice", "192.0.2.7") == 2
        assert throttle.attempts("alice", "192.0.2.8") == 0  # IPv4 is counted per address
        throttle.begin("alice", "unknown")  # no peer address: counted as given
        assert throttle.attempts("alice", "unknown") == 1
        throttle.succeeded("alice", "2001:db8:1:2::99")
        assert throttle.attempts("alice", "2001:db8:1:2::1") == 0


def test_the_user_watermark_has_millisecond_precision(svc):
    """A token issued a moment after a user-wide revocation, in the same second, is good;
    one from the moment before, or without iat_ms from that second, is revoked."""
    with freeze_time("2030-01-01 12:00:00.500"):
        svc.revocations.revoke_user("user-ms")
    second = int(datetime(2030, 1, 1, 12, tzinfo=timezone.utc).timestamp())  # freeze_time is UTC
    base = {"jti": "j-ms", "sub": "user-ms", "iat": second, "exp": second + 3600}
    with freeze_time("2030-01-01 12:00:01"):
        assert svc.revocations.is_revoked({**base, "iat_ms": second * 1000 + 499}) is True
        assert svc.revocations.is_revoked({**base, "iat_ms": second * 1000 + 501}) is False
        assert svc.revocations.is_revoked(base) is True
