"""``ic_live_`` API keys: their rules, and what introspection says of them (their format
is ``idp.api_key_format``, which resource servers import too).

A key holds ``permissions`` in each of its ``tenants``. It can never exceed its creator:
at creation the creator must hold ``admin`` in every named tenant (or be a platform
admin), and at every use the key holds only what its creator still holds — a creator who
is disabled, deleted or demoted takes the key's rights down with them.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Mapping, Protocol

from .accounts import Account
from .api_key_format import PREFIX
from .errors import Forbidden, InvalidRequest
from .permissions import ADMIN_ALL, PERMISSIONS, allows, tenant_permissions

MAX_GRACE_SECONDS = 7 * 24 * 3600


def new_api_key() -> str:
    return PREFIX + secrets.token_urlsafe(32)  # 256 bits


def parse_permissions(values) -> list[str]:
    if not isinstance(values, list) or not values:
        raise InvalidRequest("'permissions' must be a non-empty list")
    unknown = [p for p in values if not isinstance(p, str) or p not in PERMISSIONS]
    if unknown:
        raise InvalidRequest(f"'permissions' holds an unknown permission: {unknown[0]!r}")
    return sorted(set(values))


def parse_allowed_ips(values) -> list[str]:
    """IPv4/IPv6 addresses and CIDRs, normalised (``10.0.0.7/8`` is refused, not widened)."""
    if values is None:
        return []
    if not isinstance(values, list):
        raise InvalidRequest("'allowed_ips' must be a list of addresses or CIDRs")
    networks = []
    for value in values:
        # ip_network() also takes integers, and so booleans: True would be 0.0.0.1/32
        if not isinstance(value, str):
            raise InvalidRequest(f"'allowed_ips' entries must be strings, not {value!r}")
        try:
            networks.append(str(_unmapped(ipaddress.ip_network(value, strict=True))))
        except ValueError:
            raise InvalidRequest(f"'allowed_ips' holds an invalid address or CIDR: {value!r}") from None
    return sorted(set(networks))


def _unmapped(network: ipaddress.IPv4Network | ipaddress.IPv6Network):
    """``::ffff:10.0.0.0/104`` is ``10.0.0.0/8``: store the IPv4 form, which ``ip_allowed``
    matches whether the caller is reported as IPv4 or IPv4-mapped (an IPv6 entry would only
    match the mapped spelling)."""
    if (isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96
            and network.network_address.ipv4_mapped is not None):
        return ipaddress.ip_network(f"{network.network_address.ipv4_mapped}/{network.prefixlen - 96}")
    return network


def ip_allowed(allowed_ips: Iterable[str], client_ip: str | None) -> bool:
    allowed = list(allowed_ips)
    if not allowed:
        return True
    if not client_ip:
        return False  # an allowlisted key without a caller address fails closed
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    addresses = [address]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        # a dual-stack listener reports an IPv4 caller as ::ffff:a.b.c.d
        addresses.append(address.ipv4_mapped)
    # unmapped here too: a key stored before entries were normalised (or by the previous
    # release) may hold ::ffff:10.0.0.0/104
    return any(candidate in _unmapped(ipaddress.ip_network(network))
               for network in allowed for candidate in addresses)


def check_grantable(holder_tenants: Mapping[str, Iterable[str]], tenants: Iterable[str]) -> None:
    """The holder must be admin in every named tenant; anything else is an escalation.

    ``admin:*`` in a tenant covers every permission there, so the key's permissions need no
    check of their own.
    """
    for tenant in tenants:
        if not allows(holder_tenants, tenant, ADMIN_ALL):
            raise Forbidden()


@dataclass(frozen=True)
class ApiKeyRecord:
    id: str
    name: str
    tenants: tuple[str, ...]
    permissions: tuple[str, ...]
    allowed_ips: tuple[str, ...]
    created_by: str
    created_at: datetime
    issued_at: datetime  # created, or last rotated
    expires_at: datetime | None
    revoked: bool
    last_used_at: datetime | None = None


class ApiKeyDirectory(Protocol):
    def find_by_secret_digest(self, digest: str, now: datetime) -> ApiKeyRecord | None: ...

    def mark_used(self, record: ApiKeyRecord, now: datetime) -> None:
        """Note a use; may skip the write when the last noted use is recent."""


def effective_tenants(record: ApiKeyRecord, creator: Account | None) -> dict[str, list[str]]:
    """What the key may do now: its own permissions, cut down to what its creator holds."""
    if creator is None or creator.disabled:
        return {}
    held = tenant_permissions(creator.platform_roles, creator.memberships)
    claim = {}
    for tenant in record.tenants:
        kept = [p for p in record.permissions if allows(held, tenant, p)]
        if kept:
            claim[tenant] = kept
    return claim


def introspection(record: ApiKeyRecord | None, creator: Account | None, client_ip: str | None,
                  now: datetime) -> dict | None:
    """The RFC 7662 answer for a key, or None when it is not active for this caller."""
    if record is None or record.revoked:
        return None
    if record.expires_at is not None and record.expires_at <= now:
        return None
    if not ip_allowed(record.allowed_ips, client_ip):
        return None
    tenants = effective_tenants(record, creator)
    if not tenants:
        return None
    body = {
        "active": True,
        "token_type": "api_key",
        "sub": record.id,
        "client_id": record.id,
        "iat": int(record.issued_at.timestamp()),
        "scope": " ".join(sorted({p for perms in tenants.values() for p in perms})),
        "tenants": tenants,
        "allowed_ips": list(record.allowed_ips),
        "name": record.name,
        "created_by": record.created_by,
    }
    if record.expires_at is not None:
        body["exp"] = int(record.expires_at.timestamp())
    return body
