"""A PostgreSQL schema and a Redis key prefix of the run's own, and what the rows need in them.

Seeded through the service's own code (``app.users``, ``app.clients``, ``app.tenants``);
the API key is created later over HTTP, through the real API (see ``bench/run.py``).
Everything is removed at the end: the schema is dropped and every key under the prefix
deleted.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field
from urllib.parse import quote

import psycopg
import redis as redis_lib
import sqlalchemy as sa

from keys.sealing import generate_kek

AUDIENCE_DEFAULT = "infracast-api"
TENANTS = {"bench-a": "editor", "bench-b": "viewer"}
USER_PASSWORD = "bench password " + "x" * 8
ADMIN_USERNAME = "bench-admin"


@dataclass(frozen=True)
class RegisteredClient:
    client_id: str
    client_secret: str


@dataclass
class Seed:
    usernames: list[str]
    app_client: RegisteredClient  # confidential: password + refresh_token
    resource_server: RegisteredClient
    service_client: RegisteredClient | None  # client_credentials, when this branch has it
    admin_password: str
    grant_types: list[str] = field(default_factory=list)


class Backends:
    """The run's own schema and key prefix; ``env()`` is what a server process needs."""

    def __init__(self, database_url: str, redis_url: str):
        self.database_url = database_url
        self.redis_url = redis_url
        self.schema = f"bench_{os.getpid()}_{secrets.token_hex(4)}"
        self.prefix = f"bench{os.getpid()}{secrets.token_hex(4)}"
        self.kek = generate_kek()
        self.created = False

    @property
    def schema_url(self) -> str:
        """The schema on ``search_path``; ``application_name`` tells our backends apart."""
        joiner = "&" if "?" in self.database_url else "?"
        return (f"{self.database_url}{joiner}options={quote(f'-csearch_path={self.schema}')}"
                f"&application_name={self.prefix}")

    def postgres_pids(self) -> set[int]:
        """The PostgreSQL backends serving our connections (bench/cpu.py)."""
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s",
                                (self.prefix,)).fetchall()
        return {row[0] for row in rows}

    def create(self) -> None:
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{self.schema}"')
        self.created = True

    def env(self) -> dict[str, str]:
        return {"DATABASE_URL": self.schema_url, "REDIS_URL": self.redis_url,
                "REDIS_KEY_PREFIX": self.prefix, "IDP_SECRET_KEY": self.kek}

    def app_config(self) -> dict:
        return {"DATABASE_URL": self.schema_url, "REDIS_URL": self.redis_url,
                "REDIS_KEY_PREFIX": self.prefix, "SECRET_KEY_VALUE": self.kek,
                "LOG_LEVEL": "WARNING"}

    def drop(self) -> None:
        """Remove the schema and every key under the prefix (safe to call twice)."""
        if self.created:
            with psycopg.connect(self.database_url, autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE')
            self.created = False
        client = redis_lib.Redis.from_url(self.redis_url)
        try:
            batch: list[bytes] = []
            for key in client.scan_iter(match=f"{self.prefix}:*", count=1000):
                batch.append(key)
                if len(batch) >= 1000:
                    client.delete(*batch)
                    batch.clear()
            if batch:
                client.delete(*batch)
        finally:
            client.close()


def seed(app, users: int) -> Seed:
    """Migrate, make the signing key, tenants, users and clients (in-process, once)."""
    from flask_migrate import upgrade

    from app.clients import register_client
    from app.extensions import db, dispose_engines, services
    from app.models import User
    from app.tenants import create_tenant
    from app.users import create_user

    admin_password = secrets.token_urlsafe(18)
    with app.app_context():
        upgrade()
        services().keys.ensure_active()
        for tenant in TENANTS:
            create_tenant(tenant, f"Bench {tenant}")
        create_user(username=ADMIN_USERNAME, email=None, password=admin_password,
                    platform_roles=["admin"])
        usernames = [f"bench-user-{i:03d}" for i in range(users)]
        first = create_user(username=usernames[0], email=None, password=USER_PASSWORD,
                            memberships=dict(TENANTS))
        # one argon2 hash for every user: the same password, and no minutes spent hashing
        for username in usernames[1:]:
            create_user(username=username, email=None, password=None, memberships=dict(TENANTS))
        db.session.execute(sa.update(User).where(User.username.in_(usernames[1:]))
                           .values(password_hash=first.password_hash))
        db.session.commit()

        grant_types = services().authorization.grant_types_supported()
        app_client = register_client({
            "client_name": "Bench app", "grant_types": ["password", "refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic"}, client_id="bench-app")
        # a resource server only introspects; give it the narrowest grant there is
        resource_server = register_client({
            "client_name": "Bench resource server", "grant_types": ["refresh_token"],
            "token_endpoint_auth_method": "client_secret_basic", "resource_server": True},
            client_id="bench-resource-server")
        service = None
        if "client_credentials" in grant_types:
            service = register_client({
                "client_name": "Bench service", "grant_types": ["client_credentials"],
                "token_endpoint_auth_method": "client_secret_basic",
                "tenant_permissions": {"bench-a": ["nodes:read"]}}, client_id="bench-service")
        result = Seed(
            usernames=usernames,
            app_client=RegisteredClient(app_client.client.client_id, app_client.client_secret),
            resource_server=RegisteredClient(resource_server.client.client_id,
                                             resource_server.client_secret),
            service_client=(RegisteredClient(service.client.client_id, service.client_secret)
                            if service else None),
            admin_password=admin_password,
            grant_types=grant_types,
        )
        db.session.remove()
        dispose_engines()
    return result
