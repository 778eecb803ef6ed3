"""Signing keys: the record, the repository contract, and the manager.

A key moves through three states (hydra and dex use the same lifecycle):

    next     published in the JWKS, not yet used to sign (so caches learn it first)
    active   the one key that signs; at most one, enforced by a unique index
    retired  no longer signs; published until every token it signed has expired

The private half is sealed with the KEK (see ``sealing.py``) and parsed once per process.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from joserfc.jwk import RSAKey

from idp.rfc9068 import ALGORITHM  # the one algorithm our keys sign and verifiers accept

from .sealing import Sealer

RSA_BITS = 2048

NEXT, ACTIVE, RETIRED = "next", "active", "retired"


@dataclass(frozen=True)
class KeyRecord:
    kid: str
    state: str
    public_jwk: dict
    sealed_private: bytes
    created_at: datetime
    alg: str = ALGORITHM
    activated_at: datetime | None = None
    retired_at: datetime | None = None
    # a retired key leaves the JWKS after this instant
    publish_until: datetime | None = None


class KeyRepository(Protocol):
    """What the key manager needs from storage; the app implements it on the database."""

    def list_published(self, now: datetime) -> list[KeyRecord]:
        """Keys in state next or active, and retired keys whose publish_until is after now."""

    def list_all(self) -> list[KeyRecord]:
        """Every stored key, retired ones past publish_until included, oldest first."""

    def insert(self, record: KeyRecord) -> bool:
        """Store a new key; False when the state is taken (a second active key)."""

    def insert_next(self, record: KeyRecord) -> bool:
        """Store ``record`` (state next) unless a next key exists or no key is active.

        Serialised against every other writer (all hosts), so two racing hosts never
        leave two next keys behind.
        """

    def promote(self, next_kid: str, active_kid: str, *, at: datetime,
                publish_until: datetime) -> bool:
        """In one transaction: ``active_kid`` active → retired (``retired_at=at``,
        ``publish_until``) and ``next_kid`` next → active (``activated_at=at``).

        Compare-and-swap: both rows must still be in the expected state, else nothing
        changes and the answer is False (another host rotated first). No reader ever
        sees zero or two active keys.
        """


@dataclass
class SigningKey:
    """The active key, parsed: what the token issuer signs with."""

    kid: str
    key: RSAKey = field(repr=False)


def public_jwk(key: RSAKey, kid: str) -> dict:
    jwk = {name: value for name, value in key.as_dict(private=False).items() if name in ("kty", "n", "e")}
    return {**jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}


class KeyManager:
    """Generates, seals, opens and moves keys; storage stays behind the repository."""

    def __init__(self, repository: KeyRepository, sealer: Sealer, clock):
        self.repository = repository
        self.sealer = sealer
        self.clock = clock

    @staticmethod
    def _context(kid: str) -> str:
        return f"signing-key:{kid}"

    def generate(self, state: str) -> KeyRecord:
        key = RSAKey.generate_key(RSA_BITS, private=True)
        kid = key.thumbprint()  # RFC 7638
        now = self.clock()
        return KeyRecord(
            kid=kid,
            state=state,
            public_jwk=public_jwk(key, kid),
            sealed_private=self.sealer.seal(key.as_pem(private=True), self._context(kid)),
            created_at=now,
            activated_at=now if state == ACTIVE else None,
        )

    def open(self, record: KeyRecord) -> SigningKey:
        pem = self.sealer.open(record.sealed_private, self._context(record.kid))
        return SigningKey(kid=record.kid, key=RSAKey.import_key(pem))

    def published(self) -> list[KeyRecord]:
        return self.repository.list_published(self.clock())

    def all_keys(self) -> list[KeyRecord]:
        """Every stored key, retired ones past their publication included."""
        return self.repository.list_all()

    def ensure_active(self, records: list[KeyRecord] | None = None) -> KeyRecord:
        """The active key, made now if there is none; ``records`` are the published keys
        if the caller has just read them (else they are read here).

        Two workers starting on an empty database both try to insert; the unique index on
        the active state lets exactly one win and the other reads the winner's key.
        """
        active = KeyStates.of(self.published() if records is None else records).active
        if active is not None:
            return active
        candidate = self.generate(ACTIVE)
        if self.repository.insert(candidate):
            return candidate
        active = KeyStates.of(self.published()).active
        if active is None:
            raise RuntimeError("no active signing key after a lost insert race")
        return active

    def add_next(self) -> KeyRecord | None:
        """A new next key, or None when one already exists (another host made it first)."""
        record = self.generate(NEXT)
        return record if self.repository.insert_next(record) else None


@dataclass(frozen=True)
class KeyStates:
    """Keys by role: the one active key, the next key if any, the retired ones. The one
    way to find them in a list of records, whoever read it."""

    active: KeyRecord | None
    next: KeyRecord | None
    retired: tuple[KeyRecord, ...] = ()

    @classmethod
    def of(cls, records: list[KeyRecord]) -> KeyStates:
        by_age = sorted(records, key=lambda r: (r.created_at, r.kid))
        return cls(
            active=next((r for r in by_age if r.state == ACTIVE), None),
            next=next((r for r in by_age if r.state == NEXT), None),
            retired=tuple(r for r in by_age if r.state == RETIRED),
        )
