"""Brute-force protection for every password path, in the store.

Two counters per account, both in the account's own slot:

* per (account, client host): every attempt counts, refused ones included, so a
  guesser is slowed at once. After ``free_attempts`` the address waits
  ``base_delay * 2^(n - free_attempts - 1)`` seconds (capped at ``max_delay``) before the
  next try, and each refused try pushes the wait out again. A host is an IPv4 address
  or an IPv6 /64 (see ``client_host``).
* per account, across addresses: only attempts that actually checked a password count,
  and the threshold is much higher, so one address hammering an account cannot lock its
  owner out cheaply; a distributed attack still meets a wall.

``begin`` runs before the password check and counts the attempt atomically (parallel
guesses are never lost to a race); ``succeeded`` resets the address counter and takes the
attempt back from the account counter.
"""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass

from .clock import now
from .audit import Audit
from .errors import RateLimited
from .store import Store

# KEYS[1] (account, address) hash, KEYS[2] account hash
# ARGV: now, free attempts, base delay, max delay, account threshold, account lock, window
# returns {retry_after_seconds, attempts_from_address, newly_locked: 0 none, 1 address, 2 account}
_BEGIN = """
local now = tonumber(ARGV[1])
local free, base, cap = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local threshold, account_lock, window = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('EXPIRE', KEYS[1], window)
local address_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local account_until = tonumber(redis.call('HGET', KEYS[2], 'until') or '0')
local function delay(count)
  if count <= free then return 0 end
  return math.min(base * 2 ^ (count - free - 1), cap)
end
local wait = math.max(address_until, account_until) - now
if wait > 0 then
  local pushed = now + delay(n)
  if pushed > address_until then
    redis.call('HSET', KEYS[1], 'until', pushed)
    redis.call('EXPIRE', KEYS[1], math.max(window, math.ceil(pushed - now)))
  end
  return {math.ceil(math.max(wait, pushed - now)), n, 0}
end
local locked = 0
local d = delay(n)
if d > 0 then
  redis.call('HSET', KEYS[1], 'until', now + d)
  redis.call('EXPIRE', KEYS[1], math.max(window, math.ceil(d)))
  if n == free + 1 then locked = 1 end
end
local a = redis.call('HINCRBY', KEYS[2], 'n', 1)
redis.call('EXPIRE', KEYS[2], window)
if a >= threshold and account_until <= now then
  redis.call('HSET', KEYS[2], 'until', now + account_lock, 'n', 0)
  redis.call('EXPIRE', KEYS[2], math.max(window, account_lock))
  locked = 2
end
return {0, n, locked}
"""

# KEYS[1] (account, address) hash, KEYS[2] account hash
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
if redis.call('HINCRBY', KEYS[2], 'n', -1) < 0 then redis.call('HSET', KEYS[2], 'n', 0) end
return 1
"""


def client_host(address: str) -> str:
    """The unit the address counter counts: one IPv4 address, or one IPv6 /64.

    A /64 is the smallest prefix routinely assigned to one host or subscriber (RFC 6177,
    RFC 7421), who can use any address in it: counted one by one, a single host would
    get the free attempts from each of its addresses. An IPv4-mapped IPv6 address
    (``::ffff:a.b.c.d``) is its IPv4 address; anything unparsable is counted as given.
    """
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return address
    if parsed.version == 6 and parsed.ipv4_mapped is not None:
        return str(parsed.ipv4_mapped)
    if parsed.version == 6:
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return str(parsed)


@dataclass(frozen=True)
class ThrottlePolicy:
    free_attempts: int = 5
    base_delay: float = 1.0
    max_delay: float = 900.0
    account_threshold: int = 100
    account_lock: int = 900
    window: int = 900


class LoginThrottle:
    def __init__(self, store: Store, policy: ThrottlePolicy, audit: Audit, clock=now):
        self.store = store
        self.policy = policy
        self.audit = audit
        self.clock = clock

    def _keys(self, account: str, address: str) -> list[str]:
        # the account name is attacker-chosen: hash it so it is a safe, bounded hash tag
        tag = hashlib.sha256(account.strip().lower().encode()).hexdigest()[:24]
        return [self.store.key("bf", tag, "addr", client_host(address)),
                self.store.key("bf", tag, "acct")]

    def begin(self, account: str, address: str) -> None:
        """Count an attempt; raise ``RateLimited`` when this one must not check a password."""
        p = self.policy
        retry_after, attempts, locked = self.store.run(_BEGIN, self._keys(account, address), [
            f"{self.clock():.3f}", p.free_attempts, p.base_delay, p.max_delay,
            p.account_threshold, p.account_lock, p.window])
        if locked:
            self.audit("login.lockout", "locked", actor=account, target=account,
                       scope="address" if locked == 1 else "account", address=address,
                       attempts=attempts)
        if retry_after > 0:
            raise RateLimited(retry_after=int(retry_after))

    def succeeded(self, account: str, address: str) -> None:
        self.store.run(_SUCCEEDED, self._keys(account, address), [])

    def attempts(self, account: str, address: str) -> int:
        """Attempts counted for this (account, address) in the current window."""
        raw = self.store.client.hget(self._keys(account, address)[0], "n")
        return int(raw or 0)
