"""Access-token revocation: exact, fail-closed, and one Redis round trip per check.

Five kinds of revocation, each with a durable record in the database and a fast copy in
Redis (all under the one ``{rev}`` hash tag, so a check is a single MGET on one slot):

    jti   one access token, until it would have expired
    sid   a refresh family and every access token issued from it
    user  a watermark: every token of the user issued at or before it (disabled, deleted,
          password changed); ``uat`` moves it for access tokens only (roles changed)
    cli   a watermark: every access token issued to the client at or before it (the client
          was deleted; its refresh tokens die with it, as it can no longer authenticate)
    grt   a watermark on one user's grant to one client (the user withdrew the client's
          consent): every access token the client holds for the user issued at or before
          it; its refresh families and codes begun before it are refused where they are
          redeemed (the durable record, read with the account)

Redis may come back empty (no persistence). An *epoch* key marks a Redis that holds the full
copy; when it is missing, the copy is rebuilt from the database before any token is
accepted again, and every check fails closed meanwhile. Redis may also come back *stale*
(an older snapshot, a replica that lagged): epoch present, newest revocations missing. Every
revocation copied raises a *high-water mark*, read with the epoch by every check; a process
that sees the (epoch, mark) pair go back below one it has seen treats the copy as stale
(``CopyStale``), and ``ensure_copy`` (readiness probes) compares the mark with the
database's newest revocation, for processes that have seen nothing newer.

``RevocationCopy`` is the one definition of the Redis copy: its keys and what it says of a
token. The IdP's ``RevocationList`` writes, checks and rebuilds it; a downstream verifier
reads the same keys through ``idp.verifier_redis`` and, having no database, fails closed
until the IdP has rebuilt it.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Protocol

from .clock import now
from .errors import Unavailable
from .rfc9068 import LEEWAY_SECONDS
from .store import Store

log = logging.getLogger("infracast.revocation")

JTI, SID, USER, CLIENT, GRANT = "jti", "sid", "user", "cli", "grt"
# a user's access tokens only (roles changed): refresh families live on and pick up the
# new roles; in Redis it moves the same watermark as USER, so a check stays one MGET
USER_ACCESS = "uat"
# a mark in the durable table, not a revocation: the Redis copy may lack a record
COPY_PENDING = "copy"
_TAG = "rev"
# revocation keys copied per script call during a rebuild
_COPY_BATCH = 500
# how long a checker waits for another worker's rebuild before answering 503
_REBUILD_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class RevocationRecord:
    kind: str
    subject: str
    revoked_at: datetime
    expires_at: datetime


class DurableRevocations(Protocol):
    """The database side: the record that survives an emptied Redis."""

    def record(self, record: RevocationRecord) -> None: ...

    def active(self, now: datetime) -> list[RevocationRecord]: ...

    def latest(self) -> datetime | None:
        """When the newest live revocation was made (None without any)."""


    def mark_copy_pending(self, at: datetime) -> None:
        """Remember that a revocation may be missing from the Redis copy."""

    def copy_pending(self) -> bool: ...

    def clear_copy_pending(self, up_to: datetime) -> None:
        """Forget pending marks made at or before ``up_to`` (a rebuild started after them)."""


class CopyIncomplete(Unavailable):
    """The epoch marker is missing: Redis was emptied and the copy may lack revocations.

    An ``Unavailable`` (503), so that a caller which does not handle it fails closed.
    """


class CopyStale(CopyIncomplete):
    """The copy is older than one this process has seen (Redis restarted from an older
    snapshot, or failed over to a replica that lagged): revocations may be missing."""


# An access-token claim: the issuing moment in milliseconds. ``iat`` keeps whole seconds, as
# most libraries expect; user watermarks compare against this, so a token issued just after
# a revocation, in the same second, is not caught by it.
ISSUED_AT_MS = "iat_ms"


def grant(user_id: str, client_id: str) -> str:
    """The subject of a grant revocation: one user's tokens at one client (user ids hold
    no colon)."""
    return f"{user_id}:{client_id}"


def issued_at(claims: Mapping[str, Any]) -> float:
    """When the token was issued, to the millisecond where it says (``iat_ms``); tokens
    without it count from the start of their ``iat`` second (revoked with that second)."""
    precise = claims.get(ISSUED_AT_MS)
    if isinstance(precise, int) and not isinstance(precise, bool):
        return precise / 1000
    iat = claims.get("iat", 0)
    return float(iat) if isinstance(iat, (int, float)) and not isinstance(iat, bool) else 0.0


class RevocationCopy:
    """The fast copy of the revocations in Redis: where each one is kept, and what the copy
    says of a token. Every key is ``<prefix>:rev:{rev}:<kind>:<subject>``: one hash tag, so
    a check is one MGET on one Redis Cluster slot.
    """

    def __init__(self, store: Store):
        self.store = store
        # The newest (epoch, high-water mark) this process has seen of the copy. Every
        # revocation copied raises the mark to its time, and every rebuild sets a later
        # epoch, so a copy that compares lower has lost writes: it kept its epoch but came
        # back from before them (a snapshot, a lagging replica).
        self._newest = (0.0, 0.0)
        self._newest_lock = threading.Lock()

    def key(self, kind: str, subject: str) -> str:
        return self.store.key("rev", _TAG, USER if kind == USER_ACCESS else kind, subject)

    @property
    def epoch_key(self) -> str:
        return self.store.key("rev", _TAG, "epoch")

    @property
    def high_water_key(self) -> str:
        return self.store.key("rev", _TAG, "hw")

    @property
    def rebuild_lock_key(self) -> str:
        return self.store.key("rev", _TAG, "rebuild-lock")

    def newest(self) -> tuple[float, float]:
        """The newest (epoch, mark) this process has seen: a request's floor, taken before
        it reads or writes the copy."""
        return self._newest

    def saw(self, epoch, high_water, floor: tuple[float, float]) -> None:
        """Note the copy as a request read or wrote it; ``CopyStale`` if it is older than
        that request's ``floor``. Only a state seen before the request began proves the
        copy lost writes: one Redis primary answers each command with everything completed
        before it. A newer state another thread read meanwhile proves nothing."""
        marker = (float(epoch), float(high_water or 0))
        if marker < floor:
            raise CopyStale()
        if marker > self._newest:  # the lock only when the mark moves, not on every check
            with self._newest_lock:
                if marker > self._newest:
                    self._newest = marker

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Is this (signature-checked, unexpired) access token revoked, says the copy?

        One MGET of the epoch and high-water mark, the ``jti``, the user, client and grant
        watermarks and the ``sid``. Raises ``CopyIncomplete`` when the epoch marker is
        missing, ``CopyStale`` when the copy is older than one seen, and ``Unavailable``
        when Redis cannot be read: never an answer the copy cannot vouch for.
        """
        subject, client_id = str(claims.get("sub", "")), str(claims.get("client_id", ""))
        keys = [self.epoch_key, self.high_water_key, self.key(JTI, str(claims.get("jti", ""))),
                self.key(USER, subject), self.key(CLIENT, client_id),
                self.key(GRANT, grant(subject, client_id))]
        if claims.get("sid"):
            keys.append(self.key(SID, str(claims["sid"])))
        floor = self._newest
        values = self.store.mget(keys)
        epoch, high_water, jti, *watermarks = values[:6]
        family = values[6] if len(values) > 6 else None
        if epoch is None:
            raise CopyIncomplete()
        self.saw(epoch, high_water, floor)
        if jti is not None or family is not None:
            return True
        issued = issued_at(claims)
        return any(mark is not None and issued <= float(mark) for mark in watermarks)


class RevocationList:
    def __init__(self, store: Store, durable: DurableRevocations, access_ttl: int,
                 refresh_ttl: int, clock=now):
        self.store = store
        self.copy = RevocationCopy(store)
        self.durable = durable
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.clock = clock
        # set when this worker failed to copy a revocation into Redis
        self._suspect = False

    # -- revoking -------------------------------------------------------------------------
    def revoke_access_token(self, jti: str, expires_at: int) -> None:
        self._revoke(JTI, jti, expires_at)

    def revoke_family(self, family_id: str) -> None:
        # access tokens from a family live at most access_ttl past the family's end
        self._revoke(SID, family_id, self.clock() + self.refresh_ttl + self.access_ttl)

    def revoke_user(self, user_id: str) -> None:
        """Every token of this user issued up to now stops working, refresh families too."""
        # refresh families check the durable watermark, which must outlive them
        self._revoke(USER, user_id, self.clock() + self.refresh_ttl + self.access_ttl)

    def revoke_client(self, client_id: str, known_for: float = 0.0) -> None:
        """Every access token issued to this client up to ``known_for`` seconds from now
        stops working (it was deleted): workers that still know the client from their cache
        for that long can still issue it tokens, and those are revoked too."""
        at = self.clock() + known_for
        self._revoke(CLIENT, client_id, at + self.access_ttl, at=at)

    def revoke_grant(self, user_id: str, client_id: str) -> None:
        """What ``client_id`` holds for ``user_id`` up to now stops working: its access tokens
        here, its refresh families and codes where they are redeemed (which read the durable
        record with the account, so it must outlive them)."""
        self._revoke(GRANT, grant(user_id, client_id),
                     self.clock() + self.refresh_ttl + self.access_ttl)

    def revoke_user_access_tokens(self, user_id: str) -> None:
        """The user's access tokens up to now stop working; their refresh tokens do not."""
        self._revoke(USER_ACCESS, user_id, self.clock() + self.access_ttl)

    def _revoke(self, kind: str, subject: str, expires_at: float,
                at: float | None = None) -> None:
        """Record a revocation made now (a watermark at ``at``, when later than now) of
        tokens that expire by ``expires_at``."""
        now = self.clock()
        # checkers accept a token until exp + leeway (RFC 7519 §4.1.4 allows some skew), so
        # its revocation must last as long, and one made within the leeway still counts
        keep_until = expires_at + LEEWAY_SECONDS
        if keep_until <= now:
            return
        record = RevocationRecord(kind, subject, _utc(max(now, at or now)), _utc(keep_until))
        self.durable.record(record)  # durable first: an emptied Redis is rebuilt from it
        try:
            floor = self.copy.newest()
            epoch, high_water = self._copy([record], now)
            if epoch is not None:
                self.copy.saw(epoch, high_water, floor)  # a stale copy is rebuilt, as below
        except Unavailable:
            self._copy_failed(now)
            raise

    def _copy_failed(self, now: float) -> None:
        """The durable record exists but Redis may lack its copy: make sure a rebuild comes.

        The epoch goes (if Redis still takes a DEL, every check rebuilds first), the database
        remembers that the copy is pending (readiness probes rebuild on it), and this worker
        rebuilds before its own next check. The request itself answers 503.
        """
        self._suspect = True
        try:
            self.durable.mark_copy_pending(_utc(now))
        except Exception:  # noqa: BLE001 - the caller is already failing with a 503
            log.error("could not record a pending revocation copy")
        try:
            self.store.delete(self.copy.epoch_key)
        except Unavailable:
            pass

    def _copy(self, records: list[RevocationRecord], now: float) -> tuple:
        """Write ``records`` into the copy; the copy's epoch and high-water mark after."""
        state = (None, None)
        for start in range(0, len(records), _COPY_BATCH):
            batch = records[start:start + _COPY_BATCH]
            args: list = []
            for record in batch:
                # the value is the revocation time: what a user watermark compares against
                args += [f"{record.revoked_at.timestamp():.3f}",
                         max(1, math.ceil(record.expires_at.timestamp() - now))]
            keys = [self.copy.key(r.kind, r.subject) for r in batch]
            state = tuple(self.store.run(
                _COPY, [self.copy.epoch_key, self.copy.high_water_key, *keys], args))
        return state

    # -- checking -------------------------------------------------------------------------
    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Is this (signature-checked, unexpired) access token revoked? Fails closed.

        An emptied or stale Redis is rebuilt from the database first; if the copy is still
        incomplete after that, the answer is ``CopyIncomplete`` (503).
        """
        if self._suspect:
            self.ensure_copy()
        try:
            return self.copy.is_revoked(claims)
        except CopyIncomplete:
            self.rebuild()
            return self.copy.is_revoked(claims)

    # -- rebuilding -----------------------------------------------------------------------
    def ensure_copy(self) -> None:
        """Rebuild the Redis copy if Redis lost it, or lacks a revocation the database holds
        (back from an older snapshot, a lagging replica). Readiness probes call this, so such
        a Redis is refilled within a probe interval even while no access token is checked
        here (resource servers reading the copy directly fail closed until then)."""
        epoch, high_water = self.store.mget([self.copy.epoch_key, self.copy.high_water_key])
        latest = self.durable.latest()
        # the mark is written to the millisecond (_copy)
        behind = latest is not None and latest.timestamp() - float(high_water or 0) >= 0.001
        if epoch is None or behind or self.durable.copy_pending():
            self.rebuild()
            if not self.store.exists(self.copy.epoch_key):
                raise CopyIncomplete()
        self._suspect = False

    def rebuild(self) -> None:
        """Copy every live durable revocation into Redis, then set the epoch.

        One worker rebuilds (a short lock); the others wait briefly for the epoch and
        otherwise fail closed. Writes are idempotent, so a rebuild racing a new revocation
        cannot lose it: the revoker writes its own copy after its durable record.
        """
        lock = self.copy.rebuild_lock_key
        token = secrets.token_hex(8)
        if self.store.set_if_absent(lock, token, ttl=30):
            try:
                now = self.clock()
                records = self.durable.active(_utc(now))
                epoch, _ = self._copy(records, now)
                if not records:  # nothing copied, so the script did not read it
                    epoch = self.store.mget([self.copy.epoch_key])[0]
                # later than any epoch this process has seen, even from a host whose clock
                # runs ahead: the copy must never compare older than one seen (saw)
                epoch = max(now, self.copy.newest()[0] + 0.001, float(epoch or 0) + 0.001)
                self.store.set(self.copy.epoch_key, f"{epoch:.3f}")
                self.durable.clear_copy_pending(_utc(now))
                log.warning("revocation copy rebuilt in Redis", extra={"fields": {
                    "event": "audit", "action": "revocation.rebuild", "records": len(records)}})
            finally:
                self.store.run(_RELEASE, [lock], [token])
            return
        deadline = time.monotonic() + _REBUILD_WAIT_SECONDS
        while time.monotonic() < deadline:
            if self.store.exists(self.copy.epoch_key):
                return
            time.sleep(0.05)


def _utc(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, timezone.utc)


# KEYS: the epoch, the high-water mark, then revocation keys; ARGV: a (revoked-at, ttl)
# pair for each revocation key. A key keeps the latest revocation time and the longest
# lifetime it has been given; the mark, the latest revocation time copied. Returns the
# epoch (nil while there is none) and the mark.
_COPY = """
local newest = tonumber(redis.call('GET', KEYS[2]) or '0')
for i = 3, #KEYS do
  local at, ttl = ARGV[2 * i - 5], tonumber(ARGV[2 * i - 4])
  local current = redis.call('GET', KEYS[i])
  if not current or tonumber(current) < tonumber(at) then current = at end
  local left = redis.call('TTL', KEYS[i])
  if left > ttl then ttl = left end
  redis.call('SET', KEYS[i], current, 'EX', ttl)
  if tonumber(at) > newest then newest = tonumber(at) end
end
redis.call('SET', KEYS[2], string.format('%.3f', newest))
return {redis.call('GET', KEYS[1]), string.format('%.3f', newest)}
"""


_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
