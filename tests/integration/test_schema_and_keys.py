"""Migrations agree with the models on both backends; key creation is race-free."""

import subprocess
import sys
import time

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import upgrade

from app import create_app
from app.extensions import db, dispose_engines
from tests.conftest import TEST_KEK, PgSchema, base_config


def _pending_diff(app):
    with app.app_context():
        upgrade()
        with db.engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}),
                                    db.metadata)


def test_migrations_match_models_on_postgresql():
    schema = PgSchema()
    try:
        app = create_app(base_config(DATABASE_URL=schema.url))
        assert _pending_diff(app) == []
        with app.app_context():
            tables = set(sa.inspect(db.engine).get_table_names())
            dispose_engines()
        assert {"users", "tenants", "memberships", "oauth_clients", "signing_keys"} <= tables
    finally:
        schema.drop()


def test_migrations_match_models_on_sqlite(tmp_path):
    app = create_app(base_config(DATABASE_URL=f"sqlite:///{tmp_path / 'idp.db'}"))
    assert _pending_diff(app) == []


def test_upgrade_twice_is_harmless(tmp_path):
    app = create_app(base_config(DATABASE_URL=f"sqlite:///{tmp_path / 'idp.db'}"))
    with app.app_context():
        upgrade()
        upgrade()


RACER = """
import sys, time
from app import create_app
from app.extensions import services
app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY_VALUE": sys.argv[2], "LOG_LEVEL": "ERROR"})
with app.app_context():
    import sqlalchemy as sa
    from app.extensions import db
    db.session.execute(sa.text("SELECT 1"))  # connect before the start line
    while time.time() < float(sys.argv[3]):
        pass
    print(services().keys.ensure_active().kid)
"""


@pytest.mark.parametrize("workers", [4])
def test_workers_racing_on_an_empty_database_make_one_active_key(workers):
    schema = PgSchema()
    try:
        app = create_app(base_config(DATABASE_URL=schema.url))
        with app.app_context():
            upgrade()
        start = time.time() + 3
        racers = [subprocess.Popen([sys.executable, "-c", RACER, schema.url, TEST_KEK, str(start)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                  for _ in range(workers)]
        kids = []
        for racer in racers:
            out, err = racer.communicate(timeout=60)
            assert racer.returncode == 0, err
            kids.append(out.strip())
        assert len(set(kids)) == 1
        with app.app_context():
            states = db.session.execute(sa.text("SELECT state FROM signing_keys")).scalars().all()
            dispose_engines()
        assert states.count("active") == 1
    finally:
        schema.drop()
