"""Tenants: created by platform admins, referenced by memberships, keys and clients."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from idp.errors import Conflict, InvalidRequest, NotFound
from idp.permissions import is_tenant_id
from idp.tokens import rfc3339

from .extensions import db
from .models import Tenant
from .pagination import Page, paginate


def render(tenant: Tenant) -> dict:
    return {"id": tenant.id, "name": tenant.name, "created_at": rfc3339(tenant.created_at.timestamp())}


def create_tenant(tenant_id: str, name: str) -> Tenant:
    if not is_tenant_id(tenant_id):
        raise InvalidRequest("'id' may hold lower-case letters, digits and '-' (at most 63)")
    if len(name) > 200:
        raise InvalidRequest("'name' is too long (at most 200 characters)")
    tenant = Tenant(id=tenant_id, name=name.strip())
    db.session.add(tenant)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("A tenant with this id already exists") from None
    return tenant


def get_tenant(tenant_id: str) -> Tenant:
    tenant = db.session.get(Tenant, tenant_id) if is_tenant_id(tenant_id) else None
    if tenant is None:
        raise NotFound("Unknown tenant")
    return tenant


def list_tenants() -> Page:
    return paginate(sa.select(Tenant), Tenant.id)


def require_tenants(tenant_ids) -> None:
    """404 naming the first tenant id that does not exist."""
    wanted = set(tenant_ids)
    if not wanted:
        return
    found = set(db.session.execute(sa.select(Tenant.id).where(Tenant.id.in_(wanted))).scalars())
    missing = sorted(wanted - found)
    if missing:
        raise NotFound(f"Unknown tenant: {missing[0]}")
