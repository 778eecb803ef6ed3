"""``/api/v1/auth``: the seed's login endpoints."""

from __future__ import annotations

from flask import Blueprint, jsonify

from idp.clients import API_CLIENT_ID

from ..extensions import services
from ..services import client_ip
from .requests import field, json_body

bp = Blueprint("api_auth", __name__, url_prefix="/api/v1/auth")


@bp.post("/token")
def token():
    body = json_body()
    username = field(body, "username", max_length=150)
    password = field(body, "password", max_length=1024)
    tenant = field(body, "tenant", required=False, max_length=64)
    svc = services()
    client = svc.clients.find(API_CLIENT_ID)
    account = svc.tokens.authenticate_password(username, password, client_ip())
    response = svc.tokens.issue_for_account(account, client, client.scope, tenant=tenant)
    return _no_store(jsonify(response.seed()))


def _no_store(response):
    response.headers["Cache-Control"] = "no-store"
    response.headers["Pragma"] = "no-cache"
    return response
