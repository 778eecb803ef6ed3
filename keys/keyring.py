"""The per-process view of the signing keys.

Each worker reads the published keys from the database and renders the JWKS once; both
are kept for ``cache_seconds`` before the next read. Staleness is safe because rotation
(see ``rotation.py``) publishes a key for longer than this before it signs, and keeps a
retired key published until its tokens expire.

The active private key is opened only to sign, once per process and key: the JWKS and
token checks need public keys alone, so a KEK that does not open the active key (a
rotated or mistyped ``IDP_SECRET_KEY``) costs signing only, which answers 503
(``SigningKeyUnavailable``) with one log line naming the cause.

Each reload also hands the keys it read to ``auto_rotate`` (the rotation schedule): the
check costs nothing unless a step is due, needs no thread of its own, and runs wherever
the service runs (every gunicorn worker on every host), the database deciding who wins.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Callable

from joserfc.jwk import RSAKey

from .jwks import JwksDocument, render_jwks
from .manager import KeyManager, KeyRecord, KeyStates, SigningKey
from .sealing import SealingError

log = logging.getLogger("infracast.keys")


class SigningKeyUnavailable(Exception):
    """The active private key does not open under this process's KEK: nothing can be
    signed until the KEK that sealed it is configured; the cause is in the log (the app
    answers 503, ``app/errors.py``)."""


@dataclass(frozen=True)
class _Snapshot:
    loaded_at: float
    active: KeyRecord
    verification: dict[str, RSAKey]
    jwks: JwksDocument


class Keyring:
    def __init__(self, manager: KeyManager, cache_seconds: float, monotonic=time.monotonic,
                 auto_rotate: Callable[[list[KeyRecord]], bool] | None = None):
        self.manager = manager
        self.cache_seconds = cache_seconds
        self.auto_rotate = auto_rotate
        self._monotonic = monotonic
        self._snapshot: _Snapshot | None = None
        self._lock = threading.Lock()
        # the active key opened, or the kid of one that does not open under our KEK (a
        # sealed key never changes, nor does the KEK while the process runs: no retry)
        self._signing: SigningKey | None = None
        self._unopenable: str | None = None

    def _current(self) -> _Snapshot:
        snapshot = self._snapshot
        if snapshot is None or self._monotonic() - snapshot.loaded_at >= self.cache_seconds:
            with self._lock:
                snapshot = self._snapshot
                if snapshot is None or self._monotonic() - snapshot.loaded_at >= self.cache_seconds:
                    snapshot = self._load(snapshot)
                    self._snapshot = snapshot
        return snapshot

    def _load(self, previous: _Snapshot | None) -> _Snapshot:
        records = self.manager.published()
        if self._rotate(records):
            records = self.manager.published()
        active = KeyStates.of(records).active
        if active is None:
            active = self.manager.ensure_active(records)
            # the one key added since the read: ours, or the winner's of a race to make it
            records = [*records, active]
        verification = {
            r.kid: (previous.verification[r.kid] if previous and r.kid in previous.verification
                    else RSAKey.import_key(r.public_jwk))
            for r in records
        }
        return _Snapshot(self._monotonic(), active, verification, render_jwks(records))

    def _open(self, active: KeyRecord) -> SigningKey:
        """The active key, parsed once per process and key (called under ``_lock``)."""
        if self._signing is not None and self._signing.kid == active.kid:
            return self._signing
        if self._unopenable != active.kid:
            try:
                self._signing = self.manager.open(active)
                return self._signing
            except SealingError:
                self._unopenable = active.kid
                log.error("the active signing key does not open with the key-encryption key "
                          "(IDP_SECRET_KEY): nothing can be signed", extra={"fields": {
                              "kid": active.kid, "cause": "IDP_SECRET_KEY rotated or mistyped"}})
        raise SigningKeyUnavailable()

    def _rotate(self, records: list[KeyRecord]) -> bool:
        """Run the schedule; a failure is logged and never stops this worker signing."""
        if self.auto_rotate is None:
            return False
        try:
            return self.auto_rotate(records)
        except Exception as error:  # noqa: BLE001 - the keys in hand still sign
            log.error("scheduled key rotation failed",
                      extra={"fields": {"exception": type(error).__name__}})
            return False

    def signing_key(self) -> SigningKey:
        """The active key, to sign with; ``SigningKeyUnavailable`` when it does not open."""
        active = self._current().active
        signing = self._signing
        if signing is not None and signing.kid == active.kid:
            return signing
        with self._lock:
            return self._open(active)

    def verification_key(self, kid: str) -> RSAKey | None:
        return self._current().verification.get(kid)

    def jwks(self) -> JwksDocument:
        return self._current().jwks

    def invalidate(self) -> None:
        """Forget the snapshot so the next use reads the database (after a local rotation)."""
        self._snapshot = None
