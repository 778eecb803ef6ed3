"""The per-process view of the signing keys.

Each worker reads the published keys from the database, opens the active private key
once, and renders the JWKS once; both are kept for ``cache_seconds`` before the next
read. Staleness is safe because rotation (see ``rotation.py``) publishes a key for longer
than this before it signs, and keeps a retired key published until its tokens expire.

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

log = logging.getLogger("infracast.keys")


@dataclass(frozen=True)
class _Snapshot:
    loaded_at: float
    signing: SigningKey
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
        if previous is not None and previous.signing.kid == active.kid:
            signing = previous.signing  # already opened: parse each private key once
        else:
            signing = self.manager.open(active)
        verification = {
            r.kid: (previous.verification[r.kid] if previous and r.kid in previous.verification
                    else RSAKey.import_key(r.public_jwk))
            for r in records
        }
        return _Snapshot(self._monotonic(), signing, verification, render_jwks(records))

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
        return self._current().signing

    def verification_key(self, kid: str) -> RSAKey | None:
        return self._current().verification.get(kid)

    def jwks(self) -> JwksDocument:
        return self._current().jwks

    def invalidate(self) -> None:
        """Forget the snapshot so the next use reads the database (after a local rotation)."""
        self._snapshot = None
