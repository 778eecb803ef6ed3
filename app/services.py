"""The service container: every long-lived object one app instance needs, built once.

``create_app`` builds it and stores it in ``app.extensions``; views reach it through
``app.extensions.services()``. Nothing here opens a connection at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import request

from idp.accounts import PasswordAuthenticator
from idp.authorization_codes import AuthorizationCodes
from idp.authorize import AuthorizationFlow
from idp.hashing import SecretHasher
from idp.id_tokens import IdTokenIssuer
from idp.passwords import PasswordHasher
from idp.refresh import RefreshFamilies
from idp.revocation import RevocationList
from idp.server import AuthorizationServer
from idp.sessions import SessionStore
from idp.store import Store, claim_embedded_store, refuse_embedded_store
from idp.throttle import LoginThrottle, ThrottlePolicy
from idp.token_service import TokenService
from idp.token_validation import AccessTokenValidator
from idp.tokens import AccessTokenIssuer
from idp.userinfo import UserInfo
from keys.keyring import Keyring
from keys.manager import KeyManager
from keys.rotation import KeyRotator, RotationPolicy
from keys.sealing import Sealer

from .audit import SqlAudit
from .config import embedded_store_refusal
from .extensions import db
from .sso import sp_entity_id
from .sso.connections import SqlConnections
from .sso.identities import FederatedAccounts
from .sso.login import SsoLogins
from .sso.registry import ConnectorRegistry, saml_availability
from .repositories import (SqlAccountDirectory, SqlApiKeyDirectory, SqlClientDirectory,
                           SqlConsentDirectory,
                           SqlDurableRevocations, SqlKeyRepository)


def utc_clock() -> datetime:
    return datetime.now(timezone.utc)


def client_ip() -> str:
    """The caller's address; ProxyFix has already applied ``IDP_TRUSTED_PROXIES``."""
    return request.remote_addr or "unknown"


@dataclass
class Services:
    config: dict
    sealer: Sealer
    store: Store
    passwords: PasswordHasher
    secrets: SecretHasher
    keys: KeyManager
    rotator: KeyRotator
    keyring: Keyring
    accounts: SqlAccountDirectory
    clients: SqlClientDirectory
    audit: SqlAudit
    api_keys: SqlApiKeyDirectory
    revocations: RevocationList
    throttle: LoginThrottle
    tokens: TokenService
    validator: AccessTokenValidator
    authorization: AuthorizationServer
    sessions: SessionStore
    consents: SqlConsentDirectory
    flow: AuthorizationFlow
    userinfo: UserInfo
    connectors: ConnectorRegistry
    sso: SsoLogins


def embedded_store_claim(config: dict):
    """The check the embedded store (``memory://``) makes before its first use, in an app
    context: refused unless the database is SQLite (``app/config.py``), then the lock next to
    the database file, which every process on that file contends for, whatever its instance
    folder. An in-memory SQLite database is its process's own: nothing to lock."""
    refusal = embedded_store_refusal(config)

    def claim() -> None:
        if refusal:
            refuse_embedded_store(refusal)
        database = sqlite_database_file(db.engine.url)
        if database:
            claim_embedded_store(database + ".store.lock")

    return claim


def sqlite_database_file(url) -> str | None:
    """The file of an SQLite engine's URL (Flask-SQLAlchemy has made a relative path absolute,
    under the instance folder), symlinks resolved; None for an in-memory database."""
    database = url.database or ""
    if url.query.get("uri"):  # sqlite:///file:path?mode=...&uri=true
        if url.query.get("mode") == "memory":
            return None
        database = database.removeprefix("file:")
    if database in ("", ":memory:"):
        return None
    return os.path.realpath(database)


def build_services(config: dict, kek: bytes) -> Services:
    sealer = Sealer(kek)
    store = Store.from_url(str(config["REDIS_URL"]), prefix=str(config["REDIS_KEY_PREFIX"]),
                           claim=embedded_store_claim(config))
    passwords = PasswordHasher(
        time_cost=int(config["ARGON2_TIME_COST"]),
        memory_kib=int(config["ARGON2_MEMORY_KIB"]),
        parallelism=int(config["ARGON2_PARALLELISM"]),
        concurrency=int(config["ARGON2_CONCURRENCY"]),
    )
    secret_hasher = SecretHasher(sealer.derive("secret-digest"))
    key_manager = KeyManager(SqlKeyRepository(), sealer, clock=utc_clock)
    rotator = KeyRotator(key_manager, RotationPolicy.from_settings(
        jwks_max_age=int(config["JWKS_MAX_AGE"]),
        key_cache_seconds=float(config["KEY_CACHE_SECONDS"]),
        access_token_ttl=int(config["ACCESS_TOKEN_TTL"]),
        rotation_days=int(config["KEY_ROTATION_DAYS"]),
        session_ttl=int(config["SESSION_TTL"]),
    ))
    keyring = Keyring(key_manager, cache_seconds=float(config["KEY_CACHE_SECONDS"]),
                      auto_rotate=rotator.auto)
    accounts = SqlAccountDirectory()
    audit = SqlAudit()
    api_keys = SqlApiKeyDirectory()
    clients = SqlClientDirectory(secret_hasher, cache_seconds=float(config["CLIENT_CACHE_SECONDS"]))
    access_ttl, refresh_ttl = int(config["ACCESS_TOKEN_TTL"]), int(config["REFRESH_TOKEN_TTL"])
    issuer = AccessTokenIssuer(
        keyring, issuer=str(config["ISSUER"]), audience=str(config["AUDIENCE"]),
        ttl=access_ttl,
    )
    revocations = RevocationList(store, SqlDurableRevocations(), access_ttl=access_ttl,
                                 refresh_ttl=refresh_ttl)
    throttle = LoginThrottle(store, ThrottlePolicy(
        free_attempts=int(config["LOGIN_FREE_ATTEMPTS"]),
        base_delay=float(config["LOGIN_BASE_DELAY"]),
        max_delay=float(config["LOGIN_MAX_DELAY"]),
        account_threshold=int(config["LOGIN_ACCOUNT_THRESHOLD"]),
        account_lock=int(config["LOGIN_ACCOUNT_LOCK"]),
        window=int(config["LOGIN_WINDOW"]),
    ), audit)
    families = RefreshFamilies(store, secret_hasher, ttl=refresh_ttl,
                               grace_seconds=float(config["REFRESH_REUSE_GRACE_SECONDS"]))
    tokens = TokenService(
        authenticator=PasswordAuthenticator(accounts, passwords), issuer=issuer,
        accounts=accounts, families=families, revocations=revocations, throttle=throttle,
        audit=audit, tenant_exists=accounts.tenant_exists,
    )
    validator = AccessTokenValidator(keyring, revocations, issuer=str(config["ISSUER"]),
                                     audience=str(config["AUDIENCE"]))
    codes = AuthorizationCodes(store, secret_hasher, ttl=int(config["AUTHORIZATION_CODE_TTL"]),
                               used_ttl=access_ttl)
    id_tokens = IdTokenIssuer(keyring, issuer=str(config["ISSUER"]), ttl=access_ttl)
    authorization = AuthorizationServer(clients, tokens, validator, client_ip=client_ip,
                                        issuer=str(config["ISSUER"]), codes=codes,
                                        id_tokens=id_tokens, api_keys=api_keys,
                                        secrets=secret_hasher)
    sessions = SessionStore(store, secret_hasher, ttl=int(config["SESSION_TTL"]))
    consents = SqlConsentDirectory()
    connectors = ConnectorRegistry(SqlConnections(), config, sealer,
                                   sp_entity_id=sp_entity_id(str(config["ISSUER"])),
                                   saml_unavailable=saml_availability())
    flow = AuthorizationFlow(authorization, sessions, consents, tokens, store,
                             upstreams=connectors.available)
    sso = SsoLogins(connectors, FederatedAccounts(accounts, revocations, audit), flow, sessions,
                    store, audit, issuer=str(config["ISSUER"]))
    return Services(
        config=config, sealer=sealer, store=store, passwords=passwords, secrets=secret_hasher,
        keys=key_manager, rotator=rotator, keyring=keyring, accounts=accounts, clients=clients,
        audit=audit, api_keys=api_keys, revocations=revocations, throttle=throttle, tokens=tokens,
        validator=validator, authorization=authorization, sessions=sessions, consents=consents,
        flow=flow, userinfo=UserInfo(validator, accounts), connectors=connectors, sso=sso,
    )
