"""Brokering: an upstream ``Identity`` to a local user (contract §7).

``FederatedAccounts.sign_in(connection, identity)`` is the whole interface. Its rules:

* **The link is the only way in.** A federated identity (provider, upstream, subject)
  reaches the local user it was linked to on its first login, and nothing else does: no
  local account is ever found by e-mail, so an upstream that asserts someone's address
  cannot take their account over. A local user with the same e-mail stays a separate user.
* **First login** creates the user: user name ``{provider}.{preferred_username or subject}``
  reduced to the user-name rules (with a random suffix when that is taken), e-mail (when it
  is an address), ``email_verified`` as the upstream says, name, no password, no platform
  role. It is audited (``sso.user.create``).
* **Later logins** refresh e-mail, ``email_verified`` and name from the upstream.
* **Memberships** of a federated user are managed by the connection: every login sets them
  to what ``default_tenants`` and ``group_mappings`` give for the groups of that login
  (tenants that no longer exist are skipped), replacing any an admin set meanwhile. When
  they change, the user's access tokens are revoked, as when an admin changes roles; the
  next refresh carries the new roles.
* **A disabled user** cannot sign in through an upstream either (``FederatedUserDisabled``).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import unicodedata
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from federation.connector import Identity
from idp.accounts import Account
from idp.errors import Forbidden, InvalidRequest, Unavailable

from ..extensions import db
from ..models import FederatedIdentity, Membership, Tenant, User, utcnow
from ..users import (MAX_USERNAME, USERNAME_CHARACTERS, validate_email,
                     validate_username)
from .registry import Connection

log = logging.getLogger("infracast.sso")

MAX_NAME = 200
_NOT_IN_USERNAMES = re.compile(f"[^{USERNAME_CHARACTERS}]+")
_ATTEMPTS = 3


class FederatedUserDisabled(Forbidden):
    reason = "disabled"
    message = "This account is disabled. Contact your administrator."

    def __init__(self, user_id: str):
        super().__init__()
        self.user_id = user_id  # the audit's actor


@dataclass(frozen=True)
class BrokeredLogin:
    account: Account
    created: bool
    memberships_changed: bool


def link_id(provider: str, upstream: str, subject: str) -> str:
    return hashlib.sha256("\x00".join((provider, upstream, subject)).encode()).hexdigest()


def base_username(provider: str, identity: Identity) -> str:
    """``{provider}.{preferred_username or subject}`` made a user name (``validate_username``):
    lower case, accents dropped, other characters as ``-``, cut to ``MAX_USERNAME``."""
    local = unicodedata.normalize("NFKD", identity.username or identity.subject)
    local = local.encode("ascii", "ignore").decode().lower()
    local = _NOT_IN_USERNAMES.sub("-", local).strip("-.") or "user"
    return validate_username(f"{provider}.{local}"[:MAX_USERNAME])


class FederatedAccounts:
    def __init__(self, accounts, revocations, audit):
        self.accounts = accounts
        self.revocations = revocations
        self.audit = audit

    def sign_in(self, connection: Connection, identity: Identity) -> BrokeredLogin:
        """The local user of ``identity`` (created on its first login), brought up to date."""
        for _ in range(_ATTEMPTS):
            try:
                user_id, created, changed = self._link(connection, identity)
                break
            except IntegrityError:
                # a concurrent first login of the same identity, or a user name taken
                # meanwhile: the next attempt finds the link or picks another name
                db.session.rollback()
        else:
            log.error("federated sign-in kept conflicting", extra={"fields": {
                "provider": connection.provider}})
            raise Unavailable()
        if created:
            self.audit("sso.user.create", "success", actor=f"sso:{connection.provider}",
                       target=user_id, provider=connection.provider)
        elif changed:  # tokens issued with the old memberships stop working
            self.revocations.revoke_user_access_tokens(user_id)
        account = self.accounts.find_by_id(user_id)
        if account is None or account.disabled:
            # deleted or disabled by an admin since the link was read, a moment ago
            raise FederatedUserDisabled(user_id)
        return BrokeredLogin(account, created, changed)

    def _link(self, connection: Connection, identity: Identity) -> tuple[str, bool, bool]:
        now = utcnow()
        key = link_id(connection.provider, connection.upstream, identity.subject)
        link = db.session.get(FederatedIdentity, key, with_for_update=True)
        if link is None and identity.former_subject:
            link = self._rekeyed(connection, identity, key)
        if link is None:
            user = User(id=str(uuid.uuid4()), username=self._free_username(connection, identity),
                        password_hash=None, platform_roles=[], disabled=False, created_at=now)
            db.session.add(FederatedIdentity(
                id=key, provider=connection.provider, upstream=connection.upstream,
                subject=identity.subject, user=user, created_at=now, last_login_at=now))
        else:
            user = db.session.get(User, link.user_id)
            if user.disabled:
                refused = FederatedUserDisabled(user.id)  # before the rollback expires user
                db.session.rollback()
                raise refused
            link.last_login_at = now
        user.email = _email(identity.email)
        user.email_verified = bool(identity.email_verified and user.email)
        user.name = (identity.name or "").strip()[:MAX_NAME] or None
        changed = self._set_memberships(user, connection.tenant_roles(identity.groups))
        db.session.commit()
        return user.id, link is None, changed

    @staticmethod
    def _rekeyed(connection: Connection, identity: Identity,
                 key: str) -> FederatedIdentity | None:
        """The link an earlier release made under the identity's former subject (Azure AD's
        sub), moved to its subject now; None when there is none. The former subject comes
        from the same signed ID token, and is unique within the same upstream."""
        former = db.session.get(FederatedIdentity, link_id(
            connection.provider, connection.upstream, identity.former_subject),
            with_for_update=True)
        if former is None:
            return None
        former.id, former.subject = key, identity.subject
        log.info("federated identity re-keyed to its new subject claim", extra={"fields": {
            "provider": connection.provider}})
        return former

    @staticmethod
    def _set_memberships(user: User, roles: dict[str, str]) -> bool:
        existing = set(db.session.execute(
            sa.select(Tenant.id).where(Tenant.id.in_(list(roles)))).scalars()) if roles else set()
        wanted = {tenant: role for tenant, role in roles.items() if tenant in existing}
        if wanted == {m.tenant_id: m.role for m in user.memberships}:
            return False
        user.memberships = [Membership(tenant_id=t, role=r) for t, r in sorted(wanted.items())]
        return True

    @staticmethod
    def _free_username(connection: Connection, identity: Identity) -> str:
        base = base_username(connection.provider, identity)
        candidate = base
        while db.session.execute(sa.select(User.id).where(User.username == candidate)).first():
            candidate = f"{base[:MAX_USERNAME - 13]}-{secrets.token_hex(6)}"
        return candidate


def _email(value: str | None) -> str | None:
    """The upstream's e-mail when it is an address (never cut short into another one)."""
    try:
        return validate_email(value) if value else None
    except InvalidRequest:
        return None
