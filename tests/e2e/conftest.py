"""Real server processes: gunicorn on loopback, on PostgreSQL and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis as redis_lib
import requests
from flask_migrate import upgrade

from app import create_app
from app.extensions import db
from tests.conftest import TEST_KEK, PgSchema, RedisNamespace, base_config
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[2]


class LiveServer:
    """gunicorn serving ``wsgi:app`` with the given environment, stopped on ``stop()``."""

    def __init__(self, env: dict[str, str], workers: int = 2, tmp_path: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = (tmp_path or Path("/tmp")) / f"gunicorn-{self.port}.log"
        full_env = {**os.environ, "IDP_ISSUER": self.url, "IDP_SECRET_KEY": TEST_KEK,
                    "GUNICORN_BIND": f"127.0.0.1:{self.port}", "WEB_CONCURRENCY": str(workers),
                    "LOG_LEVEL": "WARNING", **env}
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 30) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log_path.read_text()[-2000:]}")
            try:
                if requests.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


@pytest.fixture(scope="module")
def server_backends():
    """A PostgreSQL schema (migrated) and a Redis namespace of the module's own."""
    schema = PgSchema()
    namespace = RedisNamespace()
    app = create_app(base_config(DATABASE_URL=schema.url))
    with app.app_context():
        upgrade()
        db.engine.dispose()
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


class RedisServer:
    """A redis-server of the test's own on a free port, which the test may stop and restart."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if redis_lib.Redis(port=self.port, socket_timeout=0.5).ping():
                    return
            except redis_lib.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


@pytest.fixture
def own_redis():
    server = RedisServer()
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
        db.engine.dispose()


def create_test_user(app, username: str, password: str = "correct horse battery", **kwargs) -> str:
    from app.users import create_user

    with app.app_context():
        return create_user(username=username, email=f"{username}@example.test", password=password,
                           **kwargs).id
