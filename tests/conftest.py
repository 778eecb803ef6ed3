"""Fixtures: real PostgreSQL and real Redis, isolated per test run.

Each run gets its own PostgreSQL schema (``search_path``) and its own Redis key prefix in
the dedicated test db, so runs never see each other's data, and both are removed at the
end. The embedded default (SQLite + ``memory://``) has its own fixture.
"""

from __future__ import annotations

import atexit
import os
import secrets
import shutil
import tempfile
import uuid
from urllib.parse import quote

import psycopg
import pytest
import redis as redis_lib
import sqlalchemy as sa
from flask_migrate import upgrade

from app import create_app
from app.extensions import db, dispose_engines
from keys.sealing import generate_kek
from tests.federation.upstream import CLIENT_ID, CLIENT_SECRET, UpstreamProcess
from tests.helpers import RedisServer

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
TEST_REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/9")
TEST_KEK = generate_kek()

# cheap argon2 only where a test makes many users; the password tests use the real cost
FAST_ARGON2 = {"ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 1024}


def _pg_schema_url(schema: str) -> str:
    return f"{TEST_DATABASE_URL}?options={quote(f'-csearch_path={schema}')}"


class PgSchema:
    """A throwaway PostgreSQL schema: ``url`` points SQLAlchemy at it."""

    def __init__(self):
        self.name = f"t_{os.getpid()}_{secrets.token_hex(4)}"
        self.url = _pg_schema_url(self.name)
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.name}"')

    def drop(self):
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{self.name}" CASCADE')


class RedisNamespace:
    """A key prefix of our own in the test Redis db, deleted afterwards."""

    def __init__(self):
        self.url = TEST_REDIS_URL
        self.prefix = f"t{os.getpid()}{secrets.token_hex(4)}"
        self.client = redis_lib.Redis.from_url(self.url)

    def keys(self) -> list[bytes]:
        return list(self.client.scan_iter(match=f"{self.prefix}:*", count=1000))

    def clear(self):
        keys = self.keys()
        if keys:
            self.client.delete(*keys)

    def close(self):
        self.clear()
        self.client.close()


@pytest.fixture
def own_redis():
    """A redis-server of the test's own, which it may stop and restart (empty)."""
    server = RedisServer()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def pg_schema():
    schema = PgSchema()
    yield schema
    schema.drop()


@pytest.fixture(scope="session")
def redis_ns():
    namespace = RedisNamespace()
    yield namespace
    namespace.close()


# an instance folder of the test run's own: never the checkout's ./instance, which a
# `make run` in the same checkout may be using
TEST_INSTANCE = tempfile.mkdtemp(prefix="idp-test-instance-")
atexit.register(shutil.rmtree, TEST_INSTANCE, True)


def base_config(**overrides) -> dict:
    config = {"SECRET_KEY_VALUE": TEST_KEK, "LOG_LEVEL": "WARNING", "TESTING": True,
              "INSTANCE_PATH": TEST_INSTANCE}
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def app(pg_schema, redis_ns):
    """The service on PostgreSQL and Redis, migrated once per run."""
    application = create_app(base_config(
        DATABASE_URL=pg_schema.url, REDIS_URL=redis_ns.url, REDIS_KEY_PREFIX=redis_ns.prefix,
    ))
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        dispose_engines()


@pytest.fixture(scope="session")
def upstream(tmp_path_factory):
    """A real OpenID Connect provider process on loopback (``tests/federation/upstream.py``),
    for the connector tests and the app's SSO tests alike."""
    process = UpstreamProcess(CLIENT_ID, CLIENT_SECRET, tmp_path_factory.mktemp("upstream"))
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _fresh_upstream(request):
    """Each test starts from the upstream's default behaviour (only where it is used)."""
    if "upstream" in request.fixturenames:
        request.getfixturevalue("upstream").reset()


@pytest.fixture
def embedded_app(tmp_path):
    """The embedded default: SQLite in a temporary instance folder, ``memory://`` store."""
    application = create_app(base_config(
        DATABASE_URL=f"sqlite:///{tmp_path / 'idp.db'}", REDIS_URL="memory://",
    ))
    with application.app_context():
        upgrade()
    yield application
    with application.app_context():
        dispose_engines()


def _clear_data(application):
    with application.app_context():
        db.session.remove()
        tables = [t for t in reversed(db.metadata.sorted_tables) if t.name != "signing_keys"]
        with db.engine.begin() as conn:
            for table in tables:
                conn.execute(table.delete())


@pytest.fixture
def clean(app, redis_ns):
    """Empty tables (keys excepted) and this run's Redis keys before a test."""
    _clear_data(app)
    redis_ns.clear()
    yield app


@pytest.fixture
def client(clean):
    return clean.test_client()


@pytest.fixture
def ctx(clean):
    with clean.app_context():
        yield clean


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_user(clean):
    """Create a user through the real service code (argon2 hash included)."""
    from app.users import create_user

    def _make(username=None, password="correct horse battery", roles=None, tenants=None,
              email=None, disabled=False):
        username = username or unique("user")
        with clean.app_context():
            user = create_user(username=username, email=email or f"{username}@example.test",
                               password=password, platform_roles=roles or [],
                               memberships=tenants or {})
            if disabled:
                user.disabled = True
                db.session.commit()
            return {"id": user.id, "username": username, "password": password}

    return _make


@pytest.fixture
def make_tenant(clean):
    from app.models import Tenant

    def _make(tenant_id=None, name=None):
        tenant_id = tenant_id or unique("tenant-")
        with clean.app_context():
            db.session.add(Tenant(id=tenant_id, name=name or tenant_id))
            db.session.commit()
        return tenant_id

    return _make


def count_rows(application, table: str) -> int:
    with application.app_context():
        return db.session.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


@pytest.fixture
def token_for(client):
    """Sign a user in and return their access token (``tenant`` scopes it)."""
    def _token(user: dict, tenant: str | None = None) -> str:
        body = {"username": user["username"], "password": user["password"]}
        if tenant:
            body["tenant"] = tenant
        response = client.post("/api/v1/auth/token", json=body)
        assert response.status_code == 200, response.get_json()
        return response.get_json()["token"]

    return _token


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def audit_events(application, action: str) -> list[dict]:
    from app.models import AuditEvent

    with application.app_context():
        rows = db.session.execute(sa.select(AuditEvent).where(AuditEvent.action == action)
                                  .order_by(AuditEvent.id)).scalars().all()
        return [{"outcome": r.outcome, "actor": r.actor, "target": r.target,
                 "client_ip": r.client_ip, "details": r.details} for r in rows]
