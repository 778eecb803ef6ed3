"""JWT access tokens (RFC 9068 profile, contract §5).

Header ``{"alg": "RS256", "typ": "at+jwt", "kid"}``; claims ``iss sub aud exp iat nbf jti
client_id scope roles tenants`` plus ``sid`` (the refresh family a token came from) and
``auth_time`` when known. The key is the keyring's active key, parsed once per process.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timezone

from joserfc import jwt

from keys.keyring import Keyring

from .clock import now
from .accounts import Account
from .errors import Forbidden
from .revocation import ISSUED_AT_MS
from .rfc9068 import ALGORITHM, TYP
from .permissions import permissions_in, tenant_permissions

@dataclass(frozen=True)
class AccessToken:
    token: str
    claims: dict
    expires_in: int

    @property
    def jti(self) -> str:
        return self.claims["jti"]

    @property
    def expires_at(self) -> str:
        """RFC 3339 UTC, as the seed writes it: ``2024-03-16T10:00:00Z``."""
        return rfc3339(self.claims["exp"])


def rfc3339(epoch: int | float) -> str:
    return datetime.fromtimestamp(int(epoch), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def scoped_tenants(account: Account, tenant: str | None) -> dict[str, list[str]]:
    """The ``tenants`` claim; with ``tenant`` it holds that tenant alone (403 without a role)."""
    claim = tenant_permissions(account.platform_roles, account.memberships)
    if tenant is None:
        return claim
    held = permissions_in(claim, tenant)
    if not held:
        raise Forbidden()
    return {tenant: sorted(held)}


class AccessTokenIssuer:
    def __init__(self, keyring: Keyring, issuer: str, audience: str, ttl: int, clock=now):
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience
        self.ttl = ttl
        self.clock = clock

    def issue(self, *, subject: str, client_id: str, scope: str, roles: list[str],
              tenants: dict[str, list[str]], sid: str | None = None,
              auth_time: float | None = None, checked_at: float | None = None) -> AccessToken:
        """``checked_at``: the moment the caller read the revocations that let it issue this
        (now when not given). The token claims to be issued then, so that a revocation
        landing between that read and now still covers it."""
        moment = checked_at if checked_at is not None else self.clock()
        now = int(moment)
        claims = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "exp": now + self.ttl,
            "iat": now,
            ISSUED_AT_MS: int(moment * 1000),
            "nbf": now,
            "jti": secrets.token_urlsafe(16),
            "client_id": client_id,
            "scope": scope,
            "roles": roles,
            "tenants": tenants,
        }
        if sid is not None:
            claims["sid"] = sid
        if auth_time is not None:
            claims["auth_time"] = int(auth_time)
        key = self.keyring.signing_key()
        header = {"alg": ALGORITHM, "typ": TYP, "kid": key.kid}
        # the token counts from ``moment``, which may lie seconds behind us (a login that
        # queued for the argon2 gate): the whole seconds since then are not the client's.
        # Counted from the moment, not from second boundaries, so that a check a few
        # milliseconds ago still gives the whole TTL, as a token issued now does
        expires_in = max(0, self.ttl - int(self.clock() - moment))
        return AccessToken(jwt.encode(header, claims, key.key), claims, expires_in)

    def issue_for_account(self, account: Account, *, client_id: str, scope: str,
                          tenant: str | None = None, sid: str | None = None,
                          auth_time: float | None = None, with_rights: bool = True,
                          checked_at: float | None = None) -> AccessToken:
        """A user's token. ``with_rights`` False (third-party clients) leaves out the user's
        roles and tenant permissions: the consent page grants identity scopes, never the
        power to act on the Infracast API as the user."""
        tenants = scoped_tenants(account, tenant)
        # a tenant-scoped token must not widen itself through platform roles
        roles = [] if tenant is not None else list(account.platform_roles)
        if not with_rights:
            tenants, roles = {}, []
        return self.issue(subject=account.id, client_id=client_id, scope=scope, roles=roles,
                          tenants=tenants, sid=sid, auth_time=auth_time, checked_at=checked_at)
