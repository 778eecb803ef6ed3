"""Authorization codes (RFC 6749 §4.1.2): single use, short-lived, bound, kept in the store.

A code is bound to the client, the ``redirect_uri`` of the request, the PKCE challenge, the
user and the moment they authenticated, the ``nonce``, the scope and the tenant. Only a
keyed hash of the code names its record (``ac:{<hash>}``), so the store never holds a usable
code. It lives ``AUTHORIZATION_CODE_TTL`` seconds (at most 60), checked against the clock as
well as by the key's TTL.

Redeeming is one Lua script: it reads and deletes the record and, in the same step, leaves
a *used* marker beside it (``ac:{<hash>}:used``, same slot). The token endpoint writes on the
marker what the code produced: the refresh family id (``sid``) and the access token's
``jti``. A second redemption finds the marker, flags it, and gets back what to revoke —
RFC 6749 §4.1.2: the server "SHOULD revoke (when possible) all tokens previously issued
based on that authorization code". Should the second redemption arrive before the first has
recorded its tokens, the flag makes the first revoke what it has just issued and fail: a
code never yields two sets of tokens, nor a set that outlives a replay. The marker lives as
long as an access token does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from authlib.oidc.core import AuthorizationCodeMixin

from .clock import now
from .errors import InvalidGrant
from .hashing import SecretHasher
from .store import Store

# KEYS[1] code record, KEYS[2] used marker; ARGV: marker lifetime (s), now
_REDEEM = """
local data = redis.call('GET', KEYS[1])
if data then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[2], 'at', ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[1])
  return {'fresh', data}
end
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('HSET', KEYS[2], 'reused', '1')
  return {'reused', redis.call('HGET', KEYS[2], 'sid') or '',
          redis.call('HGET', KEYS[2], 'jti') or '', redis.call('HGET', KEYS[2], 'exp') or ''}
end
return {'unknown'}
"""

# KEYS[1] used marker; ARGV: sid, jti, exp. Returns 1 when a replay was seen meanwhile.
_RECORD = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 1 end
redis.call('HSET', KEYS[1], 'sid', ARGV[1], 'jti', ARGV[2], 'exp', ARGV[3])
if redis.call('HGET', KEYS[1], 'reused') == '1' then return 1 end
return 0
"""


@dataclass(frozen=True)
class AuthorizationCode(AuthorizationCodeMixin):
    """What a code stands for; Authlib's ``AuthorizationCodeMixin`` (OIDC flavour)."""

    client_id: str
    redirect_uri: str | None
    scope: str
    user_id: str
    auth_time: float  # when the user signed in, to the millisecond (idp.sessions)
    expires_at: float
    nonce: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    tenant: str | None = None

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope

    def get_nonce(self):
        return self.nonce

    def get_auth_time(self):
        return int(self.auth_time)  # OIDC Core §2: whole seconds


@dataclass(frozen=True)
class IssuedTokens:
    """What a redeemed code produced, as the used marker recorded it."""

    sid: str | None
    jti: str | None
    exp: int | None


class CodeReused(InvalidGrant):
    """A redeemed code came back; ``issued`` is what the first redemption produced."""

    def __init__(self, issued: IssuedTokens):
        super().__init__("The authorization code was already used; "
                         "the tokens issued for it have been revoked")
        self.issued = issued


class AuthorizationCodes:
    def __init__(self, store: Store, hasher: SecretHasher, ttl: int, used_ttl: int,
                 clock=now):
        self.store = store
        self.hasher = hasher
        self.ttl = ttl
        self.used_ttl = used_ttl
        self.clock = clock

    def _keys(self, code: str) -> list[str]:
        digest = self.hasher.digest(code)
        return [self.store.key("ac", digest), self.store.key("ac", digest, "used")]

    def new_expiry(self, issued_at: float | None = None) -> float:
        return (issued_at if issued_at is not None else self.clock()) + self.ttl

    def save(self, code: str, record: AuthorizationCode) -> None:
        self.store.put(self._keys(code)[0], asdict(record), self.ttl)

    def peek(self, code: str) -> AuthorizationCode | None:
        """The code's record without consuming it (None when unknown, used or expired).

        The token endpoint checks the client, ``redirect_uri`` and PKCE against this first
        and redeems only a request that passes, so a wrong verifier or another client's
        attempt does not burn the legitimate client's code.
        """
        if not isinstance(code, str) or not code or len(code) > 256:
            return None
        data = self.store.get(self._keys(code)[0])
        if data is None:
            return None
        record = AuthorizationCode(**data)
        return record if record.expires_at > self.clock() else None

    def redeem(self, code: str) -> AuthorizationCode:
        """The code's record, consumed; ``InvalidGrant`` if unknown, expired or used."""
        if not isinstance(code, str) or not code or len(code) > 256:
            raise InvalidGrant("The authorization code is invalid")
        result = self.store.run(_REDEEM, self._keys(code), [self.used_ttl, f"{self.clock():.3f}"])
        outcome = _text(result[0])
        if outcome == "reused":
            sid, jti, exp = (_text(value) or None for value in result[1:4])
            raise CodeReused(IssuedTokens(sid, jti, int(exp) if exp else None))
        if outcome != "fresh":
            raise InvalidGrant("The authorization code is invalid, expired or already used")
        record = AuthorizationCode(**json.loads(result[1]))
        if record.expires_at <= self.clock():
            raise InvalidGrant("The authorization code has expired")
        return record

    def record_issued(self, code: str, issued: IssuedTokens) -> bool:
        """Note what a redeemed code produced; False when it was replayed meanwhile."""
        replayed = self.store.run(_RECORD, self._keys(code)[1:], [
            issued.sid or "", issued.jti or "", issued.exp or ""])
        return not int(replayed)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")
