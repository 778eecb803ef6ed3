"""The verifier's RFC 7662 client: the identity provider's ``/oauth/introspect``.

An ``ic_live_`` API key is opaque: only the IdP knows whether it is live, what its creator
still holds and which addresses may use it. ``IntrospectionClient`` asks, as a confidential
client registered with ``"resource_server": true``::

    from idp.verifier import Verifier
    from idp.verifier_introspection import IntrospectionClient

    introspection = IntrospectionClient("https://id.infracast.example",
                                        client_id="nodes-api", client_secret="...")
    verifier = Verifier("https://id.infracast.example", "infracast-api",
                        introspection=introspection)
    verifier.verify("ic_live_...", client_ip="203.0.113.7")

- The endpoint is the discovery document's ``introspection_endpoint`` (the issuer checked,
  cached for its ``Cache-Control: max-age``); the client authenticates with
  ``client_secret_basic`` (RFC 6749 §2.3.1) and passes the caller's address as the
  ``client_ip`` form parameter, which the IdP checks against the key's ``allowed_ips``.
- **Positive answers are cached** for ``cache_seconds`` (default 5), per token *and* caller
  address, never past the answer's ``exp``. This is staleness, said plainly: a key revoked
  at the IdP (or whose creator was disabled or demoted) may still be accepted for up to
  ``cache_seconds`` by a process that asked about it just before. It is what makes a key
  used in a loop cost one IdP request per ``cache_seconds`` rather than one per call; keep
  it small (``0`` turns the cache off, more than ``MAX_CACHE_SECONDS`` is refused).
- Negative answers are never cached: a key that becomes valid (a rotation's new secret) is
  valid at once, and a caller outside the allowlist can never ride on another's answer.
- The IdP unreachable, slow past ``timeout``, refusing our credentials or answering
  anything but an RFC 7662 object: ``VerifierUnavailable`` (503). Never accept.

With ``Verifier(..., introspect_access_tokens=True)`` the same client also asks about every
access token (after the local signature and claim checks): revocation through the IdP for
services that cannot reach its Redis, with the same ``cache_seconds`` of staleness.

This module needs ``requests`` only, like ``idp.verifier``.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import requests

from .rfc9068 import is_number
from .verifier import VerifierUnavailable, _discover, _Document, _FetchError

__all__ = ["IntrospectionClient", "DEFAULT_CACHE_SECONDS", "MAX_CACHE_SECONDS"]

log = logging.getLogger("infracast.verifier")

DEFAULT_CACHE_SECONDS = 5.0
# a revoked key accepted for longer than this is not a cache any more, it is an outage of revocation
MAX_CACHE_SECONDS = 300.0
ENDPOINT = "introspection_endpoint"


@dataclass(frozen=True)
class _Cached:
    answer: Mapping[str, Any]
    until: float


def client_secret_basic(client_id: str, client_secret: str) -> str:
    """The ``Authorization`` header of RFC 6749 §2.3.1: id and secret each encoded by
    Appendix B first (percent-encoded, so ``:``, ``%`` or a space survive the split, and as
    Authlib, the IdP's side, decodes them), then HTTP Basic. The one implementation: the
    tests and the bench use it too. Our ids and secrets are URL-safe already, so for them
    this is plain Basic of ``id:secret``."""
    raw = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
    return "Basic " + base64.b64encode(raw.encode()).decode("ascii")


class IntrospectionClient:
    """An ``idp.verifier.Introspector`` asking the IdP's RFC 7662 endpoint. Thread-safe.

    :param issuer: the IdP's issuer URL (its discovery names the endpoint)
    :param client_id: a confidential client registered with ``"resource_server": true``
    :param client_secret: its secret
    :param cache_seconds: how long an active answer is reused (never past its ``exp``)
    :param max_cached: answers kept at most; the oldest go first
    :param timeout: seconds for each HTTP request to the IdP
    :param retry_interval: least seconds between discovery fetches after a failed one
    :param session: a ``requests.Session`` to use; one of its own otherwise
    """

    def __init__(self, issuer: str, client_id: str, client_secret: str, *,
                 cache_seconds: float = DEFAULT_CACHE_SECONDS, max_cached: int = 10_000,
                 timeout: float = 5.0, retry_interval: float = 5.0,
                 session: requests.Session | None = None):
        if not client_id or not client_secret:
            raise ValueError("introspection needs a client_id and a client_secret")
        if not 0 <= cache_seconds <= MAX_CACHE_SECONDS:
            raise ValueError(f"cache_seconds must be 0 to {MAX_CACHE_SECONDS:g}")
        self.issuer = issuer
        self.client_id = client_id
        self.cache_seconds = cache_seconds
        self.max_cached = max_cached
        self.timeout = timeout
        self.retry_interval = retry_interval
        self._authorization = client_secret_basic(client_id, client_secret)
        self._session = session or requests.Session()
        self._lock = threading.Lock()  # the cache
        # oldest first: answers arrive in roughly the order they expire
        self._cache: OrderedDict[bytes, _Cached] = OrderedDict()
        # its own lock: a slow discovery fetch must not hold up answers from the cache
        self._discovery_lock = threading.Lock()
        self._discovery: _Document | None = None
        self._retry_at = 0.0

    def __call__(self, token: str, client_ip: str | None = None) -> Mapping[str, Any]:
        """The IdP's answer for ``token`` asked on behalf of ``client_ip`` (cached if active)."""
        now = time.time()
        # the answer depends on the caller's address (allowed_ips): it is part of the key;
        # the token itself is kept only as a digest
        cache_key = hashlib.sha256(f"{client_ip or ''}\0{token}".encode()).digest()
        with self._lock:
            cached = self._cache.get(cache_key)
            if cached is not None and now < cached.until:
                return cached.answer
        answer = MappingProxyType(self._ask(token, client_ip, now))
        if answer["active"] is True:
            self._remember(cache_key, answer, now)
        return answer

    @property
    def endpoint(self) -> str:
        """The ``introspection_endpoint`` of the issuer's discovery document."""
        return self._endpoint(time.time())

    # -- asking -------------------------------------------------------------------------

    def _ask(self, token: str, client_ip: str | None, now: float) -> dict[str, Any]:
        form = {"token": token}
        if client_ip:
            form["client_ip"] = client_ip
        try:
            response = self._session.post(
                self._endpoint(now), data=form, timeout=self.timeout, allow_redirects=False,
                headers={"Authorization": self._authorization, "Accept": "application/json"})
        except requests.RequestException as error:
            raise VerifierUnavailable(f"introspection: {type(error).__name__}") from None
        if response.status_code != 200:
            if response.status_code in (400, 401, 403):
                log.error("the IdP refuses our introspection client %r (HTTP %s): check its "
                          "secret and that it is registered as a resource server",
                          self.client_id, response.status_code)
            raise VerifierUnavailable(f"introspection: HTTP {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            raise VerifierUnavailable("introspection: not JSON") from None
        if not isinstance(answer, dict) or not isinstance(answer.get("active"), bool):
            raise VerifierUnavailable("introspection: not an RFC 7662 answer")
        return answer

    def _remember(self, cache_key: bytes, answer: Mapping[str, Any], now: float) -> None:
        until = now + self.cache_seconds
        expires_at = answer.get("exp")
        if is_number(expires_at):
            until = min(until, float(expires_at))
        if until <= now:
            return
        with self._lock:
            cache = self._cache
            cache.pop(cache_key, None)
            # from the front: the expired, and the oldest while full; each entry is dropped
            # once, so an insert costs O(1) however full the cache is (an expired entry
            # behind a live one waits its turn; lookups never return it)
            while cache:
                oldest = next(iter(cache.values()))
                if len(cache) < self.max_cached and now < oldest.until:
                    break
                cache.popitem(last=False)
            cache[cache_key] = _Cached(answer, until)

    # -- discovery ----------------------------------------------------------------------

    def _endpoint(self, now: float) -> str:
        document = self._discovery
        if document is not None and now < document.fresh_until:
            return document.body[ENDPOINT]
        if document is not None:
            # stale: one thread refetches, the others go on with the known endpoint
            if not self._discovery_lock.acquire(blocking=False):
                return document.body[ENDPOINT]
        else:
            self._discovery_lock.acquire()
        try:
            document = self._discovery
            if (document is None or now >= document.fresh_until) and now >= self._retry_at:
                try:
                    document = self._discovery = _discover(
                        self._session, self.issuer, ENDPOINT, self.timeout, document, now)
                except _FetchError as error:
                    # a known endpoint serves on while discovery cannot be refetched
                    self._retry_at = now + self.retry_interval
                    log.warning("could not fetch the discovery of %s: %s", self.issuer, error)
        finally:
            self._discovery_lock.release()
        if document is None:
            raise VerifierUnavailable("the introspection endpoint cannot be discovered")
        return document.body[ENDPOINT]
