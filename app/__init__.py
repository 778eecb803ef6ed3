"""Infracast Identity: the Flask app factory."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask
from sqlalchemy import event
from werkzeug.middleware.proxy_fix import ProxyFix

from .config import MAX_CONTENT_LENGTH, load_config, normalise_database_url, validate
from .extensions import SERVICES_KEY, db, migrate
from .logging import configure_logging, init_request_logging
from .request_bodies import init_request_bodies
from .secret_key import resolve_kek

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def create_app(test_config: dict | None = None) -> Flask:
    config = load_config()
    config.update(test_config or {})
    validate(config)
    app = Flask(__name__, instance_path=_instance_path(config))
    os.makedirs(app.instance_path, exist_ok=True)
    app.config.update(config)

    database_url = config["DATABASE_URL"] or f"sqlite:///{Path(app.instance_path) / 'idp.db'}"
    app.config["SQLALCHEMY_DATABASE_URI"] = normalise_database_url(str(database_url))
    # No pool_pre_ping: it costs a round trip per checkout. A connection that a database
    # restart broke fails its request with a 503 (app/errors.py), and SQLAlchemy then
    # replaces the pool's connections; recycling keeps idle ones from going stale.
    app.config.setdefault("SQLALCHEMY_ENGINE_OPTIONS", {"pool_recycle": 1800})
    app.config["MAX_CONTENT_LENGTH"] = MAX_CONTENT_LENGTH
    app.json.sort_keys = False  # keep the seed's field order in responses

    configure_logging(str(config["LOG_LEVEL"]))
    kek = resolve_kek(config, app.instance_path)
    # No Flask secret key: Flask's cookie session is not used (the IdP's browser sessions
    # live in the store, app/web/session.py), and without a key Flask opens none, where it
    # would otherwise build a signing serializer on every request.

    db.init_app(app)
    with app.app_context():
        _enforce_sqlite_foreign_keys(db.engine)
    migrate.init_app(app, db, directory=str(MIGRATIONS), compare_type=True)

    from .services import build_services

    app.extensions[SERVICES_KEY] = build_services(config, kek)

    proxies = int(config["TRUSTED_PROXIES"])
    if proxies:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies)

    _register_blueprints(app)

    from .cli import register_cli
    from .errors import register_error_handlers

    register_error_handlers(app)
    init_request_logging(app)
    init_request_bodies(app)
    register_cli(app)
    return app


def _instance_path(config: dict) -> str:
    configured = config.get("INSTANCE_PATH")
    return str(Path(str(configured)).resolve()) if configured else str(MIGRATIONS.parent / "instance")


def _enforce_sqlite_foreign_keys(engine) -> None:
    if engine.dialect.name != "sqlite":
        return

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()


def _register_blueprints(app: Flask) -> None:
    from .api import admin as api_admin
    from .api import api_keys as api_keys_api
    from .api import auth as api_auth
    from .api import sso as api_sso
    from .health import bp as health_bp
    from .oauth import introspect as oauth_introspect
    from .oauth import revoke as oauth_revoke
    from .oauth import token as oauth_token
    from .oauth import userinfo as oauth_userinfo
    from .wellknown import bp as wellknown_bp
    from . import web

    app.register_blueprint(health_bp)
    app.register_blueprint(wellknown_bp)
    app.register_blueprint(api_auth.bp)
    app.register_blueprint(api_sso.bp)
    app.register_blueprint(oauth_token.bp)
    app.register_blueprint(oauth_revoke.bp)
    app.register_blueprint(oauth_introspect.bp)
    app.register_blueprint(oauth_userinfo.bp)
    app.register_blueprint(api_admin.bp)
    app.register_blueprint(api_keys_api.bp)
    web.register(app)
