"""Real server processes: gunicorn on loopback, on PostgreSQL and Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
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
                if requests.get(self.url + "/readyz", timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or the workers are still booting
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
