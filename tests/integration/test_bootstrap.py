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


@pytest.mark.parametrize("redis_url", ["memory://", ""])  # set but empty: the default, as
def test_memory_store_refuses_more_than_one_worker(tmp_path, redis_url):  # app/config.py reads it
    _app(tmp_path)  # a migrated database: without the refusal, both workers would serve
    env = {**os.environ, "REDIS_URL": redis_url, "WEB_CONCURRENCY": "2",
           "GUNICORN_BIND": f"127.0.0.1:{free_port()}", "IDP_INSTANCE_PATH": str(tmp_path),
           "IDP_SECRET_KEY": TEST_KEK}
    env.pop("DATABASE_URL", None)  # SQLite in the instance folder, where memory:// may serve
    try:
        result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                                 "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=30)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"gunicorn serves REDIS_URL={redis_url!r} with 2 workers") from None
    assert result.returncode != 0
    assert "memory://" in result.stderr and "WEB_CONCURRENCY=1" in result.stderr, \
        result.stderr[-2000:]


def test_memory_store_on_postgresql_refuses_to_start_even_with_one_worker(app, pg_schema,
                                                                         tmp_path):
    """Several processes or hosts share a PostgreSQL database, and each would keep a
    memory:// store of its own: gunicorn refuses it at start-up, naming REDIS_URL."""
    env = {**os.environ, "REDIS_URL": "memory://", "WEB_CONCURRENCY": "1",
           "DATABASE_URL": pg_schema.url, "GUNICORN_BIND": f"127.0.0.1:{free_port()}",
           "IDP_INSTANCE_PATH": str(tmp_path), "IDP_SECRET_KEY": TEST_KEK}
    try:
        result = subprocess.run([sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py",
                                 "wsgi:app"], cwd=ROOT, env=env, capture_output=True, text=True,
                                timeout=20)
    except subprocess.TimeoutExpired:
        raise AssertionError("gunicorn serves memory:// on PostgreSQL") from None
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr and "PostgreSQL" in result.stderr, result.stderr[-2000:]
    assert "redis://" in result.stderr
