"""The nodes API of a downstream service, guarded by the Infracast verifier (contract §6).

    GET  /api/v1/tenants/<tenant>/nodes   needs nodes:read in <tenant>
    POST /api/v1/tenants/<tenant>/nodes   needs nodes:write in <tenant>; body {"name", "address"?}

Nodes are kept in memory, per tenant, for as long as the process runs: this is an example
of verification, not of storage. Errors use the Infracast envelope.

Settings are environment variables (``SETTINGS``; ``create_app(config)`` overrides them):
which IdP and audience to trust, how to check revocation (the IdP's Redis, or
introspection), the introspection client that admits ``ic_live_`` API keys, and how many
reverse proxies to believe about the caller's address (an API key's ``allowed_ips``).
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from urllib.parse import quote

from flask import Flask, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from idp import verifier_flask
from idp.verifier import Verifier
from idp.verifier_flask import current_principal, error_response, require

MAX_NAME = 200


def _flag(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _proxy_hops(value: str | int) -> int:
    """TRUSTED_PROXIES, 0 or more. ProxyFix counts hops from the right of X-Forwarded-For;
    a negative count would index from the left, the entries the client wrote itself, and
    make them the caller's address (an API key's allowed_ips)."""
    hops = int(value)
    if hops < 0:
        raise ValueError(f"TRUSTED_PROXIES must be 0 or more, not {hops}")
    return hops


# environment variable (and app.config key) -> default, parser; see idp.verifier_flask
SETTINGS: dict[str, tuple[object, Callable[[str], object]]] = {
    "IDP_ISSUER": ("http://127.0.0.1:8000", str),
    "IDP_AUDIENCE": ("infracast-api", str),
    # revocation, exact and immediate: the IdP's REDIS_URL and REDIS_KEY_PREFIX
    "IDP_REDIS_URL": (None, str),
    "IDP_REDIS_KEY_PREFIX": ("idp", str),
    # API keys: a client registered at the IdP with "resource_server": true
    "IDP_INTROSPECTION_CLIENT_ID": (None, str),
    "IDP_INTROSPECTION_CLIENT_SECRET": (None, str),
    "IDP_INTROSPECTION_CACHE_SECONDS": (5.0, float),
    # 1: revocation of access tokens through introspection instead of (or with) the Redis
    "IDP_INTROSPECT_ACCESS_TOKENS": (False, _flag),
    # reverse-proxy hops whose X-Forwarded-For is believed; 0: the peer address is the caller
    "TRUSTED_PROXIES": (0, _proxy_hops),
}


def settings_from_environment(environ: dict[str, str] | None = None) -> dict[str, object]:
    environ = os.environ if environ is None else environ
    config: dict[str, object] = {}
    for name, (default, parse) in SETTINGS.items():
        raw = environ.get(name, "")
        try:
            config[name] = parse(raw) if raw else default
        except ValueError:
            raise ValueError(f"{name} is not a valid value: {raw!r}") from None
    return config


class Nodes:
    """Each tenant's nodes, in memory."""

    def __init__(self):
        self._by_tenant: dict[str, list[dict]] = {}
        self._lock = threading.Lock()

    def list(self, tenant: str) -> list[dict]:
        with self._lock:
            return list(self._by_tenant.get(tenant, []))

    def add(self, tenant: str, name: str, address: str | None, created_by: str) -> dict:
        node = {"id": f"node-{uuid.uuid4().hex[:12]}", "name": name, "address": address,
                "tenant": tenant, "created_by": created_by,
                "created_at": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")}
        with self._lock:
            self._by_tenant.setdefault(tenant, []).append(node)
        return node


def _text(body: dict, name: str, required: bool) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
        raise ValueError(f"'{name}' must be a non-empty string of at most {MAX_NAME} characters")
    return value.strip()


def create_app(config: dict | None = None, verifier: Verifier | None = None) -> Flask:
    """The app; ``SETTINGS`` come from the environment, overridden by ``config``."""
    app = Flask(__name__)
    app.config.update(settings_from_environment())
    app.config.update(config or {})
    proxies = _proxy_hops(app.config["TRUSTED_PROXIES"])  # config may override the environment
    verifier_flask.init_app(app, verifier)
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies)
    nodes = Nodes()

    @app.get("/api/v1/tenants/<tenant>/nodes")
    @require("nodes:read")
    def list_nodes(tenant: str):
        return jsonify({"nodes": nodes.list(tenant)})

    @app.post("/api/v1/tenants/<tenant>/nodes")
    @require("nodes:write")
    def create_node(tenant: str):
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            return error_response(400, "INVALID_REQUEST", "The request body must be a JSON object")
        try:
            name, address = _text(body, "name", True), _text(body, "address", False)
        except ValueError as error:
            return error_response(400, "INVALID_REQUEST", str(error))
        node = nodes.add(tenant, name, address, created_by=current_principal().subject)
        response = jsonify(node)
        response.status_code = 201
        response.headers["Location"] = f"/api/v1/tenants/{quote(tenant, safe='')}/nodes/{node['id']}"
        return response

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        status = error.code or 500
        codes = {404: ("NOT_FOUND", "Not found"), 405: ("INVALID_REQUEST", "Method not allowed")}
        fallback = ("INTERNAL", "Internal server error") if status >= 500 else (
            "INVALID_REQUEST", "Invalid request")
        return error_response(status, *codes.get(status, fallback))

    return app
