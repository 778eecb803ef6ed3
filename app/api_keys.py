"""Managing ``ic_live_`` API keys for their creators (rules in ``idp/api_keys.py``).

Who sees a key: its creator, and a platform admin's token; a token requested with
``tenant`` (a platform admin's too: it carries no platform role) only its user's own keys of
that tenant. What a departed creator leaves behind:
deleting a user revokes every key they created; disabling a user suspends their keys
(introspection answers inactive) until the user is enabled again; a demoted creator's
keys keep only what the creator still holds. A key never outlives, or outranks, the
person who made it — keys that must outlive a person belong to a service account.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa
from flask import current_app

from idp import api_keys as rules
from idp.accounts import Account
from idp.errors import Forbidden, InvalidRequest, NotFound, Unauthorized
from idp.permissions import is_platform_admin, is_tenant_id, tenant_permissions
from idp.tokens import rfc3339

from .extensions import db, services
from .models import ApiKey, utcnow
from .pagination import Page, paginate
from .tenants import require_tenants

ROTATION_DAYS_DEFAULT = 90


@dataclass(frozen=True)
class IssuedKey:
    row: ApiKey
    secret: str


def _parse_expires_at(value) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidRequest("'expires_at' must be an RFC 3339 date-time string")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if moment.tzinfo is None:
            raise InvalidRequest("'expires_at' must carry a time zone (e.g. Z)")
        moment = moment.astimezone(timezone.utc)
    except (ValueError, OverflowError):
        raise InvalidRequest("'expires_at' must be an RFC 3339 date-time, e.g. 2027-01-31T00:00:00Z") from None
    if moment <= utcnow():
        raise InvalidRequest("'expires_at' must be in the future")
    return moment


def _parse_tenants(value) -> list[str]:
    if not isinstance(value, list) or not value or any(not is_tenant_id(t) for t in value):
        raise InvalidRequest("'tenants' must be a non-empty list of tenant ids")
    return sorted(set(value))


def create_key(claims: dict, body: dict) -> IssuedKey:
    name = body.get("name")
    if not isinstance(name, str) or not name.strip() or len(name) > 100:
        raise InvalidRequest("'name' is required (at most 100 characters)")
    tenants = _parse_tenants(body.get("tenants"))
    permissions = rules.parse_permissions(body.get("permissions"))
    expires_at = _parse_expires_at(body.get("expires_at"))
    allowed_ips = rules.parse_allowed_ips(body.get("allowed_ips"))
    # rights first: to anyone but a platform admin, an unknown tenant is refused as one of
    # somebody else's is (403), so key creation tells nobody which tenant ids exist
    _check_grantable(claims, _account(claims), tenants, permissions, "api_key.create")
    require_tenants(tenants)
    secret = rules.new_api_key()
    row = ApiKey(id=f"key-{secrets.token_hex(12)}", name=name.strip(),
                 secret_hash=services().secrets.digest(secret), tenants=tenants,
                 permissions=permissions, allowed_ips=allowed_ips, created_by=str(claims["sub"]),
                 expires_at=expires_at)
    db.session.add(row)
    db.session.commit()
    services().audit("api_key.create", "success", actor=row.created_by, target=row.id,
                     tenants=tenants, permissions=permissions)
    return IssuedKey(row, secret)


def _account(claims: dict) -> Account | None:
    """The caller's account as it is now (one query)."""
    return services().accounts.find_by_id(str(claims.get("sub")))


def _check_grantable(claims: dict, account: Account | None, tenants: list[str],
                     permissions: list[str], action: str) -> None:
    """Both the caller's token and their ``account`` as it is now must be admin in each
    tenant; a refusal is audited under ``action``."""
    if account is None or account.disabled:
        raise Unauthorized()  # client_credentials tokens and departed users make no keys
    try:
        rules.check_grantable(claims.get("tenants") or {}, tenants)
        rules.check_grantable(tenant_permissions(account.platform_roles, account.memberships),
                              tenants)
    except Forbidden:
        services().audit(action, "denied", actor=str(claims.get("sub")),
                         reason="escalation", tenants=tenants, permissions=permissions)
        raise


def _visible(claims: dict, account: Account | None = None):
    """The caller's unrevoked keys (every key, for a platform admin's token), within what
    the token holds: a token requested with ``tenant`` holds that tenant alone (contract
    §5), so it neither reads nor revokes the keys its user made for other tenants. The
    caller's ``account`` is read when not given (and not needed for a platform admin's)."""
    query = sa.select(ApiKey).where(ApiKey.revoked_at.is_(None))
    if is_platform_admin(claims.get("roles") or ()):
        return query
    query = query.where(ApiKey.created_by == str(claims.get("sub")))
    outside = _outside_the_token(account or _account(claims), claims)
    if outside is None:
        return query
    tenant = _key_tenants()
    return query.where(~sa.exists().where(outside(tenant.c.value)))


def _outside_the_token(account: Account | None, claims: dict):
    """A test of a tenant id: one its user may act in that the token does not hold; None
    when there is none. A tenant the user has left guards nothing (the key works there no
    more), so the creator still sees, and may revoke, a key that names it."""
    if account is None:
        return None
    held = sorted(claims.get("tenants") or {})
    if is_platform_admin(account.platform_roles):  # every tenant is theirs
        return lambda tenant: tenant.not_in(held)
    elsewhere = sorted(set(account.memberships) - set(held))
    return (lambda tenant: tenant.in_(elsewhere)) if elsewhere else None


def _key_tenants():
    """A key's ``tenants`` (a JSON list) as rows of a ``value`` column, for a subquery."""
    dialect = db.session.get_bind().dialect.name
    elements = sa.func.json_array_elements_text if dialect == "postgresql" else sa.func.json_each
    return elements(ApiKey.tenants).table_valued("value").alias("key_tenant")


def get_key(claims: dict, key_id: str, for_update: bool = False,
            account: Account | None = None) -> ApiKey:
    """The caller's key; ``for_update`` locks its row until the commit (PostgreSQL), so two
    rotations or a rotation and a revocation at once apply one after the other."""
    if "\x00" in key_id:  # no key has one, and PostgreSQL would refuse to look
        raise NotFound("Unknown API key")
    query = _visible(claims, account).where(ApiKey.id == key_id)
    row = db.session.execute(query.with_for_update() if for_update else query).scalar_one_or_none()
    if row is None:
        raise NotFound("Unknown API key")
    return row


def list_keys(claims: dict) -> Page:
    return paginate(_visible(claims), ApiKey.id)


def revoke_key(claims: dict, key_id: str) -> None:
    row = get_key(claims, key_id, for_update=True)
    row.revoked_at = utcnow()
    db.session.commit()
    services().audit("api_key.revoke", "success", actor=str(claims.get("sub")), target=row.id)


def rotate_key(claims: dict, key_id: str, body: dict) -> IssuedKey:
    """A new secret for the same key and settings; the old one works for the grace period."""
    grace = body.get("grace_period_seconds", 0)
    if not isinstance(grace, int) or isinstance(grace, bool) or not 0 <= grace <= rules.MAX_GRACE_SECONDS:
        raise InvalidRequest(f"'grace_period_seconds' must be 0 to {rules.MAX_GRACE_SECONDS} (7 days)")
    # locked: a second rotation at once would otherwise keep the secret this one replaces as
    # its "previous" one, alive through its grace period
    account = _account(claims)  # once, for both checks
    row = get_key(claims, key_id, for_update=True, account=account)
    # rotating re-issues the key's rights: the rotator must still be able to grant them
    _check_grantable(claims, account, list(row.tenants), list(row.permissions),
                     "api_key.rotate")
    now = utcnow()
    secret = rules.new_api_key()
    row.previous_secret_hash = row.secret_hash if grace else None
    row.previous_valid_until = now + timedelta(seconds=grace) if grace else None
    row.secret_hash = services().secrets.digest(secret)
    row.rotated_at = now
    db.session.commit()
    services().audit("api_key.rotate", "success", actor=str(claims.get("sub")), target=row.id,
                     grace_period_seconds=grace)
    return IssuedKey(row, secret)


def render(row: ApiKey, secret: str | None = None) -> dict:
    now = utcnow()
    issued = row.rotated_at or row.created_at
    age_days = (now - issued).days
    rotation_days = int(current_app.config.get("API_KEY_ROTATION_DAYS", ROTATION_DAYS_DEFAULT))
    body = {
        "id": row.id,
        "name": row.name,
        "created_at": rfc3339(row.created_at.timestamp()),
        "expires_at": rfc3339(row.expires_at.timestamp()) if row.expires_at else None,
        "tenants": row.tenants,
        "permissions": row.permissions,
        "allowed_ips": row.allowed_ips,
        "created_by": row.created_by,
        "last_used_at": rfc3339(row.last_used_at.timestamp()) if row.last_used_at else None,
        "rotated_at": rfc3339(row.rotated_at.timestamp()) if row.rotated_at else None,
        "age_days": age_days,
        "rotation_due": age_days >= rotation_days,
        "expired": row.expires_at is not None and row.expires_at <= now,
    }
    if secret is not None:
        body["key"] = secret
    return body
