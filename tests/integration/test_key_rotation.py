"""Key rotation on PostgreSQL: the state machine in time, compare-and-swap races, the CLI.

The module has a schema of its own, so the keys it rotates are no other test's keys.
"""

import json
import threading
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade
from freezegun import freeze_time

from app import create_app
from app.extensions import db, dispose_engines, services
from app.models import SigningKey
from keys.keyring import Keyring, SigningKeyUnavailable
from keys.manager import KeyManager
from keys.sealing import Sealer, generate_kek, parse_kek
from keys.rotation import (CREATED, PROMOTED, WAITING, KeyRotator, KeyStates,
                           RotationPolicy)
from tests.conftest import PgSchema, base_config

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
# JWKS_MAX_AGE 60 + KEY_CACHE_SECONDS 0; ACCESS_TOKEN_TTL and IDP_SESSION_TTL 600 + 0 + 5 min
# leeway
PUBLISH_DELAY = timedelta(seconds=60)
RETIRE_PUBLISH = timedelta(seconds=900)


@pytest.fixture(scope="module")
def keys_app():
    schema = PgSchema()
    application = create_app(base_config(DATABASE_URL=schema.url, KEY_CACHE_SECONDS=0,
                                         JWKS_MAX_AGE=60, ACCESS_TOKEN_TTL=600,
                                         SESSION_TTL=600, KEY_ROTATION_DAYS=90))
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        dispose_engines()
    schema.drop()


@pytest.fixture
def svc(keys_app):
    """The services, in an app context, over an empty signing_keys table."""
    with keys_app.app_context():
        with db.engine.begin() as conn:
            conn.execute(sa.delete(SigningKey.__table__))
        yield services()


def _states():
    rows = db.session.execute(sa.select(SigningKey.kid, SigningKey.state)).all()
    db.session.rollback()
    return dict(rows)


def _published(keyring):
    return {key["kid"] for key in json.loads(keyring.jwks().body)["keys"]}


def test_one_rotation_in_time(svc):
    rotator, keyring = svc.rotator, Keyring(svc.keys, cache_seconds=0)
    with freeze_time(T0) as clock:
        first = svc.keys.ensure_active()

        created = rotator.step()
        assert created.outcome == CREATED
        assert created.ready_at == T0 + PUBLISH_DELAY
        # published at once, signing not yet
        assert _published(keyring) == {first.kid, created.next.kid}
        assert keyring.signing_key().kid == first.kid

        clock.tick(PUBLISH_DELAY - timedelta(seconds=1))
        waiting = rotator.step()
        assert (waiting.outcome, waiting.next.kid, waiting.ready_at) == (
            WAITING, created.next.kid, created.ready_at)
        assert _states() == {first.kid: "active", created.next.kid: "next"}

        clock.tick(timedelta(seconds=1))
        promoted = rotator.step()
        now = T0 + PUBLISH_DELAY
        assert promoted.outcome == PROMOTED
        assert (promoted.active.kid, promoted.retired.kid) == (created.next.kid, first.kid)
        assert _states() == {first.kid: "retired", created.next.kid: "active"}
        row = db.session.get(SigningKey, first.kid)
        assert (row.retired_at, row.publish_until) == (now, now + RETIRE_PUBLISH)
        assert db.session.get(SigningKey, created.next.kid).activated_at == now
        db.session.rollback()
        assert keyring.signing_key().kid == created.next.kid

        # the retired key verifies every token it signed until they have all expired
        clock.tick(RETIRE_PUBLISH - timedelta(seconds=1))
        assert _published(keyring) == {first.kid, created.next.kid}
        assert keyring.verification_key(first.kid) is not None
        clock.tick(timedelta(seconds=1))
        assert _published(keyring) == {created.next.kid}
        assert keyring.verification_key(first.kid) is None


def test_the_schedule_publishes_ahead_and_promotes_on_time(svc):
    keyring = Keyring(svc.keys, cache_seconds=0, auto_rotate=svc.rotator.auto)
    with freeze_time(T0) as clock:
        first = keyring.signing_key().kid  # the first read creates the key
        due = T0 + timedelta(days=90)

        clock.move_to(due - PUBLISH_DELAY - timedelta(seconds=1))
        assert _published(keyring) == {first}

        clock.move_to(due - PUBLISH_DELAY)
        published = _published(keyring)
        assert len(published) == 2 and keyring.signing_key().kid == first
        (upcoming,) = published - {first}

        clock.move_to(due - timedelta(seconds=1))
        assert keyring.signing_key().kid == first
        assert _states() == {first: "active", upcoming: "next"}

        clock.move_to(due)
        assert keyring.signing_key().kid == upcoming
        assert _states() == {first: "retired", upcoming: "active"}

        # the new key's own clock starts at its activation
        clock.move_to(due + timedelta(days=90) - PUBLISH_DELAY - timedelta(seconds=1))
        assert len(_published(keyring)) == 1


def test_no_schedule_without_rotation_days(svc):
    rotator = KeyRotator(svc.keys, RotationPolicy(PUBLISH_DELAY, RETIRE_PUBLISH, None))
    keyring = Keyring(svc.keys, cache_seconds=0, auto_rotate=rotator.auto)
    with freeze_time(T0) as clock:
        first = keyring.signing_key().kid
        clock.move_to(T0 + timedelta(days=3650))
        assert keyring.signing_key().kid == first
        assert _states() == {first: "active"}


def test_a_failing_schedule_never_stops_signing(svc):
    def broken(records):
        raise RuntimeError("database went away")

    keyring = Keyring(svc.keys, cache_seconds=0, auto_rotate=broken)
    assert keyring.signing_key().kid == svc.keys.ensure_active().kid


class _CountingReads:
    """The app's key repository, counting how often the published keys are read."""

    def __init__(self, repository):
        self._repository = repository
        self.reads = 0

    def list_published(self, now):
        self.reads += 1
        return self._repository.list_published(now)

    def __getattr__(self, name):
        return getattr(self._repository, name)


def test_one_operation_reads_the_published_keys_once(svc):
    repository = _CountingReads(svc.keys.repository)
    manager = KeyManager(repository, svc.keys.sealer, svc.keys.clock)
    keyring = Keyring(manager, cache_seconds=0)
    first = keyring.signing_key()  # no key yet: read, make one, sign with it
    assert repository.reads == 1
    assert _published(keyring) == {first.kid} and repository.reads == 2
    rotator = KeyRotator(manager, RotationPolicy(timedelta(0), RETIRE_PUBLISH, None))
    repository.reads = 0
    assert rotator.step().outcome == CREATED
    assert rotator.step().outcome == PROMOTED
    assert repository.reads == 2


def _counting_opens(manager):
    opened = []
    real_open = manager.open

    def open_(record):
        opened.append(record.kid)
        return real_open(record)

    manager.open = open_
    return opened


def test_the_private_key_is_opened_only_to_sign_and_once_per_process(svc):
    manager = KeyManager(svc.keys.repository, svc.keys.sealer, svc.keys.clock)
    opened = _counting_opens(manager)
    keyring = Keyring(manager, cache_seconds=0)  # every use reloads the published keys
    (kid,) = _published(keyring)
    assert keyring.verification_key(kid) is not None
    assert opened == []
    assert keyring.signing_key().kid == kid
    assert keyring.signing_key() is keyring.signing_key()
    assert opened == [kid]


def test_a_key_that_does_not_open_stops_signing_only(svc):
    active = svc.keys.ensure_active()
    manager = KeyManager(svc.keys.repository, Sealer(parse_kek(generate_kek())),
                         svc.keys.clock)
    opened = _counting_opens(manager)
    keyring = Keyring(manager, cache_seconds=0)
    assert _published(keyring) == {active.kid}
    assert keyring.verification_key(active.kid) is not None
    for _ in range(2):
        with pytest.raises(SigningKeyUnavailable):
            keyring.signing_key()
    assert opened == [active.kid]  # a key that does not open is not tried again


def test_promotion_is_compare_and_swap_and_rolls_back_half_done_work(svc):
    repository = svc.keys.repository
    active = svc.keys.ensure_active()
    upcoming = svc.keys.add_next()
    assert svc.keys.add_next() is None  # one next key at a time
    now = datetime.now(timezone.utc)

    # wrong active key: nothing happens
    assert not repository.promote(upcoming.kid, upcoming.kid, at=now, publish_until=now)
    # the active key would retire but the "next" key is not next: all rolled back
    assert not repository.promote(active.kid, active.kid, at=now, publish_until=now)
    assert _states() == {active.kid: "active", upcoming.kid: "next"}
    assert db.session.get(SigningKey, active.kid).retired_at is None
    db.session.rollback()

    assert repository.promote(upcoming.kid, active.kid, at=now, publish_until=now)
    assert not repository.promote(upcoming.kid, active.kid, at=now, publish_until=now)
    assert _states() == {active.kid: "retired", upcoming.kid: "active"}


def test_rotation_on_the_embedded_sqlite_database(embedded_app):
    with embedded_app.app_context(), freeze_time(T0) as clock:
        rotator = services().rotator
        first = services().keys.ensure_active()
        upcoming = rotator.step()
        assert upcoming.outcome == CREATED
        assert services().keys.add_next() is None
        clock.tick(timedelta(seconds=30) + timedelta(seconds=300))  # the default delay
        promoted = rotator.step()
        assert (promoted.outcome, promoted.retired.kid) == (PROMOTED, first.kid)
        assert sorted(_states().values()) == ["active", "retired"]


def _race(count, work):
    """Run ``work`` in ``count`` threads released together; their results."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def run(i):
        barrier.wait()
        results[i] = work()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


def test_racing_hosts_rotate_once_and_there_is_always_exactly_one_active_key(svc, keys_app):
    # every step due at once: no publish delay, a key is replaced as soon as it signs
    rotator = KeyRotator(svc.keys, RotationPolicy(timedelta(0), RETIRE_PUBLISH, timedelta(0)))
    svc.keys.ensure_active()
    seen_active_counts = []
    stop = threading.Event()

    def watch():
        with keys_app.app_context():
            while not stop.is_set():
                records = svc.keys.published()
                seen_active_counts.append(sum(r.state == "active" for r in records))

    def race(records):
        """Four hosts that read the same keys run the schedule at the same instant."""
        def host():
            with keys_app.app_context():
                return rotator.auto(records)
        return sorted(_race(4, host))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(6):
            assert race(svc.keys.published()) == [False, False, False, True]  # one next key
            assert race(svc.keys.published()) == [False, False, False, True]  # one promotion
    finally:
        stop.set()
        watcher.join()
    states = list(_states().values())
    # six rotations: seven keys, none of them made by a keyring that saw no active key
    assert (states.count("active"), states.count("retired"), len(states)) == (1, 6, 7)
    assert seen_active_counts and set(seen_active_counts) == {1}


def test_a_host_with_a_stale_view_changes_nothing(svc):
    svc.keys.ensure_active()
    stale = svc.keys.published()  # read before the step below made a next key
    assert svc.rotator.step().outcome == CREATED
    eager = KeyRotator(svc.keys, RotationPolicy(timedelta(0), RETIRE_PUBLISH, timedelta(0)))
    assert eager.auto(stale) is False
    assert sorted(_states().values()) == ["active", "next"]


def test_keyrings_on_two_hosts_due_at_the_same_instant_rotate_once(svc):
    keyrings = [Keyring(svc.keys, cache_seconds=0, auto_rotate=svc.rotator.auto)
                for _ in range(2)]
    with freeze_time(T0) as clock:
        first = svc.keys.ensure_active().kid
        clock.move_to(T0 + timedelta(days=90) - PUBLISH_DELAY)
        assert len({k.jwks().etag for k in keyrings}) == 1
        clock.move_to(T0 + timedelta(days=90))
        signing = {k.signing_key().kid for k in keyrings}
    assert len(signing) == 1 and signing != {first}
    assert sorted(_states().values()) == ["active", "retired"]


def test_cli_rotate_and_list(svc, keys_app):
    runner = keys_app.test_cli_runner()
    with freeze_time(T0) as clock:
        first = svc.keys.ensure_active().kid

        created = runner.invoke(args=["keys", "rotate"])
        assert created.exit_code == 0, created.output
        upcoming = KeyStates.of(svc.keys.published()).next.kid
        assert f"Created next key {upcoming}" in created.output
        assert "promoted from 2030-01-01T12:01:00Z (in 1m)" in created.output

        clock.tick(timedelta(seconds=30))
        waiting = runner.invoke(args=["keys", "rotate"])
        assert waiting.exit_code == 0
        assert "(in 30s). Nothing changed." in waiting.output

        listing = runner.invoke(args=["keys", "list"]).output
        assert listing.splitlines()[0].split() == ["KID", "STATE", "CREATED", "ACTIVATED",
                                                   "RETIRED", "PUBLISHED", "UNTIL"]
        assert f"{upcoming}  next" in listing and f"{first}  active" in listing
        assert "can be promoted from 2030-01-01T12:01:00Z (in 30s)" in listing

        clock.tick(timedelta(seconds=30))
        promoted = runner.invoke(args=["keys", "rotate"])
        assert promoted.exit_code == 0
        assert f"Promoted {upcoming} to active" in promoted.output
        assert f"Retired {first}: it stays in the JWKS until 2030-01-01T12:16:00Z" in promoted.output

        listing = runner.invoke(args=["keys", "list"]).output
        assert "2030-01-01T12:16:00Z" in listing and "(unpublished)" not in listing
        assert "Automatic rotation publishes the next key from 2030-04-01T12:00:00Z" in listing
        clock.tick(RETIRE_PUBLISH)
        listing = runner.invoke(args=["keys", "list"]).output
        assert "2030-01-01T12:16:00Z (unpublished)" in listing


def test_a_logout_hint_signed_by_a_retired_key_still_signs_the_user_out(redis_ns):
    """RP-Initiated Logout 1.0 §2: an ID token is the id_token_hint of the relying party's
    logout while the sign-in lasts (IDP_SESSION_TTL, 8 h), longer than an access token (here
    10 min): a rotation in between must not turn that logout into an error page."""
    from app.clients import register_client
    from app.users import create_user
    from tests.oidc import REDIRECT_URI, RelyingParty

    bye, schema, prefix = "http://127.0.0.1:9999/bye", PgSchema(), redis_ns.prefix + "rot"
    application = create_app(base_config(
        DATABASE_URL=schema.url, REDIS_URL=redis_ns.url, REDIS_KEY_PREFIX=prefix,
        KEY_CACHE_SECONDS=0, JWKS_MAX_AGE=60, ACCESS_TOKEN_TTL=600, KEY_ROTATION_DAYS=0))
    try:
        with application.app_context():
            upgrade()
            create_user(username="ada", email=None, password="correct horse battery")
            client_id = register_client({
                "client_name": "RP", "grant_types": ["authorization_code"],
                "token_endpoint_auth_method": "none", "redirect_uris": [REDIRECT_URI],
                "post_logout_redirect_uris": [bye]}).client.client_id
        rp = RelyingParty(application.test_client(), client_id)
        start = datetime.now(timezone.utc)
        with freeze_time(start):
            hint = rp.tokens_for({"username": "ada", "password": "correct horse battery"})[
                "id_token"]
        with application.app_context():
            with freeze_time(start + timedelta(seconds=5)):
                assert services().rotator.step().outcome == CREATED
            with freeze_time(start + timedelta(seconds=70)):
                assert services().rotator.step().outcome == PROMOTED
        with freeze_time(start + timedelta(hours=1)):  # the key's access tokens are long gone
            response = rp.http.get("/oauth/logout", query_string={
                "id_token_hint": hint, "post_logout_redirect_uri": bye, "state": "s",
                "client_id": client_id})
        assert (response.status_code, response.headers.get("Location")) == (302, f"{bye}?state=s")
    finally:
        with application.app_context():
            dispose_engines()
        schema.drop()
        for key in redis_ns.client.scan_iter(match=f"{prefix}:*", count=1000):
            redis_ns.client.delete(key)
