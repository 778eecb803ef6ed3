"""Fast keyed hashing of high-entropy secrets (client secrets, API keys, refresh tokens).

These secrets carry 256 random bits, so a slow password hash buys nothing and would cap
the token endpoint at tens of requests per second. HMAC-SHA256 under a key derived from
the KEK means a stolen table alone cannot even confirm a guessed secret.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

SECRET_BYTES = 32  # 256 bits


def new_secret() -> str:
    return secrets.token_urlsafe(SECRET_BYTES)


class SecretHasher:
    def __init__(self, key: bytes):
        self._key = key

    def digest(self, secret: str) -> str:
        return hmac.new(self._key, secret.encode(), hashlib.sha256).hexdigest()

    def matches(self, secret: str, expected_digest: str | None) -> bool:
        if not expected_digest:
            return False
        return hmac.compare_digest(self.digest(secret), expected_digest)
