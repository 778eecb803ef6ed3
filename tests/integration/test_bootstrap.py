"""The first platform admin and the signing key at start-up."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from app import create_app
from app.bootstrap import bootstrap
from app.extensions import db
from app.models import User
from tests.conftest import TEST_KEK, base_config
from tests.helpers import free_port, login

ROOT = Path(__file__).resolve().parents[2]


def _app(tmp_path, **config):
    app = create_app(base_config(DATABASE_URL=f"sqlite:///{tmp_path / 'idp.db'}", **config))
    with app.app_context():
        upgrade()
    return app


def _users(app):
    with app.app_context():
        return db.session.execute(sa.select(User)).scalars().all()


def test_bootstrap_admin_from_the_environment_is_idempotent(tmp_path, capfd):
    app = _app(tmp_path, BOOTSTRAP_ADMIN_USERNAME="root", BOOTSTRAP_ADMIN_PASSWORD="s3cret-enough")
    bootstrap(app)
    bootstrap(app)
    users = _users(app)
    assert [(u.username, u.platform_roles) for u in users] == [("root", ["admin"])]
    assert "s3cret-enough" not in capfd.readouterr().err
    assert login(app.test_client(), "root", "s3cret-enough").status_code == 200


def test_embedded_default_generates_an_admin_and_prints_the_password_once(tmp_path, capfd):
    app = _app(tmp_path, REDIS_URL="memory://")
    bootstrap(app)
    printed = capfd.readouterr().err
    assert "First platform admin created" in printed
    password = printed.split("password '")[1].split("'")[0]
    assert len(password) >= 20
    bootstrap(app)
    assert "First platform admin created" not in capfd.readouterr().err
    assert login(app.test_client(), "admin", password).status_code == 200


def test_no_generated_admin_outside_the_embedded_default(tmp_path, redis_ns):
    app = _app(tmp_path, REDIS_URL=redis_ns.url, REDIS_KEY_PREFIX=redis_ns.prefix)
    bootstrap(app)
    assert _users(app) == []


def _gunicorn_refuses(tmp_path, refusal: str, **env) -> str:
    """gunicorn started with ``env`` over the test's own: it must exit (not serve) within
    30 s; what it wrote to stderr."""
    env = {**os.environ, "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
           "IDP_INSTANCE_PATH": str(tmp_path), "IDP_SECRET_KEY": TEST_KEK, **env}
    env = {name: value for name, value in env.items() if value is not None}
    try:
        result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                                 "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"gunicorn serves {refusal}") from None
    assert result.returncode != 0, result.stderr[-2000:]
    return result.stderr


@pytest.mark.parametrize("redis_url", ["memory://", ""])  # set but empty: the default, as
def test_memory_store_refuses_more_than_one_worker(tmp_path, redis_url):  # app/config.py reads it
    _app(tmp_path)  # a migrated database: without the refusal, both workers would serve
    # DATABASE_URL unset: SQLite in the instance folder, where memory:// may serve
    stderr = _gunicorn_refuses(tmp_path, f"REDIS_URL={redis_url!r} with 2 workers",
                               REDIS_URL=redis_url, WEB_CONCURRENCY="2", DATABASE_URL=None)
    assert "memory://" in stderr and "WEB_CONCURRENCY=1" in stderr, stderr[-2000:]


def test_memory_store_on_postgresql_refuses_to_start_even_with_one_worker(app, pg_schema,
                                                                         tmp_path):
    """Several processes or hosts share a PostgreSQL database, and each would keep a
    memory:// store of its own: gunicorn refuses it at start-up, naming REDIS_URL."""
    stderr = _gunicorn_refuses(tmp_path, "memory:// on PostgreSQL", REDIS_URL="memory://",
                               WEB_CONCURRENCY="1", DATABASE_URL=pg_schema.url)
    assert "REDIS_URL" in stderr and "PostgreSQL" in stderr, stderr[-2000:]
    assert "redis://" in stderr
