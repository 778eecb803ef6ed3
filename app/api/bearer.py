"""Bearer authentication for our own API (RFC 6750 §2.1)."""

from __future__ import annotations

from flask import request

from idp.errors import Forbidden, Unauthorized
from idp.permissions import is_platform_admin

from ..extensions import services


def bearer_credentials() -> str | None:
    """The request's bearer token, or None when it sent none (no header, another scheme)."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def bearer_token() -> str:
    token = bearer_credentials()
    if token is None:
        raise Unauthorized()
    return token


def current_claims() -> dict:
    """The caller's validated access-token claims (signature, expiry, revocation).

    Kept on the request, not on ``g``: an app context may outlive one request.
    """
    if "infracast.token_claims" not in request.environ:
        request.environ["infracast.token_claims"] = services().validator.validate(bearer_token())
    return request.environ["infracast.token_claims"]


def first_party_claims() -> dict:
    """The caller's claims if their token comes from a first-party client; a refusal is
    audited.

    A third-party client's token is the user's consent to identity scopes, never to act on
    our API as the user (its tokens carry no rights, but routes scoped to the caller's own
    account would still take it for them).
    """
    claims = current_claims()
    client = services().clients.find(str(claims.get("client_id", "")))
    if client is None or not client.first_party:
        services().audit("api.access", "denied", actor=str(claims.get("sub")),
                         target=request.path, reason="third_party_client",
                         client_id=claims.get("client_id"))
        raise Forbidden()
    return claims


def require_platform_admin() -> dict:
    """The caller's claims if they hold the platform ``admin`` role; a refusal is audited."""
    claims = current_claims()
    if not is_platform_admin(claims.get("roles") or ()):
        services().audit("admin.access", "denied", actor=str(claims.get("sub")),
                         target=request.path, reason="escalation")
        raise Forbidden()
    return claims
