"""Signing-key rotation: next → active → retired, with compare-and-swap in the database.

One rotation, in time (dex and hydra rotate the same way; dexidp/dex#976 is why the
database, not a process, decides who rotates):

``created``
    A next key is stored and published in the JWKS. Nothing signs with it yet.
``created + publish_delay``
    The next key may become active. ``publish_delay = JWKS_MAX_AGE + KEY_CACHE_SECONDS``:
    a worker serves a JWKS read from the database up to ``KEY_CACHE_SECONDS`` ago, and a
    verifier may keep that JWKS for ``max-age``; so from then on every cache that is still
    fresh already holds the new key.
``promotion``
    One transaction moves the active key to retired and the next key to active, each
    ``UPDATE … WHERE kid = ? AND state = ?`` and both must hit one row, else it rolls back:
    of two hosts promoting at once exactly one wins, and no reader ever sees zero active
    keys (which would make a keyring create one).
``promotion + retire_publish``
    The retired key leaves the JWKS. ``retire_publish = KEY_CACHE_SECONDS +
    max(ACCESS_TOKEN_TTL, IDP_SESSION_TTL) + PUBLISH_LEEWAY``: workers go on signing with
    the old key until their keyring reloads, each of those access tokens lives
    ``ACCESS_TOKEN_TTL``, and verifiers allow some clock skew; and an ID token it signed is
    the ``id_token_hint`` of a relying party's logout for as long as the sign-in it came from
    may last (RP-Initiated Logout 1.0 §2: expired ID tokens are still hints).

``KeyRotator.step`` is one manual step (``flask --app wsgi keys rotate``);
``KeyRotator.auto`` is the schedule, run by every worker's keyring when it reloads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from .manager import ACTIVE, RETIRED, KeyManager, KeyRecord, KeyStates

log = logging.getLogger("infracast.keys")

# clock skew between hosts, plus the exp leeway a verifier allows
PUBLISH_LEEWAY = timedelta(minutes=5)

# what a step did
CREATED = "created"      # a next key was made; promote it at ready_at
WAITING = "waiting"      # a next key exists but is not yet in every cache
PROMOTED = "promoted"    # the next key signs now; the old one is retired
LOST_RACE = "lost-race"  # another host changed the keys at the same moment; nothing done here


@dataclass(frozen=True)
class RotationPolicy:
    publish_delay: timedelta
    retire_publish: timedelta
    # how long a key signs before the schedule replaces it; None: no automatic rotation
    rotate_every: timedelta | None

    @classmethod
    def from_settings(cls, *, jwks_max_age: int, key_cache_seconds: float,
                      access_token_ttl: int, session_ttl: int,
                      rotation_days: int) -> RotationPolicy:
        cache = timedelta(seconds=key_cache_seconds)
        return cls(
            publish_delay=timedelta(seconds=jwks_max_age) + cache,
            retire_publish=cache + timedelta(seconds=max(access_token_ttl, session_ttl))
            + PUBLISH_LEEWAY,
            rotate_every=timedelta(days=rotation_days) if rotation_days > 0 else None,
        )


@dataclass(frozen=True)
class RotationStep:
    """What one step did, and the keys as it left them."""

    outcome: str
    active: KeyRecord | None
    next: KeyRecord | None
    # the key this step retired (PROMOTED only)
    retired: KeyRecord | None = None
    # when the next key may be promoted (CREATED, WAITING)
    ready_at: datetime | None = None


class KeyRotator:
    def __init__(self, manager: KeyManager, policy: RotationPolicy):
        self.manager = manager
        self.policy = policy

    def ready_at(self, next_key: KeyRecord) -> datetime:
        """The first instant ``next_key`` may sign: every fresh cache holds it by then."""
        return next_key.created_at + self.policy.publish_delay

    def due_at(self, active: KeyRecord) -> datetime | None:
        """When the schedule replaces ``active``; None without automatic rotation."""
        if self.policy.rotate_every is None:
            return None
        return (active.activated_at or active.created_at) + self.policy.rotate_every

    def states(self) -> KeyStates:
        return KeyStates.of(self.manager.published())

    def step(self) -> RotationStep:
        """One manual step: make a next key if there is none, else promote it once ready."""
        records = self.manager.published()
        keys = KeyStates.of(records)
        if keys.active is None:  # then there is no next key either: make the first key
            keys = replace(keys, active=self.manager.ensure_active(records))
        if keys.next is None:
            return self._add_next(keys)
        now = self.manager.clock()
        if now < self.ready_at(keys.next):
            return RotationStep(WAITING, keys.active, keys.next, ready_at=self.ready_at(keys.next))
        return self._promote(keys, now)

    def auto(self, records: list[KeyRecord]) -> bool:
        """The schedule, given the keys just read; True when it changed them.

        Cheap unless something is due: the next key is made ``publish_delay`` before the
        active key's time is up, so it is ready when the time comes, and promoted then.
        Every worker on every host runs this; the database's compare-and-swap lets one
        win each step and the others see its result on their next read.
        """
        keys = KeyStates.of(records)
        if keys.active is None or self.policy.rotate_every is None:
            return False
        now = self.manager.clock()
        due = self.due_at(keys.active)
        if keys.next is None:
            return now >= due - self.policy.publish_delay and self._add_next(keys).outcome == CREATED
        if now >= due and now >= self.ready_at(keys.next):
            return self._promote(keys, now).outcome == PROMOTED
        return False

    def _add_next(self, keys: KeyStates) -> RotationStep:
        created = self.manager.add_next()
        if created is None:
            now_keys = self.states()
            return RotationStep(LOST_RACE, now_keys.active, now_keys.next)
        log.info("next signing key created", extra={"fields": {
            "kid": created.kid, "ready_at": self.ready_at(created).isoformat()}})
        return RotationStep(CREATED, keys.active, created, ready_at=self.ready_at(created))

    def _promote(self, keys: KeyStates, now: datetime) -> RotationStep:
        publish_until = now + self.policy.retire_publish
        if not self.manager.repository.promote(keys.next.kid, keys.active.kid, at=now,
                                               publish_until=publish_until):
            now_keys = self.states()
            return RotationStep(LOST_RACE, now_keys.active, now_keys.next)
        log.info("signing key promoted", extra={"fields": {
            "kid": keys.next.kid, "retired_kid": keys.active.kid,
            "publish_until": publish_until.isoformat()}})
        return RotationStep(
            PROMOTED,
            active=replace(keys.next, state=ACTIVE, activated_at=now),
            next=None,
            retired=replace(keys.active, state=RETIRED, retired_at=now, publish_until=publish_until),
        )
