"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import Blueprint, jsonify

from idp.errors import Unavailable

from .extensions import db, services

bp = Blueprint("health", __name__)
log = logging.getLogger("infracast.health")


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    checks = {"database": _database_ok(), "redis": _redis_ok()}
    checks["revocations"] = checks["database"] and checks["redis"] and _revocation_copy_ok()
    ready = all(checks.values())
    body = {"status": "ready" if ready else "unavailable",
            "checks": {name: "ok" if ok else "down" for name, ok in checks.items()}}
    response = jsonify(body)
    response.status_code = 200 if ready else 503
    response.headers["Cache-Control"] = "no-store"
    return response


def _database_ok() -> bool:
    try:
        db.session.execute(sa.text("SELECT 1"))
        return True
    except sa.exc.SQLAlchemyError as error:
        db.session.rollback()
        log.warning("database not ready", extra={"fields": {"exception": type(error).__name__}})
        return False


def _redis_ok() -> bool:
    try:
        return services().store.ping()
    except Unavailable:
        return False


def _revocation_copy_ok() -> bool:
    """Redis holds the complete revocation copy, rebuilt here from the database if it was lost."""
    try:
        services().revocations.ensure_copy()
        return True
    except (Unavailable, sa.exc.SQLAlchemyError):
        db.session.rollback()
        return False
