"""``/api/v1/auth``: the seed's login, refresh, logout and me endpoints."""

from __future__ import annotations

from flask import Blueprint, jsonify, request

from idp.clients import API_CLIENT_ID
from idp.errors import Unauthorized

from ..extensions import services
from ..services import client_ip
from .bearer import current_claims
from .requests import field, json_body

bp = Blueprint("api_auth", __name__, url_prefix="/api/v1/auth")


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response


@bp.post("/token")
def token():
    body = json_body()
    username = field(body, "username", max_length=150)
    password = field(body, "password", max_length=1024)
    tenant = field(body, "tenant", required=False, max_length=64)
    svc = services()
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
    body = json_body() if request.content_length else {}  # the body is optional
    services().tokens.logout(claims, field(body, "refresh_token", required=False, max_length=512))
    return "", 204


@bp.get("/me")
def me():
    claims = current_claims()
    account = services().accounts.find_by_id(claims["sub"])
    if account is None or account.disabled:
        raise Unauthorized()
    return _no_store(jsonify(account.public()))
