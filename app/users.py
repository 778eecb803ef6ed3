"""Creating and changing local users (the admin API and the bootstrap build on this)."""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from idp.accounts import normalise_username
from idp.errors import Conflict, InvalidRequest, NotFound
from idp.permissions import PLATFORM_ROLES, TENANT_ROLES

from .extensions import db, services
from .models import Membership, Tenant, User

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,149}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")
MIN_PASSWORD_LENGTH = 8


def validate_username(username: str) -> str:
    username = normalise_username(username)
    if not _USERNAME.match(username):
        raise InvalidRequest("'username' may hold letters, digits and . _ @ + - (at most 150)")
    return username


def validate_email(email: str | None) -> str | None:
    if email is None:
        return None
    if not _EMAIL.match(email):
        raise InvalidRequest("'email' is not an e-mail address")
    return email.strip().lower()


def validate_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"'password' must have at least {MIN_PASSWORD_LENGTH} characters")
    return password


def validate_platform_roles(roles: list) -> list[str]:
    if any(not isinstance(role, str) or role not in PLATFORM_ROLES for role in roles):
        raise InvalidRequest(f"'roles' may only hold {', '.join(PLATFORM_ROLES)}")
    return sorted(set(roles))


def validate_memberships(tenants: list) -> dict[str, str]:
    memberships: dict[str, str] = {}
    for entry in tenants:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) \
                or not isinstance(entry.get("role"), str):
            raise InvalidRequest("'tenants' must be a list of {\"id\", \"role\"} objects")
        if entry["role"] not in TENANT_ROLES:
            raise InvalidRequest(f"'tenants' role must be one of {', '.join(TENANT_ROLES)}")
        memberships[entry["id"]] = entry["role"]
    return memberships


def create_user(*, username: str, email: str | None, password: str | None,
                platform_roles: list[str] | None = None,
                memberships: dict[str, str] | None = None,
                name: str | None = None, email_verified: bool = False) -> User:
    """Insert a user after validating every field; 409 when the name is taken."""
    username = validate_username(username)
    email = validate_email(email)
    roles = validate_platform_roles(platform_roles or [])
    memberships = memberships or {}
    _require_tenants(memberships)
    user = User(
        id=str(uuid.uuid4()), username=username, email=email, name=name,
        email_verified=email_verified,
        password_hash=services().passwords.hash(validate_password(password)) if password else None,
        platform_roles=roles, disabled=False,
    )
    user.memberships = [Membership(tenant_id=t, role=r) for t, r in memberships.items()]
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("A user with this username already exists") from None
    return user


def _require_tenants(memberships: dict[str, str]) -> None:
    if not memberships:
        return
    found = set(db.session.execute(
        sa.select(Tenant.id).where(Tenant.id.in_(list(memberships)))).scalars())
    missing = sorted(set(memberships) - found)
    if missing:
        raise NotFound(f"Unknown tenant: {missing[0]}")


def any_user_exists() -> bool:
    return db.session.execute(sa.select(User.id).limit(1)).first() is not None
