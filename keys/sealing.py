"""The key-encryption key (KEK): sealing secrets at rest and deriving purpose keys.

Private signing keys and upstream client secrets are sealed with AES-256-GCM under the
KEK, with associated data naming what the ciphertext is, so a sealed value moved to
another row or column fails to open. Purpose keys (keyed hashes of client secrets, API keys
and refresh tokens) are derived from the KEK with HKDF so that no key serves two jobs.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

KEK_BYTES = 32
_NONCE_BYTES = 12
_VERSION = b"\x01"


class SealingError(Exception):
    """A sealed value could not be opened: wrong key, tampering, or wrong context."""


def generate_kek() -> str:
    """A new KEK in its configuration form (URL-safe base64 of 32 random bytes)."""
    return base64.urlsafe_b64encode(os.urandom(KEK_BYTES)).decode("ascii")


def parse_kek(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("the secret key is not URL-safe base64") from None
    if len(raw) != KEK_BYTES:
        raise ValueError(f"the secret key must be {KEK_BYTES} bytes, got {len(raw)}")
    return raw


class Sealer:
    """AES-256-GCM under the KEK. ``context`` is bound as associated data."""

    def __init__(self, kek: bytes):
        if len(kek) != KEK_BYTES:
            raise ValueError("KEK must be 32 bytes")
        self._kek = kek
        self._aead = AESGCM(kek)

    def seal(self, plaintext: bytes, context: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return _VERSION + nonce + self._aead.encrypt(nonce, plaintext, context.encode())

    def open(self, sealed: bytes, context: str) -> bytes:
        if len(sealed) < 1 + _NONCE_BYTES + 16 or sealed[:1] != _VERSION:
            raise SealingError("not a sealed value")
        nonce, body = sealed[1:1 + _NONCE_BYTES], sealed[1 + _NONCE_BYTES:]
        try:
            return self._aead.decrypt(nonce, body, context.encode())
        except InvalidTag:
            raise SealingError("sealed value does not open under this key") from None

    def derive(self, purpose: str, length: int = 32) -> bytes:
        """A key for one purpose, independent of the KEK and of every other purpose."""
        return HKDF(
            algorithm=hashes.SHA256(), length=length, salt=None,
            info=b"infracast-identity/" + purpose.encode(),
        ).derive(self._kek)
