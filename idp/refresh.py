"""Refresh-token families: rotation with reuse detection, in one Redis round trip.

A family begins at a login and holds who (user, client, tenant, scope), when (auth_time)
and until when (``expires_at`` = login + ``REFRESH_TOKEN_TTL``, never extended). Exactly
one refresh token of a family is live at a time. A refresh token is ``<family id>.<secret>``
(opaque to clients; 256 random bits in the secret); only its keyed hash is stored.

Using a token consumes it and makes its successor live, atomically (one Lua script, one
round trip). Presenting a token that was already consumed means two parties hold it, so
the family is revoked: its live refresh token and (through ``sid``) every access token
issued from it. The one exception is the *reuse grace window*: for a few seconds after a
rotation, the same client presenting the token it just consumed gets the *same* successor
back, so a retried request or two racing browser tabs do not kill the session; they never
make a second live successor. The successor is kept sealed under a key derived from the
consumed token, so only a holder of that token can open it.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .clock import now, to_millisecond
from .errors import InvalidGrant, InvalidScope
from .hashing import SecretHasher
from .store import Store

FAMILY_ID_BYTES = 16

# KEYS[1] family hash, KEYS[2] set of consumed token hashes (same {family} slot)
# ARGV: presented hash, successor hash, sealed successor, now, grace seconds, client id,
#       requested scope ("" for the family's own)
_ROTATE = """
local f = redis.call('HMGET', KEYS[1], 'cur', 'prev', 'prev_at', 'succ', 'revoked', 'exp', 'cid',
                     'scope')
if not f[1] then return {'unknown'} end
if f[5] == '1' then return {'revoked'} end
if tonumber(f[6]) <= tonumber(ARGV[4]) then return {'expired'} end
if f[7] ~= ARGV[6] then return {'unknown'} end
local granted = ' ' .. (f[8] or '') .. ' '
for scope in string.gmatch(ARGV[7], '%S+') do
  if not string.find(granted, ' ' .. scope .. ' ', 1, true) then return {'invalid_scope'} end
end
if f[1] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'cur', ARGV[2], 'prev', ARGV[1], 'prev_at', ARGV[4], 'succ', ARGV[3])
  redis.call('SADD', KEYS[2], ARGV[1])
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
  return {'rotated', redis.call('HMGET', KEYS[1], 'data', 'at', 'st')}
end
local grace = tonumber(ARGV[5])
if grace > 0 and f[2] == ARGV[1] and tonumber(ARGV[4]) - tonumber(f[3]) <= grace then
  return {'grace', redis.call('HMGET', KEYS[1], 'data', 'at', 'st'), f[4]}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {'reused', redis.call('HMGET', KEYS[1], 'data', 'at', 'st')}
end
return {'unknown'}
"""

# KEYS[1] family hash; ARGV: current hash, expires at, client id, data, lifetime seconds, scope,
# the sign-in's moment and the family's start, to the millisecond
_START = """
redis.call('HSET', KEYS[1], 'cur', ARGV[1], 'exp', ARGV[2], 'cid', ARGV[3], 'data', ARGV[4],
           'scope', ARGV[6], 'at', ARGV[7], 'st', ARGV[8])
redis.call('EXPIRE', KEYS[1], ARGV[5])
return 1
"""

# KEYS[1] family hash: a revoked family stays known, as revoked, until it would have expired
_END = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'revoked', '1')
redis.call('HDEL', KEYS[1], 'cur', 'succ')
return 1
"""

# KEYS[1] family hash, KEYS[2] consumed set; ARGV: presented hash
_LOOKUP = """
local f = redis.call('HMGET', KEYS[1], 'cur', 'revoked', 'data', 'at', 'st')
if not f[1] or f[2] == '1' then return false end
if f[1] == ARGV[1] or redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  return {f[3], f[4], f[5]}
end
return false
"""


@dataclass(frozen=True)
class Family:
    id: str
    user_id: str
    client_id: str
    scope: str
    tenant: str | None
    auth_time: float  # the sign-in, to the millisecond (idp.sessions)
    expires_at: int
    # when the family began (the login or the code exchange), to the millisecond; None for
    # families written before it was kept (they count from ``auth_time``, which is earlier)
    started_at: float | None = None

    # ``data`` keeps the sign-in's whole second, as releases before the millisecond did, so
    # that they can still read families written by this one (a rolling deploy, a rollback);
    # the millisecond moments are fields of their own (``at``, ``st``), absent from theirs
    def encode(self) -> str:
        return "\x1f".join([self.user_id, self.client_id, self.scope, self.tenant or "",
                            str(int(self.auth_time)), str(self.expires_at)])

    @classmethod
    def decode(cls, family_id: str, stored: list) -> "Family":
        """From the family hash's ``data``, ``at`` and ``st`` fields (None when absent)."""
        data, precise, started = (item.decode() if isinstance(item, bytes) else item
                                  for item in stored)
        user_id, client_id, scope, tenant, auth_time, expires_at = data.split("\x1f")
        return cls(family_id, user_id, client_id, scope, tenant or None,
                   float(precise) if precise else float(auth_time), int(expires_at),
                   float(started) if started else None)


@dataclass(frozen=True)
class Rotation:
    family: Family
    refresh_token: str


class ReuseDetected(InvalidGrant):
    """A consumed refresh token came back: the family has been revoked."""

    def __init__(self, family: Family):
        super().__init__("The refresh token was already used; the session has been revoked")
        self.family = family


def family_id_of(token: str) -> str | None:
    family_id, dot, secret = token.partition(".")
    if not dot or not family_id or not secret or len(token) > 200:
        return None
    return family_id


def _successor_key(consumed_token: str) -> bytes:
    return hashlib.sha256(b"refresh-successor\x00" + consumed_token.encode()).digest()


def seal_successor(consumed_token: str, successor: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_successor_key(consumed_token)).encrypt(nonce, successor.encode(), None)
    return (nonce + sealed).hex()


def open_successor(consumed_token: str, sealed_hex: bytes | str) -> str | None:
    raw = bytes.fromhex(sealed_hex.decode() if isinstance(sealed_hex, bytes) else sealed_hex)
    try:
        return AESGCM(_successor_key(consumed_token)).decrypt(raw[:12], raw[12:], None).decode()
    except (InvalidTag, ValueError):
        return None


class RefreshFamilies:
    def __init__(self, store: Store, hasher: SecretHasher, ttl: int, grace_seconds: float,
                 clock=now):
        self.store = store
        self.hasher = hasher
        self.ttl = ttl
        self.grace_seconds = grace_seconds
        self.clock = clock

    def _keys(self, family_id: str) -> list[str]:
        return [self.store.key("rf", family_id), self.store.key("rf", family_id, "used")]

    @staticmethod
    def _new_token(family_id: str) -> str:
        return f"{family_id}.{secrets.token_urlsafe(32)}"

    def start(self, *, user_id: str, client_id: str, scope: str, tenant: str | None,
              auth_time: float, started_at: float | None = None) -> Rotation:
        """Begin a family at a login; it ends ``ttl`` after ``auth_time``, whatever happens.
        ``started_at``: the moment the caller checked it may begin (now when not given)."""
        started = started_at if started_at is not None else self.clock()
        family = Family(secrets.token_urlsafe(FAMILY_ID_BYTES), user_id, client_id, scope,
                        tenant, auth_time, int(auth_time) + self.ttl, to_millisecond(started))
        token = self._new_token(family.id)
        lifetime = family.expires_at - int(self.clock())
        if lifetime <= 0:
            raise InvalidGrant("The login is too old to start a session")
        self.store.run(_START, self._keys(family.id)[:1], [
            self.hasher.digest(token), family.expires_at, client_id, family.encode(), lifetime,
            scope, f"{auth_time:.3f}", f"{family.started_at:.3f}"])
        return Rotation(family, token)

    def rotate(self, token: str, client_id: str, scope: str = "") -> Rotation:
        """Consume ``token`` and return its successor; raise ``InvalidGrant`` otherwise.

        A token of another client, or a ``scope`` wider than the family's, is refused
        without consuming anything (RFC 6749 §6).
        """
        family_id = family_id_of(token)
        if family_id is None:
            raise InvalidGrant("The refresh token is invalid")
        successor = self._new_token(family_id)
        result = self.store.run(_ROTATE, self._keys(family_id), [
            self.hasher.digest(token), self.hasher.digest(successor),
            seal_successor(token, successor), f"{self.clock():.3f}", self.grace_seconds,
            client_id, " ".join(scope.split()),
        ])
        outcome = result[0].decode() if isinstance(result[0], bytes) else result[0]
        if outcome == "rotated":
            return Rotation(Family.decode(family_id, result[1]), successor)
        if outcome == "grace":
            repeated = open_successor(token, result[2])
            if repeated is not None:
                return Rotation(Family.decode(family_id, result[1]), repeated)
        if outcome == "reused":
            raise ReuseDetected(Family.decode(family_id, result[1]))
        if outcome == "expired":
            raise InvalidGrant("The refresh token has expired")
        if outcome == "invalid_scope":
            raise InvalidScope("The requested scope exceeds the one originally granted")
        raise InvalidGrant("The refresh token is invalid, expired or revoked")

    def find(self, token: str) -> Family | None:
        """The live family a presented refresh token (current or consumed) belongs to."""
        family_id = family_id_of(token)
        if family_id is None:
            return None
        data = self.store.run(_LOOKUP, self._keys(family_id), [self.hasher.digest(token)])
        return None if not data else Family.decode(family_id, data)

    def end(self, family_id: str) -> None:
        """Mark a family revoked; it stays known (as revoked) until it would have expired."""
        self.store.run(_END, self._keys(family_id)[:1], [])
