"""argon2id password hashing, with a dummy verification for unknown users.

An unknown user name costs one argon2 verification, as a known one does, so response
time does not tell whether an account exists.

argon2 is memory-hard: each verification walks ``memory_kib`` of RAM. Run many at once in
one process (a threaded worker) and they fight over the CPU caches and memory bandwidth,
each taking far longer than alone. A per-process gate lets ``concurrency`` run at a time
(default one; with one worker process per core that is one per core) and queues the rest.
"""

from __future__ import annotations

import threading

import argon2
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class PasswordHasher:
    def __init__(self, time_cost: int = 2, memory_kib: int = 19456, parallelism: int = 1,
                 concurrency: int = 1):
        self._hasher = argon2.PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism,
            type=argon2.Type.ID,
        )
        self._dummy_hash: str | None = None
        self._gate = threading.BoundedSemaphore(concurrency)

    def hash(self, password: str) -> str:
        with self._gate:
            return self._hasher.hash(password)

    def verify(self, password_hash: str | None, password: str) -> bool:
        if not password_hash:
            return self.verify_dummy(password)
        try:
            with self._gate:
                return self._hasher.verify(password_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def verify_dummy(self, password: str) -> bool:
        """Spend what a real verification spends, and fail."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hash("not a password: timing equaliser")
        try:
            with self._gate:
                self._hasher.verify(self._dummy_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            pass
        return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)
