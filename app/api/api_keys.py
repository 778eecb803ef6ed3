"""``/api/v1/api-keys``: the seed's API keys; the secret is shown once, at create and rotate."""

from __future__ import annotations

from flask import Blueprint, jsonify

from .. import api_keys
from .bearer import first_party_claims
from .requests import json_body, optional_json_body

bp = Blueprint("api_keys", __name__, url_prefix="/api/v1/api-keys")


def _with_secret(issued: api_keys.IssuedKey, status: int):
    response = jsonify(api_keys.render(issued.row, secret=issued.secret))
    response.status_code = status
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("")
def create():
    return _with_secret(api_keys.create_key(first_party_claims(), json_body()), 201)


@bp.get("")
def list_keys():
    return jsonify(api_keys.list_keys(first_party_claims()).body(api_keys.render))


@bp.get("/<key_id>")
def get(key_id):
    return jsonify(api_keys.render(api_keys.get_key(first_party_claims(), key_id)))


@bp.delete("/<key_id>")
def revoke(key_id):
    api_keys.revoke_key(first_party_claims(), key_id)
    return "", 204


@bp.post("/<key_id>/rotate")
def rotate(key_id):
    body = optional_json_body()
    return _with_secret(api_keys.rotate_key(first_party_claims(), key_id, body), 200)
