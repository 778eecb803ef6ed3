"""The one store for short-lived state: Redis, or the embedded in-process Redis.

Everything that lives for seconds to days goes through here: refresh-token families,
revocations, brute-force counters, and later authorization codes, SSO state and replay
caches. Keys look like ``<prefix>:<kind>:{<tag>}:<rest>``; the ``{tag}`` is a Redis
Cluster hash tag, and every multi-key script only touches keys with one tag, so each
script runs on one slot.

``memory://`` is fakeredis with Lua (lupa) inside the process: the same commands and the
same scripts as real Redis, so the same contract tests run against both. It holds state
for one process only, which is why it is refused with more than one worker, or on a
database other than SQLite, which several processes or hosts may share (``app/config.py``).

Every Redis failure surfaces as ``Unavailable``: callers fail closed.
"""

from __future__ import annotations

import fcntl
import functools
import json
import logging
import os
import threading
from typing import Any, Callable, NoReturn

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from .errors import Unavailable

log = logging.getLogger("infracast.store")

# short timeouts: a request waiting on a dead Redis should fail fast with a 503
_SOCKET_TIMEOUT = 2.0


def connect(url: str) -> redis.Redis:
    if url.startswith("memory://"):
        import fakeredis

        return fakeredis.FakeRedis(server=fakeredis.FakeServer())
    # One immediate retry on a dropped connection (a Redis restart leaves dead sockets in
    # the pool); more would only delay the 503. A retried rotation whose first attempt did
    # run falls in the reuse grace window (with the grace off, it revokes: fail closed).
    return redis.Redis.from_url(
        url,
        socket_timeout=_SOCKET_TIMEOUT,
        socket_connect_timeout=_SOCKET_TIMEOUT,
        health_check_interval=15,
        retry=Retry(NoBackoff(), 1),
        retry_on_error=[redis.ConnectionError],
    )


def fail_closed(method):
    """Turn any Redis error into ``Unavailable`` (503) so no caller ever proceeds on one."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except redis.RedisError as error:
            raise Unavailable() from error

    return wrapper


# lock files this process holds for its embedded stores: path -> open descriptor
_EMBEDDED_LOCKS: dict[str, int] = {}
_EMBEDDED_LOCKS_GUARD = threading.Lock()


def claim_embedded_store(lock_path: str) -> None:
    """Make sure no other process serves an embedded store on this database.

    ``memory://`` keeps refresh families, revocations and counters inside one process; a
    second process (a second gunicorn or granian worker, or a second instance folder on the
    same SQLite file) would keep a second, disjoint copy and accept what the first revoked.
    The first process to use the store takes an exclusive lock on ``lock_path``, a file next
    to the database (``<database file>.store.lock``); any other process is refused.
    """
    with _EMBEDDED_LOCKS_GUARD:
        if lock_path in _EMBEDDED_LOCKS:
            return
        fd = os.open(lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            refuse_embedded_store(
                "REDIS_URL=memory:// is already served by another process on this database "
                f"({lock_path} is locked); memory:// is for one process only (make run): set "
                "REDIS_URL to a Redis to run several workers")
        _EMBEDDED_LOCKS[lock_path] = fd


def refuse_embedded_store(reason: str) -> NoReturn:
    """Log why the embedded store cannot serve this process, and fail closed (503)."""
    log.error(reason)
    raise Unavailable("The embedded store serves one process only") from None


class Store:
    """Namespaced, fail-closed access to Redis for the services in ``idp``."""

    def __init__(self, client: redis.Redis | None, prefix: str = "idp", embedded: bool = False,
                 claim: Callable[[], None] | None = None):
        self._client = client
        self.prefix = prefix
        self.embedded = embedded
        self._claim = claim  # the embedded store's check before its first use: raises to refuse
        self._connecting = threading.Lock()
        self._scripts: dict[str, Any] = {}

    @classmethod
    def from_url(cls, url: str, prefix: str = "idp",
                 claim: Callable[[], None] | None = None) -> "Store":
        if url.startswith("memory://"):
            # made at first use: a CLI command that never touches the store never claims it
            return cls(None, prefix=prefix, embedded=True, claim=claim)
        return cls(connect(url), prefix=prefix)

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            with self._connecting:
                if self._client is None:
                    if self._claim is not None:
                        self._claim()
                    self._client = connect("memory://")
        return self._client

    def key(self, kind: str, tag: str, *rest: str) -> str:
        """``<prefix>:<kind>:{<tag>}[:<rest>...]``; keys sharing a tag share a cluster slot."""
        return ":".join([self.prefix, kind, "{" + tag + "}", *rest])

    def script(self, source: str):
        """A registered Lua script (EVALSHA, reloaded by redis-py after a Redis restart)."""
        script = self._scripts.get(source)
        if script is None:
            script = self._scripts[source] = self.client.register_script(source)
        return script

    @fail_closed
    def run(self, source: str, keys: list[str], args: list[Any]):
        return self.script(source)(keys=keys, args=args)

    @fail_closed
    def ping(self) -> bool:
        return bool(self.client.ping())

    @fail_closed
    def put(self, key: str, value: dict, ttl: int) -> None:
        self.client.set(key, json.dumps(value, separators=(",", ":")), ex=max(1, int(ttl)))

    @fail_closed
    def add(self, key: str, value: dict, ttl: int) -> bool:
        """Store only if absent (a replay cache): False when the key was already there."""
        return bool(self.client.set(key, json.dumps(value, separators=(",", ":")),
                                    ex=max(1, int(ttl)), nx=True))

    @fail_closed
    def mget(self, keys: list[str]) -> list:
        """Raw values of several keys (one round trip); callers keep them in one slot."""
        return self.client.mget(keys)

    @fail_closed
    def set(self, key: str, value: str) -> None:
        self.client.set(key, value)

    @fail_closed
    def set_if_absent(self, key: str, value: str, ttl: int) -> bool:
        return bool(self.client.set(key, value, ex=ttl, nx=True))

    @fail_closed
    def exists(self, key: str) -> bool:
        return bool(self.client.exists(key))

    @fail_closed
    def get(self, key: str) -> dict | None:
        raw = self.client.get(key)
        return None if raw is None else json.loads(raw)

    @fail_closed
    def consume(self, key: str) -> dict | None:
        """Read and delete in one atomic step: single-use state (codes, SSO state)."""
        raw = self.client.getdel(key)
        return None if raw is None else json.loads(raw)

    @fail_closed
    def delete(self, *keys: str) -> int:
        return int(self.client.delete(*keys)) if keys else 0
