"""Roles and permissions (contract §5).

A token or key carries ``tenants``: tenant id -> the permission strings it holds there.
``admin:*`` satisfies every permission. A platform admin holds ``admin:*`` in every
tenant, written as the tenant ``*``.
"""

from __future__ import annotations

import re
from typing import Iterable, Mapping

ADMIN_ALL = "admin:*"
ANY_TENANT = "*"
# what a tenant id may be (lower-case letters, digits and '-', at most 63): the admin API
# creates tenants by it, and connections map upstream groups to it
TENANT_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")


def is_tenant_id(value: object) -> bool:
    return isinstance(value, str) and TENANT_ID.fullmatch(value) is not None

READ = ("nodes:read", "findings:read", "jobs:read", "reports:read")
WRITE = ("nodes:write", "findings:write", "jobs:write")

ROLE_PERMISSIONS: dict[str, tuple[str, ...]] = {
    "viewer": READ,
    "editor": READ + WRITE,
    "admin": (ADMIN_ALL,),
}
TENANT_ROLES = tuple(ROLE_PERMISSIONS)
PLATFORM_ROLES = ("admin",)
PERMISSIONS = READ + WRITE + (ADMIN_ALL,)


def is_platform_admin(platform_roles: Iterable[str]) -> bool:
    return "admin" in platform_roles


def tenant_permissions(platform_roles: Iterable[str],
                       memberships: Mapping[str, str]) -> dict[str, list[str]]:
    """The ``tenants`` claim for a user: every tenant they hold a role in."""
    claim = {tenant: list(ROLE_PERMISSIONS[role]) for tenant, role in sorted(memberships.items())}
    if is_platform_admin(platform_roles):
        claim[ANY_TENANT] = [ADMIN_ALL]
    return claim


def permissions_in(claim: Mapping[str, Iterable[str]], tenant: str) -> set[str]:
    held = set(claim.get(tenant, ()))
    held.update(claim.get(ANY_TENANT, ()))
    return held


def allows(claim: Mapping[str, Iterable[str]], tenant: str, permission: str) -> bool:
    """May the holder of ``claim`` do ``permission`` in ``tenant``?"""
    held = permissions_in(claim, tenant)
    return ADMIN_ALL in held or permission in held
