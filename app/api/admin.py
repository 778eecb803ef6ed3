"""``/api/v1/admin``: tenants, users, clients and SSO connections, for platform admins.

Every change is audited.
"""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from idp.accounts import MAX_PASSWORD, MAX_USERNAME

from .. import clients, tenants, users
from ..extensions import services
from ..sso import connections, provider_converter
from .bearer import require_platform_admin
from .requests import field, json_body

bp = Blueprint("api_admin", __name__, url_prefix="/api/v1/admin")


@bp.before_request
def _platform_admins_only():
    request.admin_claims = require_platform_admin()


def _audit(action: str, target: str, **details) -> None:
    services().audit(action, "success", actor=str(request.admin_claims["sub"]), target=target,
                     **details)


def _created(body: dict):
    response = jsonify(body)
    response.status_code = 201
    response.headers["Cache-Control"] = "no-store"
    return response


# -- tenants ---------------------------------------------------------------------------
@bp.post("/tenants")
def create_tenant():
    body = json_body()
    tenant = tenants.create_tenant(field(body, "id", max_length=63), field(body, "name", max_length=200))
    _audit("admin.tenant.create", tenant.id)
    return _created(tenants.render(tenant))


@bp.get("/tenants")
def list_tenants():
    return jsonify(tenants.list_tenants().body(tenants.render))


@bp.get("/tenants/<tenant_id>")
def get_tenant(tenant_id):
    return jsonify(tenants.render(tenants.get_tenant(tenant_id)))


# -- users -----------------------------------------------------------------------------
@bp.post("/users")
def create_user():
    body = json_body()
    user = users.create_user(
        username=field(body, "username", max_length=MAX_USERNAME),
        email=field(body, "email", max_length=320),
        password=field(body, "password", max_length=MAX_PASSWORD),
        platform_roles=field(body, "roles", list, required=False, default=[]),
        memberships=users.validate_memberships(field(body, "tenants", list, required=False, default=[])),
    )
    _audit("admin.user.create", user.id, username=user.username)
    return _created(users.render(user))


@bp.get("/users")
def list_users():
    return jsonify(users.list_users().body(users.render))


@bp.get("/users/<user_id>")
def get_user(user_id):
    return jsonify(users.render(users.get_user(user_id)))


@bp.patch("/users/<user_id>")
def update_user(user_id):
    user, changed = users.update_user(user_id, json_body())
    _audit("admin.user.update", user.id, fields=changed)
    return jsonify(users.render(user))


@bp.delete("/users/<user_id>")
def delete_user(user_id):
    revoked_keys = users.delete_user(user_id)
    _audit("admin.user.delete", user_id, revoked_api_keys=revoked_keys)
    return "", 204


# -- clients ---------------------------------------------------------------------------
@bp.post("/clients")
def create_client():
    registered = clients.register_client(json_body())
    _audit("admin.client.create", registered.client.client_id)
    return _created(clients.render_registered(registered))


@bp.get("/clients")
def list_clients():
    return jsonify(clients.list_clients().body(clients.render))


@bp.get("/clients/<client_id>")
def get_client(client_id):
    return jsonify(clients.render(clients.get_client(client_id)))


@bp.delete("/clients/<client_id>")
def delete_client(client_id):
    clients.delete_client(client_id)
    _audit("admin.client.delete", client_id)
    return "", 204


# -- SSO connections (contract §3, §7) -------------------------------------------------
_PROVIDER = provider_converter()


@bp.post(f"/sso/{_PROVIDER}")
def save_sso_connection(provider):
    """Create (201) or replace (200) the connection; the body is never logged or echoed."""
    stored, config, created = connections.save_connection(provider, json_body())
    _audit("admin.sso.create" if created else "admin.sso.update", provider)
    body = connections.render(stored, config)
    return _created(body) if created else jsonify(body)


@bp.get("/sso")
def list_sso_connections():
    return jsonify({"items": [connections.render(c) for c in connections.list_connections()],
                    "next_cursor": None})


@bp.get(f"/sso/{_PROVIDER}")
def get_sso_connection(provider):
    return jsonify(connections.render(connections.get_connection(provider)))


@bp.delete(f"/sso/{_PROVIDER}")
def delete_sso_connection(provider):
    connections.delete_connection(provider)
    _audit("admin.sso.delete", provider)
    return "", 204
