"""Registering OAuth clients (RFC 7591 metadata names); the secret is returned once."""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from idp.clients import (API_CLIENT_ID, AUTH_METHODS, CLIENT_ID_PATTERN, LOOPBACK_IPS, PUBLIC,
                         redirect_uri_parts)
from idp.errors import Conflict, InvalidRequest, NotFound, Unavailable
from idp.hashing import new_secret
from idp.permissions import PERMISSIONS, is_tenant_id
from idp.tokens import rfc3339

from .extensions import db, services
from .models import Client
from .pagination import Page, paginate
from .tenants import require_tenants

log = logging.getLogger("infracast.clients")

# user ids are UUIDs; a client_credentials token's sub is the client_id (RFC 9068 §2.2),
# so a client_id must never be mistaken for a user
_USER_ID_FORM = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                           r"[0-9a-fA-F]{12}$")


@dataclass(frozen=True)
class RegisteredSecret:
    client: Client
    client_secret: str | None


def supported_grant_types() -> list[str]:
    return services().authorization.grant_types_supported()


def _redirect_uris(metadata: dict, name: str) -> list[str]:
    """A list of https URLs (http only on loopback), without a fragment (RFC 6749 §3.1.2),
    whitespace or control characters, and with a port that parses (``redirect_uri_parts``)."""
    uris = metadata.get(name, [])
    problem = (f"'{name}' must be a list of https URLs (http only on loopback), without a "
               "fragment, whitespace or control characters")
    if not isinstance(uris, list):
        raise InvalidRequest(problem)
    for uri in uris:
        parts = redirect_uri_parts(uri) if isinstance(uri, str) and len(uri) <= 2048 else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.hostname \
                or (parts.scheme == "http" and parts.hostname not in (*LOOPBACK_IPS, "localhost")):
            raise InvalidRequest(problem)
    return list(uris)


def validate_metadata(metadata: dict) -> dict:
    auth_method = metadata.get("token_endpoint_auth_method", "client_secret_basic")
    if auth_method not in AUTH_METHODS:
        raise InvalidRequest(f"'token_endpoint_auth_method' must be one of {', '.join(AUTH_METHODS)}")
    grant_types = metadata.get("grant_types", ["authorization_code"])
    if not isinstance(grant_types, list) or not grant_types \
            or any(g not in supported_grant_types() for g in grant_types):
        raise InvalidRequest(f"'grant_types' may hold {', '.join(supported_grant_types())}")
    if "client_credentials" in grant_types and auth_method == PUBLIC:
        raise InvalidRequest("'client_credentials' needs a confidential client")
    redirect_uris = _redirect_uris(metadata, "redirect_uris")
    post_logout_redirect_uris = _redirect_uris(metadata, "post_logout_redirect_uris")
    if "authorization_code" in grant_types and not redirect_uris:
        raise InvalidRequest("'redirect_uris' is required for the authorization_code grant")
    scope = metadata.get("scope", "openid profile email offline_access")
    if not isinstance(scope, str):
        raise InvalidRequest("'scope' must be a space-separated string")
    unknown = set(scope.split()) - set(services().authorization.scopes_supported)
    if unknown:
        raise InvalidRequest(f"'scope' holds an unsupported value: {sorted(unknown)[0]}")
    name = metadata.get("client_name")
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        raise InvalidRequest("'client_name' is required (at most 200 characters)")
    tenant_permissions = metadata.get("tenant_permissions", {})
    if not isinstance(tenant_permissions, dict) or any(
            not is_tenant_id(t) or not isinstance(p, list) or any(x not in PERMISSIONS for x in p)
            for t, p in tenant_permissions.items()):
        raise InvalidRequest("'tenant_permissions' maps tenant ids to lists of permissions")
    for flag in ("first_party", "resource_server"):
        if not isinstance(metadata.get(flag, False), bool):
            raise InvalidRequest(f"'{flag}' must be a boolean")
    if metadata.get("resource_server") and auth_method == PUBLIC:
        raise InvalidRequest("'resource_server' needs a confidential client")
    require_tenants(tenant_permissions)
    return {
        "client_name": name.strip(),
        "token_endpoint_auth_method": auth_method,
        "grant_types": grant_types,
        "response_types": ["code"] if "authorization_code" in grant_types else [],
        "redirect_uris": redirect_uris,
        "post_logout_redirect_uris": post_logout_redirect_uris,
        "scope": " ".join(scope.split()),
        "first_party": metadata.get("first_party", True),
        "resource_server": metadata.get("resource_server", False),
        "tenant_permissions": {t: sorted(set(p)) for t, p in tenant_permissions.items()},
    }


def register_client(metadata: dict, client_id: str | None = None) -> RegisteredSecret:
    values = validate_metadata(metadata)
    client_id = client_id or f"client-{secrets.token_hex(8)}"
    if not CLIENT_ID_PATTERN.fullmatch(client_id) or client_id == API_CLIENT_ID \
            or _USER_ID_FORM.fullmatch(client_id):
        raise InvalidRequest("'client_id' may hold 3 to 64 letters, digits, '.', '_' and '-' "
                             "(and may not have the form of a user id)")
    secret = None if values["token_endpoint_auth_method"] == PUBLIC else new_secret()
    client = Client(client_id=client_id,
                    client_secret_hash=services().secrets.digest(secret) if secret else None,
                    **values)
    db.session.add(client)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Conflict("A client with this client_id already exists") from None
    services().clients.forget(client_id)
    return RegisteredSecret(client=client, client_secret=secret)


def render(client: Client) -> dict:
    """RFC 7591 §3.2.1 client information (never the secret, which is shown once)."""
    return {
        "client_id": client.client_id,
        "client_id_issued_at": int(client.created_at.timestamp()),
        "client_name": client.client_name,
        "redirect_uris": client.redirect_uris,
        "post_logout_redirect_uris": client.post_logout_redirect_uris,
        "grant_types": client.grant_types,
        "response_types": client.response_types,
        "token_endpoint_auth_method": client.token_endpoint_auth_method,
        "scope": client.scope,
        "first_party": client.first_party,
        "resource_server": client.resource_server,
        "tenant_permissions": client.tenant_permissions,
        "created_at": rfc3339(client.created_at.timestamp()),
    }


def render_registered(registered: RegisteredSecret) -> dict:
    body = render(registered.client)
    if registered.client_secret:
        body["client_secret"] = registered.client_secret
        body["client_secret_expires_at"] = 0  # RFC 7591: does not expire
    return body


def get_client(client_id: str) -> Client:
    client = db.session.get(Client, client_id) if CLIENT_ID_PATTERN.fullmatch(client_id) else None
    if client is None:
        raise NotFound("Unknown client")
    return client


def list_clients() -> Page:
    return paginate(sa.select(Client), Client.client_id)


def delete_client(client_id: str) -> None:
    """Delete the client; the access tokens it holds stop working at once, and so do its
    refresh tokens (it can no longer authenticate to use them).

    The revocation comes first: if it fails (503), the client is still there to delete
    again, rather than gone with its tokens still good. It covers the tokens that workers
    still knowing the client from their cache (``CLIENT_CACHE_SECONDS``) may yet issue; and
    it is recorded once more after the delete, for a worker that read the row in between
    and so knows the client until later. That second one is best effort, as for a consent
    withdrawn (``app.consents``): the first stands, and a failed copy is rebuilt before any
    token is accepted again.
    """
    client = get_client(client_id)
    svc = services()
    svc.revocations.revoke_client(client_id, known_for=svc.clients.cache_seconds)
    db.session.delete(client)
    db.session.commit()
    svc.clients.forget(client_id)
    try:
        svc.revocations.revoke_client(client_id, known_for=svc.clients.cache_seconds)
    except Unavailable:
        log.warning("client deleted; its second watermark could not be recorded",
                    extra={"fields": {"client_id": client_id}})
