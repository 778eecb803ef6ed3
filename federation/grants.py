"""Tenant roles of federated users: a connection's ``default_tenants`` and ``group_mappings``.

Contract §7: tenant roles for federated users come from the connection's mapping of
upstream groups. Both fields use the shape of a user's ``tenants`` (contract §3):

- ``default_tenants``: ``[{"id": tenant, "role": role}, ...]``, granted to every user of the
  connection;
- ``group_mappings``: ``{group: [{"id": tenant, "role": role}, ...], ...}``, granted to the
  members of ``group`` (a group name or id exactly as the upstream sends it).

``role`` is a tenant role (``viewer``, ``editor``, ``admin``). Where several grants name one
tenant, the strongest role wins. The connector only validates the shape; the server applies
it (``tenant_roles``) when it brokers an ``Identity`` into a local user, and checks that the
tenants exist.

What every connection's configuration shares lives here too: ``InvalidConfig``, the check of
an admin's fields (``known_fields``) and of a configured string (``printable``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Mapping

from idp.permissions import TENANT_ROLES, is_tenant_id

MAX_GRANTS = 100
MAX_GROUP_MAPPINGS = 500
MAX_GROUP_NAME_LENGTH = 256
_GRANT_SHAPE = '{"id": tenant, "role": role}'


class InvalidConfig(ValueError):
    """A connection's configuration is unusable; ``message`` names the field and is safe to show."""

    def __init__(self, field_name: str, message: str):
        super().__init__(f"{field_name} {message}")
        self.field = field_name
        self.message = f"{field_name} {message}"


# the fields of every connection's configuration that hold its TenantMapping
MAPPING_FIELDS = ("default_tenants", "group_mappings")


def known_fields(raw: object, required: tuple[str, ...], optional: tuple[str, ...]) -> dict:
    """An admin's JSON object, checked to name no unknown field and every required one."""
    if not isinstance(raw, Mapping):
        raise InvalidConfig("configuration", "must be a JSON object")
    known = required + optional
    unknown = sorted(str(name) for name in raw if name not in known)
    if unknown:
        raise InvalidConfig(unknown[0], f"is not a known field (expected {', '.join(known)})")
    for name in required:
        if raw.get(name) in (None, ""):
            raise InvalidConfig(name, "is required")
    return dict(raw)


def printable(name: str, value: object, max_length: int) -> str:
    """A configured string: 1 to ``max_length`` printable characters, no surrounding spaces."""
    if not isinstance(value, str):
        raise InvalidConfig(name, "must be a string")
    if not 0 < len(value) <= max_length:
        raise InvalidConfig(name, f"must be 1 to {max_length} characters")
    if not value.isprintable() or value != value.strip():
        raise InvalidConfig(name, "must not contain control characters or surrounding spaces")
    return value


@dataclass(frozen=True)
class TenantGrant:
    tenant: str
    role: str

    def to_dict(self) -> dict:
        return {"id": self.tenant, "role": self.role}


@dataclass(frozen=True)
class TenantMapping:
    """Who gets which tenant role: ``default_tenants`` for everyone, plus mapped groups."""

    default_tenants: tuple[TenantGrant, ...] = ()
    group_mappings: Mapping[str, tuple[TenantGrant, ...]] = field(
        default_factory=lambda: MappingProxyType({}))

    @classmethod
    def parse(cls, default_tenants: object = None, group_mappings: object = None) -> TenantMapping:
        """Validate the two JSON fields (absent means empty); raises ``InvalidConfig``."""
        return cls(_grants("default_tenants", [] if default_tenants is None else default_tenants),
                   _group_mappings({} if group_mappings is None else group_mappings))

    def tenant_roles(self, groups: Iterable[str]) -> dict[str, str]:
        """Tenant id -> role for a user in ``groups``."""
        roles: dict[str, str] = {}
        grants = list(self.default_tenants)
        for group in groups:
            grants.extend(self.group_mappings.get(group, ()))
        for grant in grants:
            held = roles.get(grant.tenant)
            # TENANT_ROLES lists the roles weakest first
            if held is None or TENANT_ROLES.index(grant.role) > TENANT_ROLES.index(held):
                roles[grant.tenant] = grant.role
        return roles

    def to_dict(self) -> dict:
        return {
            "default_tenants": [grant.to_dict() for grant in self.default_tenants],
            "group_mappings": {group: [grant.to_dict() for grant in grants]
                               for group, grants in self.group_mappings.items()},
        }


def _grants(name: str, value: object) -> tuple[TenantGrant, ...]:
    if not isinstance(value, list):
        raise InvalidConfig(name, f"must be a list of {_GRANT_SHAPE}")
    if len(value) > MAX_GRANTS:
        raise InvalidConfig(name, f"may hold at most {MAX_GRANTS} entries")
    grants = []
    for entry in value:
        if not isinstance(entry, Mapping) or set(entry) != {"id", "role"}:
            raise InvalidConfig(name, f"entries must be {_GRANT_SHAPE}")
        tenant, role = entry["id"], entry["role"]
        if not is_tenant_id(tenant):
            raise InvalidConfig(name, "has an invalid tenant id (lower-case letters, digits "
                                      "and '-', at most 63)")
        if role not in TENANT_ROLES:
            raise InvalidConfig(name, f"role must be one of {', '.join(TENANT_ROLES)}")
        grants.append(TenantGrant(tenant, role))
    return tuple(grants)


def is_group_name(value: object) -> bool:
    """A group name a mapping may hold and an identity may carry (``connector.group_names``):
    1 to ``MAX_GROUP_NAME_LENGTH`` printable characters."""
    return isinstance(value, str) and 0 < len(value) <= MAX_GROUP_NAME_LENGTH \
        and value.isprintable()


def _group_mappings(value: object) -> Mapping[str, tuple[TenantGrant, ...]]:
    if not isinstance(value, Mapping):
        raise InvalidConfig("group_mappings", f"must be an object {{group: [{_GRANT_SHAPE}, ...]}}")
    if len(value) > MAX_GROUP_MAPPINGS:
        raise InvalidConfig("group_mappings", f"may hold at most {MAX_GROUP_MAPPINGS} groups")
    mappings = {}
    for group, grants in value.items():
        # any other name could never match a group an identity carries
        if not is_group_name(group):
            raise InvalidConfig("group_mappings", f"group names must be 1 to "
                                f"{MAX_GROUP_NAME_LENGTH} printable characters")
        mappings[group] = _grants(f"group_mappings[{group!r}]", grants)
    return MappingProxyType(mappings)
