"""``/api/v1/auth``: the seed's login, refresh, logout and me endpoints, and consents."""

from __future__ import annotations

from flask import Blueprint, jsonify

from idp.accounts import MAX_PASSWORD, MAX_USERNAME
from idp.clients import API_CLIENT_ID
from idp.errors import NotFound, Unauthorized
from idp.tokens import rfc3339

from ..consents import withdraw_consent
from ..extensions import services
from ..services import client_ip
from .bearer import current_claims, first_party_claims
from .requests import field, json_body, optional_json_body

bp = Blueprint("api_auth", __name__, url_prefix="/api/v1/auth")

# the seed's code exchange: {"code", "redirect_uri", "client_id", "code_verifier"}
_CODE_EXCHANGE_FIELDS = (("code", 256), ("redirect_uri", 2048), ("client_id", 64),
                         ("code_verifier", 128))


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/token")
def token():
    body = json_body()
    svc = services()
    if "code" in body:
        # an authorization code from /oauth/authorize, exchanged through the same code
        # grant as /oauth/token; public clients only (see idp/grants/authorization_code.py)
        params = {name: field(body, name, max_length=length)
                  for name, length in _CODE_EXCHANGE_FIELDS}
        return _no_store(jsonify(svc.authorization.exchange_code(params).seed()))
    username = field(body, "username", max_length=MAX_USERNAME)
    password = field(body, "password", max_length=MAX_PASSWORD)
    tenant = field(body, "tenant", required=False, max_length=64)
    client = svc.clients.find(API_CLIENT_ID)
    account = svc.tokens.authenticate_password(username, password, client_ip())
    response = svc.tokens.issue_for_account(account, client, client.scope, tenant=tenant,
                                            with_refresh=True)
    return _no_store(jsonify(response.seed()))


@bp.post("/refresh")
def refresh():
    refresh_token = field(json_body(), "refresh_token", max_length=512)
    svc = services()
    response = svc.tokens.refresh(refresh_token, svc.clients.find(API_CLIENT_ID))
    return _no_store(jsonify(response.seed(include_user=False)))


@bp.post("/logout")
def logout():
    claims = current_claims()
    body = optional_json_body()
    services().tokens.logout(claims, field(body, "refresh_token", required=False, max_length=512))
    return "", 204


def _own_account():
    """The caller's own account, from a user's token of a first-party client: a third-party
    client's token must not read the user's account or their other consents."""
    account = services().accounts.find_by_id(str(first_party_claims()["sub"]))
    if account is None or account.disabled:
        raise Unauthorized()
    return account


@bp.get("/me")
def me():
    return _no_store(jsonify(_own_account().public()))


@bp.get("/consents")
def consents():
    granted = services().consents.list_for(_own_account().id)
    return _no_store(jsonify({"consents": [
        {"client_id": c.client_id, "client_name": c.client_name, "scope": " ".join(c.scopes),
         "granted_at": rfc3339(c.granted_at.timestamp())} for c in granted]}))


@bp.delete("/consents/<client_id>")
def revoke_consent(client_id):
    if not withdraw_consent(_own_account().id, client_id):
        raise NotFound("No consent for this client")
    return "", 204
