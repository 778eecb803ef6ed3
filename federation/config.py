"""Validated configuration of the OpenID Connect connections (contract §7).

An admin submits a connection as JSON; ``okta_config`` and ``azure_config`` turn it into an
``OIDCConfig`` or raise ``InvalidConfig`` naming the offending field. Both build the same
``OIDCConfig`` (one connector, two configurations), like dex's ``ConnectorsConfig``.

Fields of a connection:

- Okta: ``domain`` (a host name, e.g. ``dev-123456.okta.com``), ``client_id``,
  ``client_secret``, optional ``issuer`` (a custom authorization server,
  ``https://{domain}/oauth2/{id}``; default ``https://{domain}``).
- Azure AD: ``tenant_id`` (a GUID), ``client_id``, ``client_secret``; the issuer is
  ``{AZURE_AUTHORITY_HOST}/{tenant_id}/v2.0``. A user is their ``oid`` (object id), not
  their ``sub``, which differs for every app registration.
- Both: optional ``default_tenants``, a list of tenant grants every user of the connection
  gets, and ``group_mappings``, an object from upstream group name (Okta) or object id
  (Azure AD) to a list of tenant grants. A tenant grant is ``{"id": tenant, "role": role}``,
  the shape of a user's ``tenants`` (contract §3); where several grants name one tenant, the
  strongest role wins.

Upstream URLs are ``https://``; ``http://`` is accepted only on a loopback host and only
with ``IDP_ALLOW_HTTP_UPSTREAMS=1`` (development and tests).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Callable, Mapping
from urllib.parse import urlsplit

from federation.grants import (MAPPING_FIELDS, InvalidConfig, TenantGrant, TenantMapping,
                               known_fields, printable)

__all__ = ["CONFIG_BUILDERS", "InvalidConfig", "OIDCConfig", "TenantGrant", "azure_config",
           "is_loopback", "okta_config", "url_problem"]

DEFAULT_AZURE_AUTHORITY_HOST = "https://login.microsoftonline.com"

OKTA_SCOPES = ("openid", "email", "profile", "groups")
# Azure AD has no "groups" scope: groups come from the app registration's group claims.
AZURE_SCOPES = ("openid", "email", "profile")
# Azure AD's sub is pairwise per app registration: a new client_id would make every user
# someone new. oid, the user's object id, is the same for every app of the directory (it
# comes with the "profile" scope) and is required.
AZURE_SUBJECT_CLAIM = "oid"

MAX_CREDENTIAL_LENGTH = 512

_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_OKTA_SERVER_PATH = re.compile(r"/oauth2/[A-Za-z0-9]{1,64}")


@dataclass(frozen=True)
class OIDCConfig:
    """One upstream OpenID Connect provider, as the connector uses it."""

    provider: str
    # what its subjects are unique within: the Okta domain, the Azure AD tenant id
    upstream: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    scopes: tuple[str, ...]
    # whether the upstream's endpoints may be http:// on loopback (IDP_ALLOW_HTTP_UPSTREAMS)
    allow_http: bool = False
    tenants: TenantMapping = field(default_factory=TenantMapping)
    # the ID token claim that is the Identity's subject (see AZURE_SUBJECT_CLAIM)
    subject_claim: str = "sub"

    def to_dict(self) -> dict:
        """The stored (and listed) form: the fields its builder reads back, without the
        client secret (which is stored sealed)."""
        if self.provider == "okta":
            fields = {"domain": self.upstream}
            if self.issuer != f"https://{self.upstream}":
                fields["issuer"] = self.issuer
        else:
            fields = {"tenant_id": self.upstream}
        return {**fields, "client_id": self.client_id, **self.tenants.to_dict()}


def url_problem(url: str, allow_http: bool, allow_query: bool = False) -> str | None:
    """Why ``url`` cannot name an upstream endpoint (or a page to send the browser to), or
    None when it can: absolute, ``https://`` (``http://`` only on a loopback host and only
    with ``allow_http``), no user name or password, no fragment, and a query only with
    ``allow_query``."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return "is not a valid URL"
    if "@" in parts.netloc or not parts.hostname:
        return "must be an absolute URL with a host and no user name or password"
    if parts.fragment or "#" in url:
        return "must not have a fragment" if allow_query else "must not have a query or fragment"
    if not allow_query and (parts.query or "?" in url):
        return "must not have a query or fragment"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_http and is_loopback(parts.hostname):
        return None
    if allow_http:
        return "must be an https:// URL (http:// only on a loopback host)"
    return "must be an https:// URL"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def okta_config(raw: object, settings: Mapping) -> OIDCConfig:
    """An Okta connection: ``domain``, ``client_id``, ``client_secret``, ``issuer``?"""
    fields = known_fields(raw, ("domain", "client_id", "client_secret"),
                          ("issuer", *MAPPING_FIELDS))
    allow_http = bool(settings.get("ALLOW_HTTP_UPSTREAMS", False))
    domain = _host_name(fields["domain"])
    issuer = f"https://{domain}"
    if "issuer" in fields:
        issuer = _okta_issuer(fields["issuer"], domain, allow_http)
    return _build("okta", domain, fields, issuer, OKTA_SCOPES, allow_http)


def azure_config(raw: object, settings: Mapping) -> OIDCConfig:
    """An Azure AD (Entra ID) connection: ``tenant_id``, ``client_id``, ``client_secret``."""
    fields = known_fields(raw, ("tenant_id", "client_id", "client_secret"), MAPPING_FIELDS)
    allow_http = bool(settings.get("ALLOW_HTTP_UPSTREAMS", False))
    tenant_id = fields["tenant_id"]
    if not isinstance(tenant_id, str) or not _GUID.fullmatch(tenant_id.lower()):
        raise InvalidConfig("tenant_id", "must be the directory (tenant) id, a GUID such as "
                                         "72f988bf-86f1-41af-91ab-2d7cd011db47")
    authority = str(settings.get("AZURE_AUTHORITY_HOST") or DEFAULT_AZURE_AUTHORITY_HOST)
    authority = authority.rstrip("/")
    problem = url_problem(authority, allow_http)
    if problem is None and urlsplit(authority).path:
        problem = "must be a scheme and host only, such as https://login.microsoftonline.com"
    if problem:
        raise InvalidConfig("AZURE_AUTHORITY_HOST", problem)
    tenant_id = tenant_id.lower()
    issuer = f"{authority}/{tenant_id}/v2.0"
    return _build("azure", tenant_id, fields, issuer, AZURE_SCOPES, allow_http,
                  subject_claim=AZURE_SUBJECT_CLAIM)


# provider type -> how its configuration is validated and built
CONFIG_BUILDERS: dict[str, Callable[[object, Mapping], OIDCConfig]] = {
    "okta": okta_config,
    "azure": azure_config,
}

def _build(provider: str, upstream: str, fields: dict, issuer: str, scopes: tuple[str, ...],
           allow_http: bool, subject_claim: str = "sub") -> OIDCConfig:
    return OIDCConfig(
        provider=provider,
        upstream=upstream,
        issuer=issuer,
        client_id=printable("client_id", fields["client_id"], MAX_CREDENTIAL_LENGTH),
        client_secret=printable("client_secret", fields["client_secret"], MAX_CREDENTIAL_LENGTH),
        scopes=scopes,
        allow_http=allow_http,
        tenants=TenantMapping.parse(fields.get("default_tenants"), fields.get("group_mappings")),
        subject_claim=subject_claim,
    )


def _host_name(value: object) -> str:
    """A DNS host name (RFC 1123 §2.1) with at least two labels; no scheme, port, path or IP."""
    message = "must be a host name such as dev-123456.okta.com (no scheme, port, path or user)"
    if not isinstance(value, str) or len(value) > 253:
        raise InvalidConfig("domain", message)
    host = value.lower()
    labels = host.split(".")
    if len(labels) < 2 or not all(_LABEL.fullmatch(label) for label in labels):
        raise InvalidConfig("domain", message)
    if labels[-1].isdigit():  # an IPv4 address, or a name that would parse as one
        raise InvalidConfig("domain", message)
    return host


def _okta_issuer(value: object, domain: str, allow_http: bool) -> str:
    if not isinstance(value, str):
        raise InvalidConfig("issuer", "must be a string")
    problem = url_problem(value, allow_http)
    if problem:
        raise InvalidConfig("issuer", problem)
    parts = urlsplit(value)
    if parts.path and not _OKTA_SERVER_PATH.fullmatch(parts.path):
        raise InvalidConfig("issuer", "must be https://{domain} or a custom authorization "
                                      "server https://{domain}/oauth2/{id}")
    # a loopback development issuer stands in for the domain; a real one must live on it
    if parts.scheme == "https" and parts.netloc != domain:
        raise InvalidConfig("issuer", f"must be on the domain {domain}")
    return value
