"""Each worker's connectors, built from the stored SSO connections.

An ``OIDCConnector`` caches its upstream's discovery document and JWKS, so a worker keeps
one per connection and reuses it (dex's ``Open()`` once per connector). Which one to use
is decided on every sign-in by reading the connection's row (one primary-key lookup): the
built connector serves as long as the row's ``updated_at`` is the one it was built from,
and a SAML one until its IdP certificate expires; then it is built again, which refuses
the connection (503) as on a worker that never built it.

Staleness: none for the configuration — a connection an admin replaced or deleted is seen
by every worker, on every host, at its next sign-in. What a worker may hold that is older
than the upstream is the connector's own cache: the upstream's discovery for up to an hour
and its JWKS for up to 15 minutes (an unknown ``kid`` refetches it, at most every 30 s),
so an upstream's key rotation is picked up at once, an endpoint move within the hour.
The SAML connector keeps pysaml2's client set up for its IdP, and no request state.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Iterable, Mapping

from federation.connector import CallbackConnector, SAMLConnector
from federation.grants import InvalidConfig
from federation.oidc import OIDCConnector
from federation.saml import SAMLConfig, SAMLServiceProvider, XmlsecMissing, xmlsec_binary
from idp.clock import now
from idp.errors import Unavailable
from keys.sealing import Sealer, SealingError

from . import PROVIDERS
from .connections import SqlConnections, StoredConnection, UpstreamConfig, upstream_config

log = logging.getLogger("infracast.sso")


class ConnectionUnusable(Unavailable):
    """The stored connection no longer validates (an expired IdP certificate, say) or its
    secret does not open; the detail goes to the log, the user sees this."""

    reason = "misconfigured"
    message = ("Sign-in through this identity provider is not available until an "
               "administrator updates its configuration.")


class SamlUnavailable(Unavailable):
    reason = "unavailable"
    message = "SAML sign-in is not available on this server: the xmlsec1 program is missing."


def saml_availability() -> str | None:
    """None when SAML can be used in this process; else why not. Called once at start:
    a missing xmlsec1 is logged as an error, and SAML answers 503 (``SamlUnavailable``)
    while everything else works."""
    try:
        xmlsec_binary()
    except XmlsecMissing as error:
        log.error(str(error), extra={"fields": {"event": "startup", "saml": "unavailable"}})
        return SamlUnavailable.message
    return None


@dataclass(frozen=True)
class Connection:
    """A usable connection: its connector and how its users are brokered."""

    provider: str
    config: UpstreamConfig
    connector: CallbackConnector | SAMLConnector = field(repr=False)
    version: datetime

    @property
    def usable_until(self) -> float | None:
        """Unix time from which the configuration no longer validates (a SAML IdP
        certificate's not-after: neither xmlsec1 nor pysaml2 checks it), or None."""
        if isinstance(self.config, SAMLConfig):
            return self.config.certificate_not_after.timestamp()
        return None

    @property
    def upstream(self) -> str:
        """What upstream subjects are unique within (see ``FederatedIdentity``)."""
        return self.config.upstream

    def tenant_roles(self, groups: Iterable[str]) -> dict[str, str]:
        """Tenant id -> role from ``default_tenants`` and ``group_mappings``."""
        return self.config.tenants.tenant_roles(groups)


class ConnectorRegistry:
    def __init__(self, connections: SqlConnections, settings: Mapping, sealer: Sealer, *,
                 sp_entity_id: str, saml_unavailable: str | None = None):
        self.connections = connections
        self.settings = settings
        self.sealer = sealer
        self.sp_entity_id = sp_entity_id
        # why SAML cannot be used in this process (xmlsec1 missing), or None
        self.saml_unavailable = saml_unavailable
        self._lock = threading.Lock()
        self._built: dict[str, Connection] = {}

    def get(self, provider: str) -> Connection | None:
        """The connection of ``provider`` as stored now, or None when there is none.

        Raises ``ConnectionUnusable`` (503) when it is stored but cannot be used.
        """
        stored = self.connections.find(provider) if provider in PROVIDERS else None
        with self._lock:
            built = self._built.get(provider)
            if stored is None:
                self._built.pop(provider, None)
                return None
        if (built is not None and built.version == stored.updated_at
                and (built.usable_until is None or now() < built.usable_until)):
            return built
        connection = self._build(stored)
        with self._lock:
            self._built[provider] = connection
        return connection

    def available(self) -> list[str]:
        """The providers a user may be offered (the login page's buttons, ``idp_hint``)."""
        return [provider for provider in self.connections.providers()
                if provider in PROVIDERS and not (provider == "saml" and self.saml_unavailable)]

    def _build(self, stored: StoredConnection) -> Connection:
        try:
            config = upstream_config(stored, self.settings, self.sealer)
        except InvalidConfig as error:
            message = f"its configuration is no longer valid ({error.message})"
        except SealingError:
            message = "its client secret does not open with the current key-encryption key"
        else:
            connector = (SAMLServiceProvider(config, self.sp_entity_id)
                         if stored.provider == "saml" else OIDCConnector(config))
            return Connection(provider=stored.provider, config=config, connector=connector,
                              version=stored.updated_at)
        log.error("sso connection unusable", extra={"fields": {
            "provider": stored.provider, "problem": message}})
        raise ConnectionUnusable()
