"""Durable state: users, tenants, memberships, OAuth clients, consents, signing keys.

Short-lived state (refresh families, revocation copies, counters) is in the store, not here.
"""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .extensions import db


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes on every backend (SQLite would drop the zone)."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use aware UTC")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        return None if value is None else value.replace(tzinfo=timezone.utc)


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(sa.String(36), primary_key=True)
    # stored lower-cased: user names compare without regard to case
    username: Mapped[str] = mapped_column(sa.String(150), unique=True)
    email: Mapped[str | None] = mapped_column(sa.String(320))
    email_verified: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    name: Mapped[str | None] = mapped_column(sa.String(200))
    # argon2id (PHC string); None for users who only sign in through an upstream IdP
    password_hash: Mapped[str | None] = mapped_column(sa.String(255))
    platform_roles: Mapped[list] = mapped_column(sa.JSON, default=list)
    disabled: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    memberships: Mapped[list["Membership"]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin",
        order_by="Membership.tenant_id",
    )


class Tenant(db.Model):
    __tablename__ = "tenants"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Membership(db.Model):
    """A user's role (viewer, editor, admin) in one tenant."""

    __tablename__ = "memberships"

    user_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    tenant_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("tenants.id", ondelete="CASCADE"), primary_key=True,
        index=True)
    role: Mapped[str] = mapped_column(sa.String(16))

    user: Mapped[User] = relationship(back_populates="memberships")


class Client(db.Model):
    """An OAuth client, with RFC 7591 metadata names."""

    __tablename__ = "oauth_clients"

    client_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    # keyed HMAC-SHA256 of a 256-bit secret; None for public clients
    client_secret_hash: Mapped[str | None] = mapped_column(sa.String(64))
    client_name: Mapped[str] = mapped_column(sa.String(200))
    redirect_uris: Mapped[list] = mapped_column(sa.JSON, default=list)
    post_logout_redirect_uris: Mapped[list] = mapped_column(sa.JSON, default=list)
    grant_types: Mapped[list] = mapped_column(sa.JSON, default=list)
    response_types: Mapped[list] = mapped_column(sa.JSON, default=list)
    token_endpoint_auth_method: Mapped[str] = mapped_column(sa.String(32))
    scope: Mapped[str] = mapped_column(sa.Text, default="")
    # first-party clients skip the consent screen
    first_party: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    # client_credentials rights: {tenant id: [permission, ...]}
    tenant_permissions: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # resource servers may call the introspection endpoint (RFC 7662 §2.1)
    resource_server: Mapped[bool] = mapped_column(sa.Boolean, default=False,
                                                  server_default=sa.false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Consent(db.Model):
    """What a user allowed a third-party client (idp/consents.py); revocable by the user."""

    __tablename__ = "consents"

    user_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    client_id: Mapped[str] = mapped_column(
        sa.String(64), sa.ForeignKey("oauth_clients.client_id", ondelete="CASCADE"),
        primary_key=True, index=True)
    # space-separated scopes
    scope: Mapped[str] = mapped_column(sa.Text)
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SigningKey(db.Model):
    """An RSA signing key; the private half sealed with the KEK (see keys/sealing.py)."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    alg: Mapped[str] = mapped_column(sa.String(16))
    state: Mapped[str] = mapped_column(sa.String(16))
    public_jwk: Mapped[dict] = mapped_column(sa.JSON)
    sealed_private: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    publish_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # at most one active key, whatever the number of workers and hosts racing
        sa.Index("uq_signing_keys_one_active", "state", unique=True,
                 postgresql_where=sa.text("state = 'active'"),
                 sqlite_where=sa.text("state = 'active'")),
    )


class Revocation(db.Model):
    """The durable record of a revocation; Redis holds the fast copy (idp/revocation.py).

    kind ``jti`` (one access token), ``sid`` (a refresh family), ``user`` (a watermark:
    every token of the user issued up to ``revoked_at``; ``uat`` for access tokens only) or
    ``cli`` (a watermark on a deleted client's access tokens) or ``grt`` (a watermark on one
    user's grant to one client: consent withdrawn). Rows are useless after ``expires_at``.
    """

    __tablename__ = "revocations"

    kind: Mapped[str] = mapped_column(sa.String(8), primary_key=True)
    subject: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    revoked_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class ApiKey(db.Model):
    """An ``ic_live_`` API key: permissions in tenants, held as a keyed hash only.

    Lookup is by ``secret_hash`` (unique index), O(1). During a rotation grace period the
    previous secret still works until ``previous_valid_until``.
    """

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(100))
    secret_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    previous_secret_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    previous_valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    tenants: Mapped[list] = mapped_column(sa.JSON)
    permissions: Mapped[list] = mapped_column(sa.JSON)
    allowed_ips: Mapped[list] = mapped_column(sa.JSON, default=list)
    # not a foreign key: the key and its audit trail outlive a deleted creator (revoked)
    created_by: Mapped[str] = mapped_column(sa.String(36), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    rotated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AuditEvent(db.Model):
    """Who did what, when, from where, and how it ended."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    action: Mapped[str] = mapped_column(sa.String(64), index=True)
    outcome: Mapped[str] = mapped_column(sa.String(16))
    actor: Mapped[str | None] = mapped_column(sa.String(200), index=True)
    target: Mapped[str | None] = mapped_column(sa.String(200))
    client_ip: Mapped[str | None] = mapped_column(sa.String(64))
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)


class SsoConnection(db.Model):
    """An upstream identity provider users sign in through (contract §7): one per type.

    ``config`` is the validated, non-secret configuration as the admin API took it; an OIDC
    connection's client secret is sealed with the KEK (context ``sso:<provider>:client_secret``)
    and never leaves the server. ``updated_at`` changes with every replacement, which is how
    each worker's connector registry (``app/sso/registry.py``) notices a new configuration.
    """

    __tablename__ = "sso_connections"

    # okta | azure | saml
    provider: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    config: Mapped[dict] = mapped_column(sa.JSON)
    # None for SAML (nothing secret)
    sealed_client_secret: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FederatedIdentity(db.Model):
    """A local user reached through an upstream identity (``app/sso/identities.py``).

    The link is (provider, upstream, subject): ``upstream`` is what the subject is unique
    within — the Okta org's domain, the Azure AD directory (tenant id), the SAML IdP's entity
    id — so pointing a connection at another upstream never reaches the users of the
    previous one. ``id`` is a SHA-256 of the three, keeping the unique key short whatever
    the upstream sends.
    """

    __tablename__ = "federated_identities"

    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(sa.String(16))
    upstream: Mapped[str] = mapped_column(sa.String(1024))
    subject: Mapped[str] = mapped_column(sa.String(1024))
    user_id: Mapped[str] = mapped_column(
        sa.String(36), sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship()
