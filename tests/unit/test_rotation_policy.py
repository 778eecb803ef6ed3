"""The rotation windows, computed from the settings (keys/rotation.py)."""

from datetime import datetime, timedelta, timezone

from keys.manager import KeyRecord
from keys.rotation import PUBLISH_LEEWAY, KeyStates, RotationPolicy

T0 = datetime(2030, 1, 1, tzinfo=timezone.utc)


def _record(kid, state, minutes=0):
    return KeyRecord(kid=kid, state=state, public_jwk={}, sealed_private=b"",
                     created_at=T0 + timedelta(minutes=minutes))


def test_a_next_key_waits_for_every_cache_and_a_retired_key_for_every_token():
    policy = RotationPolicy.from_settings(jwks_max_age=300, key_cache_seconds=30,
                                          access_token_ttl=3600, session_ttl=600,
                                          rotation_days=90)
    # a worker serves a JWKS up to 30 s old, a verifier keeps it 300 s
    assert policy.publish_delay == timedelta(seconds=330)
    # workers sign with the old key until they reload, and each token lives an hour
    assert policy.retire_publish == timedelta(seconds=30 + 3600) + PUBLISH_LEEWAY
    assert policy.rotate_every == timedelta(days=90)


def test_a_retired_key_stays_published_while_its_id_tokens_may_be_logout_hints():
    """RP-Initiated Logout 1.0 §2: an ID token, expired or not, is the id_token_hint of a
    relying party's logout while the sign-in it came from lasts (IDP_SESSION_TTL, 8 h),
    longer than an access token (1 h)."""
    policy = RotationPolicy.from_settings(jwks_max_age=300, key_cache_seconds=30,
                                          access_token_ttl=3600, rotation_days=90,
                                          session_ttl=8 * 3600)
    assert policy.retire_publish == timedelta(seconds=30 + 8 * 3600) + PUBLISH_LEEWAY


def test_zero_days_turns_the_schedule_off():
    policy = RotationPolicy.from_settings(jwks_max_age=1, key_cache_seconds=0,
                                          access_token_ttl=1, session_ttl=1, rotation_days=0)
    assert policy.rotate_every is None


def test_key_states_pick_the_oldest_next_key():
    states = KeyStates.of([_record("n2", "next", 2), _record("a", "active"),
                           _record("r", "retired"), _record("n1", "next", 1)])
    assert (states.active.kid, states.next.kid) == ("a", "n1")
    assert [r.kid for r in states.retired] == ["r"]
    assert KeyStates.of([]) == KeyStates(active=None, next=None)
