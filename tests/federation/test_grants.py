"""Tenant grants of a connection: who gets which tenant role (contract §7)."""

from __future__ import annotations

import pytest

from federation.grants import InvalidConfig, TenantGrant, TenantMapping


def test_the_strongest_mapped_role_wins():
    mapping = TenantMapping.parse(
        [{"id": "acme", "role": "viewer"}],
        {"acme-eng": [{"id": "acme", "role": "editor"}, {"id": "labs", "role": "viewer"}],
         "acme-admins": [{"id": "acme", "role": "admin"}]})

    assert mapping.tenant_roles([]) == {"acme": "viewer"}
    assert mapping.tenant_roles(["acme-eng", "unknown"]) == {"acme": "editor", "labs": "viewer"}
    assert mapping.tenant_roles(["acme-admins", "acme-eng"]) == {"acme": "admin", "labs": "viewer"}


def test_absent_fields_grant_nothing_and_round_trip():
    mapping = TenantMapping.parse()
    assert mapping.tenant_roles(["anything"]) == {}
    assert mapping.to_dict() == {"default_tenants": [], "group_mappings": {}}
    full = {"default_tenants": [{"id": "acme", "role": "viewer"}],
            "group_mappings": {"ops": [{"id": "acme", "role": "admin"}]}}
    assert TenantMapping.parse(**full).to_dict() == full
    assert TenantMapping.parse(**full).default_tenants == (TenantGrant("acme", "viewer"),)


def test_group_names_are_bounded():
    with pytest.raises(InvalidConfig) as caught:
        TenantMapping.parse(group_mappings={"": [{"id": "acme", "role": "viewer"}]})
    assert caught.value.field == "group_mappings"
