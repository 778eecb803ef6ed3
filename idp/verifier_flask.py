"""The verifier in a Flask resource server: ``@require("nodes:read")`` on a view.

::

    from flask import Flask
    from idp import verifier_flask
    from idp.verifier_flask import current_principal, require

    app = Flask(__name__)
    app.config.update(IDP_ISSUER="https://id.infracast.example", IDP_AUDIENCE="infracast-api",
                      IDP_REDIS_URL="redis://redis.internal:6379/0",     # revocation
                      IDP_INTROSPECTION_CLIENT_ID="nodes-api",           # API keys
                      IDP_INTROSPECTION_CLIENT_SECRET="...")
    verifier_flask.init_app(app)      # or init_app(app, Verifier(...))

    @app.get("/api/v1/tenants/<tenant>/nodes")
    @require("nodes:read")            # the tenant comes from the URL
    def list_nodes(tenant):
        return {"caller": current_principal().subject}

The token is read from ``Authorization: Bearer …`` (RFC 6750 §2.1), an access token or an
``ic_live_`` API key. Refusals answer in the Infracast envelope (contract §2):
401 ``UNAUTHORIZED`` ``Invalid or expired token`` with ``WWW-Authenticate: Bearer`` when
the request has no Bearer credentials (none, or another scheme such as ``Basic``), or
``Bearer error="invalid_token"`` when they are malformed or refused (RFC 6750 §3.1);
403 ``FORBIDDEN`` ``Insufficient permissions`` with
``WWW-Authenticate: Bearer error="insufficient_scope"``; 503 ``UNAVAILABLE`` when the keys
or a hook cannot answer. The caller's address for an API key's ``allowed_ips`` is
``request.remote_addr``: put ``werkzeug.middleware.proxy_fix.ProxyFix`` in front when the
service runs behind a proxy.

``init_app`` builds the verifier from ``app.config`` (see ``build_verifier``):

=================================== ========================================================
``IDP_ISSUER``, ``IDP_AUDIENCE``    required: whose tokens, for which ``aud``
``IDP_REDIS_URL``                   the IdP's ``REDIS_URL``: check revocations in its Redis
``IDP_REDIS_KEY_PREFIX``            the IdP's ``REDIS_KEY_PREFIX`` (default ``idp``)
``IDP_INTROSPECTION_CLIENT_ID``,    a resource-server client of the IdP: ``ic_live_`` API
``IDP_INTROSPECTION_CLIENT_SECRET`` keys through introspection
``IDP_INTROSPECTION_CACHE_SECONDS`` how long an active answer is reused (default 5)
``IDP_INTROSPECT_ACCESS_TOKENS``    True: ask introspection about access tokens too
=================================== ========================================================
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Mapping
from typing import Any, Callable, TypeVar

from flask import Flask, Response, current_app, g, jsonify, request

from .verifier import InvalidToken, Principal, Verifier, VerifierUnavailable

__all__ = ["EXTENSION", "init_app", "build_verifier", "require", "current_principal",
           "error_response"]

log = logging.getLogger("infracast.verifier")

EXTENSION = "infracast.verifier"
View = TypeVar("View", bound=Callable)


def init_app(app: Flask, verifier: Verifier | None = None) -> Verifier:
    """Attach ``verifier``, or one built from app.config by ``build_verifier``."""
    if verifier is None:
        verifier = build_verifier(app.config)
    app.extensions[EXTENSION] = verifier
    return verifier


def build_verifier(config: Mapping[str, Any]) -> Verifier:
    """A verifier for the settings above; revocation and introspection only when configured.

    Without ``IDP_REDIS_URL`` (or ``IDP_INTROSPECT_ACCESS_TOKENS``) revocations are not
    checked: a logged-out token stays good until it expires. Without an introspection
    client, API keys are refused.
    """
    issuer = config["IDP_ISSUER"]
    revocation = introspection = None
    if config.get("IDP_REDIS_URL"):
        from .verifier_redis import SharedRedisRevocationCheck  # needs redis: only when asked

        revocation = SharedRedisRevocationCheck(config["IDP_REDIS_URL"],
                                                config.get("IDP_REDIS_KEY_PREFIX") or "idp")
    if config.get("IDP_INTROSPECTION_CLIENT_ID") or config.get("IDP_INTROSPECTION_CLIENT_SECRET"):
        from .verifier_introspection import DEFAULT_CACHE_SECONDS, IntrospectionClient

        cache_seconds = config.get("IDP_INTROSPECTION_CACHE_SECONDS")
        introspection = IntrospectionClient(
            issuer, config.get("IDP_INTROSPECTION_CLIENT_ID") or "",
            config.get("IDP_INTROSPECTION_CLIENT_SECRET") or "",
            cache_seconds=DEFAULT_CACHE_SECONDS if cache_seconds is None else float(cache_seconds))
    return Verifier(issuer, config["IDP_AUDIENCE"], revocation=revocation,
                    introspection=introspection,
                    introspect_access_tokens=bool(config.get("IDP_INTROSPECT_ACCESS_TOKENS")))


def error_response(status: int, code: str, message: str,
                   headers: dict | None = None) -> Response:
    """The Infracast error envelope (contract §2), never cached: for the service's own
    errors too, so that they look like the refusals ``require`` answers."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    response.headers.update(headers or {})
    return response


def _unauthorized(bearer_presented: bool) -> Response:
    # RFC 6750 §3.1: a request without Bearer credentials (none, or another scheme) "lacks
    # any authentication information" and gets no error code; Bearer credentials that fail
    # are invalid_token
    challenge = 'Bearer error="invalid_token"' if bearer_presented else "Bearer"
    return error_response(401, "UNAUTHORIZED", "Invalid or expired token",
                          {"WWW-Authenticate": challenge})


def _bearer_credentials() -> str | None:
    """What follows ``Bearer`` in the Authorization header (RFC 6750 §2.1), stripped; None
    when the request used no Bearer credentials (no header, or another scheme)."""
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":  # RFC 9110 §11.1: the scheme is case-insensitive
        return None
    return credentials.strip()


def current_principal() -> Principal:
    """The verified caller of this request (inside a view guarded by ``require``)."""
    return g.infracast_principal


def _takes(view: Callable, name: str) -> bool:
    """Can ``view`` be called with the keyword argument ``name``? True when unknowable."""
    try:
        parameters = inspect.signature(view).parameters.values()
    except (TypeError, ValueError):
        return True
    return any(p.kind is p.VAR_KEYWORD or (p.name == name and p.kind in (
        p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)) for p in parameters)


def require(permission: str | None = None, *, tenant_arg: str = "tenant") -> Callable[[View], View]:
    """Guard a view: a valid token, and ``permission`` in the tenant named by the URL.

    The tenant is the view argument ``tenant_arg``; with ``permission=None`` any valid
    token will do. The principal is then ``current_principal()``.

    A view that cannot take ``tenant_arg`` is refused here (``TypeError``); a route that
    does not pass it fails every request (``LookupError``) before any token is looked at,
    so the mistake shows on the first request, whoever sends it.
    """

    def decorator(view: View) -> View:
        if permission is not None and not _takes(view, tenant_arg):
            raise TypeError(f"require({permission!r}) guards {view.__name__}(), which takes no "
                            f"{tenant_arg!r} argument: its route needs a <{tenant_arg}>")

        @functools.wraps(view)
        def guarded(*args, **kwargs):
            if permission is not None and tenant_arg not in kwargs:
                raise LookupError(f"require({permission!r}) guards a view without "
                                  f"a <{tenant_arg}> URL variable")
            token = _bearer_credentials()
            if token is None:
                return _unauthorized(bearer_presented=False)
            if not token or " " in token:  # RFC 6750 §2.1: b64token, one word
                return _unauthorized(bearer_presented=True)
            verifier: Verifier = current_app.extensions[EXTENSION]
            try:
                principal = verifier.verify(token, client_ip=request.remote_addr)
            except InvalidToken as error:
                log.info("token refused: %s", error.reason)
                return _unauthorized(bearer_presented=True)
            except VerifierUnavailable as error:
                log.warning("token not checked: %s", error.reason)
                return error_response(503, "UNAVAILABLE", "Service temporarily unavailable")
            if permission is not None and not principal.allows(kwargs[tenant_arg], permission):
                # RFC 6750 §3.1 (and RFC 9068 §4): a token that lacks the permission
                return error_response(403, "FORBIDDEN", "Insufficient permissions",
                                      {"WWW-Authenticate": 'Bearer error="insufficient_scope"'})
            g.infracast_principal = principal
            return view(*args, **kwargs)

        return guarded  # type: ignore[return-value]

    return decorator
