"""Stored SSO connections: what ``/api/v1/admin/sso`` takes, keeps and shows.

One connection per provider type (``okta``, ``azure``, ``saml``); posting one again replaces
it. The body is validated by the connector's own configuration code (``federation.config``,
``federation.saml.SAMLConfig``): an ``InvalidConfig`` names the field and becomes a 400.
What is stored is the validated, non-secret configuration — the form the same code reads
back — and, for OpenID Connect, the client secret sealed with the KEK (AES-256-GCM, its
context naming the provider, so a sealed secret moved to another row does not open).
Secrets are never returned, logged or audited.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Mapping

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from federation.config import CONFIG_BUILDERS, OIDCConfig, url_problem
from federation.grants import InvalidConfig
from federation.saml import SAMLConfig
from idp.errors import Conflict, InvalidRequest, NotFound
from idp.tokens import rfc3339
from keys.sealing import Sealer, SealingError

from ..extensions import db, services
from ..models import SsoConnection, utcnow
from ..tenants import require_tenants
from . import OIDC_PROVIDERS, acs_url, callback_url, login_url, sp_entity_id

UpstreamConfig = OIDCConfig | SAMLConfig


@dataclasses.dataclass(frozen=True)
class StoredConnection:
    provider: str
    config: dict
    sealed_client_secret: bytes | None
    created_at: datetime
    updated_at: datetime


@dataclasses.dataclass(frozen=True)
class Parsed:
    """An admin's body, validated: the stored form, the secret to seal, and the config."""

    stored: dict
    client_secret: str | None
    config: UpstreamConfig


def secret_context(provider: str) -> str:
    return f"sso:{provider}:client_secret"


def parse(provider: str, body: object, settings: Mapping) -> Parsed:
    """Validate an admin's body for ``provider``; raises ``InvalidConfig`` naming the field."""
    if provider in OIDC_PROVIDERS:
        config = CONFIG_BUILDERS[provider](body, settings)
        return Parsed(config.to_dict(), config.client_secret, config)
    config = SAMLConfig.from_dict(body, allow_http=bool(settings.get("ALLOW_HTTP_UPSTREAMS")))
    if config.allow_idp_initiated:
        _check_idp_initiated_targets(config.relay_state_allowlist)
    return Parsed(config.to_dict(), None, config)


def upstream_config(stored: StoredConnection, settings: Mapping, sealer: Sealer) -> UpstreamConfig:
    """The connector configuration of a stored connection, validated again as it is now
    (an expired certificate, or ``IDP_ALLOW_HTTP_UPSTREAMS`` turned off, makes it unusable).

    Raises ``InvalidConfig``, or ``SealingError`` when the secret does not open under the KEK.
    """
    if stored.provider in OIDC_PROVIDERS:
        secret = sealer.open(stored.sealed_client_secret or b"", secret_context(stored.provider))
        return CONFIG_BUILDERS[stored.provider](
            {**stored.config, "client_secret": secret.decode()}, settings)
    return SAMLConfig.from_dict(stored.config,
                                allow_http=bool(settings.get("ALLOW_HTTP_UPSTREAMS")))


def _check_idp_initiated_targets(relay_states: tuple[str, ...]) -> None:
    """With IdP-initiated login on, a RelayState names the page the browser goes to once
    signed in (``app/sso/login.py``): each must be an https URL (http only on loopback)."""
    for value in relay_states:
        if url_problem(value, allow_http=True, allow_query=True):
            raise InvalidConfig("relay_state_allowlist",
                                "entries must be https URLs (http only on loopback) of the pages "
                                "an IdP-initiated login may go to")


# -- the table ---------------------------------------------------------------------------

def _stored(row) -> StoredConnection:
    return StoredConnection(provider=row.provider, config=dict(row.config),
                            sealed_client_secret=row.sealed_client_secret,
                            created_at=row.created_at, updated_at=row.updated_at)


class SqlConnections:
    """Reads in their own short transactions: the registry asks on every sign-in."""

    table = SsoConnection.__table__

    def find(self, provider: str) -> StoredConnection | None:
        with db.engine.connect() as conn:
            row = conn.execute(sa.select(self.table)
                               .where(self.table.c.provider == provider)).first()
        return None if row is None else _stored(row)

    def providers(self) -> list[str]:
        with db.engine.connect() as conn:
            return list(conn.execute(sa.select(self.table.c.provider)
                                     .order_by(self.table.c.provider)).scalars())

    def all(self) -> list[StoredConnection]:
        with db.engine.connect() as conn:
            rows = conn.execute(sa.select(self.table).order_by(self.table.c.provider)).all()
        return [_stored(row) for row in rows]


def save_connection(provider: str,
                    body: object) -> tuple[StoredConnection, UpstreamConfig, bool]:
    """Create or replace the connection of ``provider``: the stored connection, its validated
    configuration, and True when it was created."""
    try:
        parsed = parse(provider, body, current_app.config)
    except InvalidConfig as error:
        raise InvalidRequest(error.message) from None
    mapping = parsed.config.tenants
    require_tenants({grant.tenant for grant in mapping.default_tenants} | {
        grant.tenant for grants in mapping.group_mappings.values() for grant in grants})
    row = db.session.get(SsoConnection, provider)
    created = row is None
    now = utcnow()
    if created:
        row = SsoConnection(provider=provider, created_at=now)
        db.session.add(row)
    elif now <= row.updated_at:
        now = row.updated_at + timedelta(microseconds=1)  # every version has its own stamp
    row.config = parsed.stored
    row.sealed_client_secret = (None if parsed.client_secret is None else services().sealer.seal(
        parsed.client_secret.encode(), secret_context(provider)))
    row.updated_at = now
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("The connection was created meanwhile; send it again") from None
    return _stored(row), parsed.config, created


def get_connection(provider: str) -> StoredConnection:
    stored = SqlConnections().find(provider)
    if stored is None:
        raise NotFound(f"No {provider} connection is configured")
    return stored


def list_connections() -> list[StoredConnection]:
    return SqlConnections().all()


def delete_connection(provider: str) -> None:
    """Remove the connection. Its users and their links stay: configuring the same upstream
    again reaches the same local users."""
    result = db.session.execute(sa.delete(SsoConnection).where(SsoConnection.provider == provider))
    db.session.commit()
    if result.rowcount != 1:
        raise NotFound(f"No {provider} connection is configured")


# -- what admins see ---------------------------------------------------------------------

def render(stored: StoredConnection, config: UpstreamConfig | None = None) -> dict:
    """The connection as configured — never a secret — with what to register upstream and
    whether it can be used now (``usable``, ``warnings``). ``config`` is the connection's
    configuration when the caller has just validated it (``save_connection``); without
    it the stored one is validated (and its secret opened) as it is now."""
    svc = services()
    saml_unavailable = svc.connectors.saml_unavailable
    issuer = str(current_app.config["ISSUER"])
    body = {"provider": stored.provider, **stored.config}
    warnings: list[str] = []
    if config is None:
        try:
            config = upstream_config(stored, current_app.config, svc.sealer)
        except InvalidConfig as error:
            warnings.append(f"This connection cannot be used now: {error.message}.")
        except SealingError:
            warnings.append("The client secret does not open with the current "
                            "key-encryption key; post the connection again.")
    if stored.provider in OIDC_PROVIDERS:
        if config is not None:
            body["issuer"] = config.issuer
        body["redirect_uri"] = callback_url(issuer, stored.provider)
    else:
        body.update(certificate_expires_at=None, sp_entity_id=sp_entity_id(issuer),
                    acs_url=acs_url(issuer), metadata_url=sp_entity_id(issuer))
        if config is not None:  # else a warning says why (an expired certificate, say)
            body["certificate_expires_at"] = rfc3339(config.certificate_not_after.timestamp())
            warnings.extend(config.warnings)
        if saml_unavailable:
            warnings.append(saml_unavailable)
    usable = config is not None and not (stored.provider == "saml" and saml_unavailable)
    body.update(login_url=login_url(issuer, stored.provider), usable=usable, warnings=warnings,
                created_at=rfc3339(stored.created_at.timestamp()),
                updated_at=rfc3339(stored.updated_at.timestamp()))
    return body
