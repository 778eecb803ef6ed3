"""The verifier's revocation check on the identity provider's own Redis.

A resource server that can reach the IdP's Redis checks every access token against the
same revocation copy the IdP itself checks, exactly and at once: a logout, a revoked
refresh family or a disabled user is refused by the very next request. The key layout and
the decision are the IdP's own (``idp.revocation.RevocationCopy``), so the two can never
drift apart::

    from idp.verifier import Verifier
    from idp.verifier_redis import SharedRedisRevocationCheck

    verifier = Verifier("https://id.infracast.example", "infracast-api",
                        revocation=SharedRedisRevocationCheck("redis://redis.internal:6379/0",
                                                              key_prefix="idp"))

``redis_url`` and ``key_prefix`` must be the IdP's ``REDIS_URL`` and ``REDIS_KEY_PREFIX``.
The check only reads (one MGET per token, keys under ``<prefix>:rev:``) and fails closed:

- Redis cannot be read: ``VerifierUnavailable`` (503);
- the epoch marker is missing (Redis restarted empty), or the copy is older than one this
  process has seen (restarted from an older snapshot, failed over to a replica that
  lagged): it may lack revocations and only the IdP can rebuild it from its database,
  which it does the next time it checks a token itself or answers a readiness probe; until
  then ``VerifierUnavailable`` (503), never an accepted revoked token.

This module needs ``redis`` (not the IdP's app or database); ``idp.verifier`` alone does not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .errors import Unavailable
from .revocation import CopyIncomplete, CopyStale, RevocationCopy
from .store import Store
from .verifier import VerifierUnavailable

__all__ = ["SharedRedisRevocationCheck"]


class SharedRedisRevocationCheck:
    """A ``RevocationCheck`` reading the IdP's revocation copy in Redis. Thread-safe.

    :param redis_url: the IdP's ``REDIS_URL`` (``redis://``, ``rediss://`` or ``unix://``)
    :param key_prefix: the IdP's ``REDIS_KEY_PREFIX``
    """

    def __init__(self, redis_url: str, key_prefix: str = "idp"):
        if not redis_url.startswith(("redis://", "rediss://", "unix://")):
            # memory:// lives inside the IdP's process: another service cannot share it
            raise ValueError("the shared revocation check needs the IdP's redis://, rediss:// "
                             "or unix:// URL")
        self.copy = RevocationCopy(Store.from_url(redis_url, prefix=key_prefix))

    def __call__(self, claims: Mapping[str, Any]) -> bool:
        """True while the token is still good; raises ``VerifierUnavailable`` when unsure."""
        try:
            return not self.copy.is_revoked(claims)
        except CopyStale:
            raise VerifierUnavailable("the revocation copy in Redis is older than one seen "
                                      "(an older snapshot, a lagging replica?); waiting for "
                                      "the IdP to rebuild it") from None
        except CopyIncomplete:
            raise VerifierUnavailable("the revocation copy in Redis has no epoch marker "
                                      "(emptied?); waiting for the IdP to rebuild it") from None
        except Unavailable as error:
            raise VerifierUnavailable(f"the IdP's Redis cannot be read: "
                                      f"{type(error.__cause__).__name__}") from error

    def close(self) -> None:
        """Release the Redis connections."""
        self.copy.store.client.close()
