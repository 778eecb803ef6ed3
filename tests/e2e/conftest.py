"""Real server processes: gunicorn on loopback, on PostgreSQL and Redis."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
import requests
from flask_migrate import upgrade

from app import create_app
from app.extensions import dispose_engines
from tests.conftest import TEST_INSTANCE, TEST_KEK, PgSchema, RedisNamespace, base_config
from tests.helpers import ServerProcess


class LiveServer(ServerProcess):
    """gunicorn serving ``wsgi:app`` with the given environment, stopped on ``stop()``."""

    ready_path = "/readyz"

    def __init__(self, env: dict[str, str], workers: int = 2, tmp_path: Path | None = None):
        super().__init__()
        # gunicorn.conf.py's defaults, whatever the shell exports, unless the test sets them
        inherited = {name: value for name, value in os.environ.items()
                     if name != "GUNICORN_REUSE_PORT"}
        instance = (tmp_path or Path(TEST_INSTANCE)) / f"instance-{self.port}"
        full_env = {**inherited, "IDP_ISSUER": self.url, "IDP_SECRET_KEY": TEST_KEK,
                    "GUNICORN_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(workers),
                    "LOG_LEVEL": "WARNING", "IDP_INSTANCE_PATH": str(instance), **env}
        self.start([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
                   (tmp_path or Path("/tmp")) / f"gunicorn-{self.port}.log", env=full_env)


@pytest.fixture(scope="module")
def server_backends():
    """A PostgreSQL schema (migrated) and a Redis namespace of the module's own."""
    schema = PgSchema()
    namespace = RedisNamespace()
    app = create_app(base_config(DATABASE_URL=schema.url))
    with app.app_context():
        upgrade()
        dispose_engines()
    yield {"DATABASE_URL": schema.url, "REDIS_URL": namespace.url,
           "REDIS_KEY_PREFIX": namespace.prefix}
    namespace.close()
    schema.drop()


@pytest.fixture(scope="module")
def live_server(server_backends, tmp_path_factory):
    server = LiveServer({**server_backends, "IDP_BOOTSTRAP_ADMIN_USERNAME": "root",
                         "IDP_BOOTSTRAP_ADMIN_PASSWORD": "root-password-1"},
                        tmp_path=tmp_path_factory.mktemp("server"))
    yield server
    server.stop()


def post_json(url: str, body: dict, **kwargs) -> requests.Response:
    return requests.post(url, json=body, timeout=15, **kwargs)


@pytest.fixture(scope="module")
def backend_app(server_backends):
    """An app object on the live server's database and Redis, for set-up and inspection."""
    app = create_app(base_config(**server_backends))
    yield app
    with app.app_context():
        dispose_engines()


def create_test_user(app, username: str, password: str = "correct horse battery", **kwargs) -> str:
    from app.users import create_user

    with app.app_context():
        return create_user(username=username, email=f"{username}@example.test", password=password,
                           **kwargs).id
