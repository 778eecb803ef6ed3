"""Creating, changing and deleting local users (the admin API and the bootstrap build on this).

Every change that takes rights away takes effect at once: disabling, deleting or setting
a password revokes every token and refresh family of the user (the watermark); changing
roles revokes their access tokens, and the next refresh carries the new roles.
"""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from idp.accounts import MAX_PASSWORD, MAX_USERNAME, normalise_username
from idp.errors import Conflict, InvalidRequest, NotFound
from idp.permissions import PLATFORM_ROLES, TENANT_ROLES, is_tenant_id
from idp.tokens import rfc3339

from .extensions import db, services
from .models import ApiKey, Membership, User, utcnow
from .pagination import Page, paginate
from .repositories import account_from
from .tenants import require_tenants

# what a user name is made of (it starts with a letter or a digit), as a regex class
USERNAME_CHARACTERS = "a-z0-9._@+-"
_USERNAME = re.compile(rf"^[a-z0-9][{USERNAME_CHARACTERS}]{{0,{MAX_USERNAME - 1}}}$")
# no control characters (PostgreSQL refuses a NUL; none belongs in an address)
_EMAIL = re.compile(r"^[^@\s\x00-\x1f\x7f]{1,64}@[^@\s\x00-\x1f\x7f]{1,255}$")
MIN_PASSWORD_LENGTH = 8
PATCHABLE = ("roles", "tenants", "disabled", "password", "email")


def validate_username(username: str) -> str:
    username = normalise_username(username)
    if not _USERNAME.fullmatch(username):
        raise InvalidRequest("'username' may hold letters, digits and . _ @ + - "
                             f"(at most {MAX_USERNAME})")
    return username


def validate_email(email: str | None) -> str | None:
    if email is None:
        return None
    if not isinstance(email, str) or not _EMAIL.fullmatch(email):
        raise InvalidRequest("'email' is not an e-mail address")
    return email.strip().lower()


def validate_password(password) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidRequest(f"'password' must have at least {MIN_PASSWORD_LENGTH} characters")
    if not password.strip():  # the sign-in refuses a blank password before checking it
        raise InvalidRequest("'password' must not be blank")
    if len(password) > MAX_PASSWORD:
        raise InvalidRequest(f"'password' is too long (at most {MAX_PASSWORD} characters)")
    return password


def validate_platform_roles(roles) -> list[str]:
    if not isinstance(roles, list) or any(not isinstance(r, str) or r not in PLATFORM_ROLES
                                          for r in roles):
        raise InvalidRequest(f"'roles' must be a list holding only {', '.join(PLATFORM_ROLES)}")
    return sorted(set(roles))


def validate_memberships(tenants) -> dict[str, str]:
    if not isinstance(tenants, list):
        raise InvalidRequest("'tenants' must be a list of {\"id\", \"role\"} objects")
    memberships: dict[str, str] = {}
    for entry in tenants:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str) \
                or not isinstance(entry.get("role"), str):
            raise InvalidRequest("'tenants' must be a list of {\"id\", \"role\"} objects")
        if entry["role"] not in TENANT_ROLES:
            raise InvalidRequest(f"'tenants' role must be one of {', '.join(TENANT_ROLES)}")
        if not is_tenant_id(entry["id"]):
            raise InvalidRequest("'tenants' id is not a tenant id")
        if entry["id"] in memberships:  # two roles in one tenant: which one was meant?
            raise InvalidRequest(f"'tenants' names tenant {entry['id']} twice")
        memberships[entry["id"]] = entry["role"]
    return memberships


def render(user: User) -> dict:
    """The seed's ``user`` object, plus what an admin needs to see."""
    return {**account_from(user).public(), "disabled": user.disabled,
            "created_at": rfc3339(user.created_at.timestamp())}


def create_user(*, username: str, email: str | None, password: str | None,
                platform_roles: list[str] | None = None,
                memberships: dict[str, str] | None = None,
                name: str | None = None, email_verified: bool = False) -> User:
    """Insert a user after validating every field; 409 when the name is taken."""
    username = validate_username(username)
    email = validate_email(email)
    roles = validate_platform_roles(platform_roles or [])
    memberships = memberships or {}
    require_tenants(memberships)
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


def get_user(user_id: str) -> User:
    # an id no user can have (too long, a NUL PostgreSQL would refuse) is looked up nowhere
    user = db.session.get(User, user_id) if isinstance(user_id, str) and len(user_id) <= 36 \
        and "\x00" not in user_id else None
    if user is None:
        raise NotFound("Unknown user")
    return user


def list_users() -> Page:
    return paginate(sa.select(User), User.username)


def update_user(user_id: str, changes: dict) -> tuple[User, list[str]]:
    """Apply an admin's patch; returns the user and the names of the fields changed."""
    unknown = sorted(set(changes) - set(PATCHABLE))
    if unknown:
        raise InvalidRequest(f"'{unknown[0]}' cannot be changed here")
    if "roles" in changes or "disabled" in changes:
        _lock_platform_admins()
    user = get_user(user_id)
    if "roles" in changes:
        user.platform_roles = validate_platform_roles(changes["roles"])
    if "tenants" in changes:
        memberships = validate_memberships(changes["tenants"])
        require_tenants(memberships)
        user.memberships = [Membership(tenant_id=t, role=r) for t, r in memberships.items()]
    if "disabled" in changes:
        if not isinstance(changes["disabled"], bool):
            raise InvalidRequest("'disabled' must be a boolean")
        user.disabled = changes["disabled"]
    if "password" in changes:
        user.password_hash = services().passwords.hash(validate_password(changes["password"]))
    if "email" in changes:
        user.email = validate_email(changes["email"])
    db.session.flush()
    _keep_a_platform_admin()
    db.session.commit()
    changed = sorted(changes)
    tokens = services().tokens
    if user.disabled or "password" in changes:
        tokens.revoke_user(user.id)
    elif "roles" in changes or "tenants" in changes:
        tokens.revocations.revoke_user_access_tokens(user.id)
    return user, changed


def delete_user(user_id: str) -> list[str]:
    """Delete the user, revoke their tokens, and revoke the API keys they created."""
    _lock_platform_admins()
    user = get_user(user_id)
    db.session.delete(user)
    db.session.flush()
    _keep_a_platform_admin()
    revoked_keys = list(db.session.execute(
        sa.update(ApiKey).where(ApiKey.created_by == user_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=utcnow()).returning(ApiKey.id)).scalars())
    db.session.commit()
    services().tokens.revoke_user(user_id)
    return revoked_keys


def _is_platform_admin_row():
    # platform_roles is a short JSON list; matching its text works on every backend
    return sa.cast(User.platform_roles, sa.Text).like('%"admin"%')


def _lock_platform_admins() -> None:
    """Lock the platform admins' rows until this transaction ends.

    Two admins demoting each other at once would each still see the other as admin (write
    skew under READ COMMITTED) and leave none; with the rows locked first, the second change
    waits for the first and then sees it. (SQLite serialises writers by itself.)
    """
    db.session.execute(sa.select(User.id).where(_is_platform_admin_row()).with_for_update()).all()


def _keep_a_platform_admin() -> None:
    """Refuse a change that would leave no enabled platform admin (nobody could fix it)."""
    admin = db.session.execute(sa.select(User.id).where(
        User.disabled.is_(False), _is_platform_admin_row()).limit(1)).first()
    if admin is None:
        db.session.rollback()
        raise Conflict("This would leave no enabled platform admin")


def any_user_exists() -> bool:
    return db.session.execute(sa.select(User.id).limit(1)).first() is not None
