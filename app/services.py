"""The service container: every long-lived object one app instance needs, built once.

``create_app`` builds it and stores it in ``app.extensions``; views reach it through
``app.extensions.services()``. Nothing here opens a connection at import time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone

from flask import request

from idp.accounts import PasswordAuthenticator
from idp.hashing import SecretHasher
from idp.passwords import PasswordHasher
from idp.server import AuthorizationServer
from idp.store import Store
from idp.token_service import TokenService
from idp.tokens import AccessTokenIssuer
from keys.keyring import Keyring
from keys.manager import KeyManager
from keys.rotation import KeyRotator, RotationPolicy
from keys.sealing import Sealer

from .repositories import SqlAccountDirectory, SqlClientDirectory, SqlKeyRepository


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
    tokens: TokenService
    authorization: AuthorizationServer


def build_services(config: dict, kek: bytes) -> Services:
    sealer = Sealer(kek)
    store = Store.from_url(str(config["REDIS_URL"]), prefix=str(config["REDIS_KEY_PREFIX"]))
    passwords = PasswordHasher(
        time_cost=int(config["ARGON2_TIME_COST"]),
        memory_kib=int(config["ARGON2_MEMORY_KIB"]),
        parallelism=int(config["ARGON2_PARALLELISM"]),
    )
    secret_hasher = SecretHasher(sealer.derive("secret-digest"))
    key_manager = KeyManager(SqlKeyRepository(), sealer, clock=utc_clock)
    rotator = KeyRotator(key_manager, RotationPolicy.from_settings(
        jwks_max_age=int(config["JWKS_MAX_AGE"]),
        key_cache_seconds=float(config["KEY_CACHE_SECONDS"]),
        access_token_ttl=int(config["ACCESS_TOKEN_TTL"]),
        rotation_days=int(config["KEY_ROTATION_DAYS"]),
    ))
    keyring = Keyring(key_manager, cache_seconds=float(config["KEY_CACHE_SECONDS"]),
                      auto_rotate=rotator.auto)
    accounts = SqlAccountDirectory()
    clients = SqlClientDirectory(secret_hasher)
    issuer = AccessTokenIssuer(
        keyring, issuer=str(config["ISSUER"]), audience=str(config["AUDIENCE"]),
        ttl=int(config["ACCESS_TOKEN_TTL"]), clock=time.time,
    )
    tokens = TokenService(PasswordAuthenticator(accounts, passwords), issuer,
                          tenant_exists=accounts.tenant_exists)
    authorization = AuthorizationServer(clients, tokens, client_ip=client_ip)
    return Services(
        config=config, sealer=sealer, store=store, passwords=passwords, secrets=secret_hasher,
        keys=key_manager, rotator=rotator, keyring=keyring, accounts=accounts, clients=clients,
        tokens=tokens, authorization=authorization,
    )
