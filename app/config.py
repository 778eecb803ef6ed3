"""Every setting the service reads, in one place.

The environment is read once, by ``load_config``, when the app factory runs; tests pass
overrides to ``create_app({...})`` instead of touching ``os.environ``. Each entry names
its environment variable, default and meaning; the README's settings table mirrors this.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable


class ConfigError(RuntimeError):
    """A setting is present but unusable; the service refuses to start."""


def _int(value: str) -> int:
    return int(value)


def _str(value: str) -> str:
    return value


def _bool(value: str) -> bool:
    return value.strip().lower() in {"1", "true", "yes", "on"}


@dataclass(frozen=True)
class Setting:
    env: str
    default: object
    parse: Callable[[str], object]
    help: str


# key in app.config -> how it is read
SETTINGS: dict[str, Setting] = {
    "ISSUER": Setting("IDP_ISSUER", "http://127.0.0.1:8000", _str,
                      "issuer URL; every published endpoint URL is derived from it"),
    "DATABASE_URL": Setting("DATABASE_URL", None, _str,
                            "SQLAlchemy URL; default sqlite:///<instance>/idp.db"),
    "REDIS_URL": Setting("REDIS_URL", "memory://", _str,
                         "redis://, rediss:// or memory:// (embedded, one process on an SQLite "
                         "database only)"),
    "REDIS_KEY_PREFIX": Setting("REDIS_KEY_PREFIX", "idp", _str,
                                "namespace of every key this service writes to Redis"),
    "AUDIENCE": Setting("IDP_AUDIENCE", "infracast-api", _str, "aud of access tokens"),
    "ACCESS_TOKEN_TTL": Setting("ACCESS_TOKEN_TTL", 3600, _int, "seconds"),
    "REFRESH_TOKEN_TTL": Setting("REFRESH_TOKEN_TTL", 604800, _int,
                                 "seconds, absolute lifetime of a refresh-token family"),
    "REFRESH_REUSE_GRACE_SECONDS": Setting(
        "REFRESH_REUSE_GRACE_SECONDS", 5.0, float,
        "seconds in which the same client re-presenting a just-rotated refresh token gets the "
        "same successor instead of revoking the family; 0 turns the grace off"),
    "LOGIN_FREE_ATTEMPTS": Setting("LOGIN_FREE_ATTEMPTS", 5, _int,
                                   "failed logins per (account, address) before delays start"),
    "LOGIN_BASE_DELAY": Setting("LOGIN_BASE_DELAY", 1.0, float,
                                "first delay in seconds; it doubles with each further attempt"),
    "LOGIN_MAX_DELAY": Setting("LOGIN_MAX_DELAY", 900.0, float, "longest delay in seconds"),
    "LOGIN_ACCOUNT_THRESHOLD": Setting("LOGIN_ACCOUNT_THRESHOLD", 100, _int,
                                       "failed logins per account, from all addresses, before "
                                       "the account is locked"),
    "LOGIN_ACCOUNT_LOCK": Setting("LOGIN_ACCOUNT_LOCK", 900, _int,
                                  "seconds an account stays locked after that"),
    "LOGIN_WINDOW": Setting("LOGIN_WINDOW", 900, _int,
                            "seconds without attempts after which counters are forgotten"),
    "API_KEY_ROTATION_DAYS": Setting("API_KEY_ROTATION_DAYS", 90, _int,
                                     "age after which an API key is flagged rotation_due"),
    "AUTHORIZATION_CODE_TTL": Setting("AUTHORIZATION_CODE_TTL", 60, _int,
                                      "seconds an authorization code lives (1 to 60)"),
    "SESSION_TTL": Setting("IDP_SESSION_TTL", 28800, _int,
                           "seconds a sign-in at the IdP's login page lasts (the browser "
                           "session that lets a second authorize skip the form)"),
    "SECRET_KEY_FILE": Setting("IDP_SECRET_KEY_FILE", None, _str,
                               "file holding the key-encryption key"),
    "SECRET_KEY_VALUE": Setting("IDP_SECRET_KEY", None, _str,
                                "the key-encryption key itself (32 bytes, URL-safe base64)"),
    "BOOTSTRAP_ADMIN_USERNAME": Setting("IDP_BOOTSTRAP_ADMIN_USERNAME", None, _str,
                                        "first platform admin, created when no user exists"),
    "BOOTSTRAP_ADMIN_PASSWORD": Setting("IDP_BOOTSTRAP_ADMIN_PASSWORD", None, _str,
                                        "its password"),
    "TRUSTED_PROXIES": Setting("IDP_TRUSTED_PROXIES", 0, _int,
                               "reverse-proxy hops whose X-Forwarded-For / "
                               "X-Forwarded-Proto are believed"),
    "ALLOW_HTTP_UPSTREAMS": Setting("IDP_ALLOW_HTTP_UPSTREAMS", False, _bool,
                                    "allow http:// loopback upstream issuers (tests only)"),
    "AZURE_AUTHORITY_HOST": Setting("AZURE_AUTHORITY_HOST", "https://login.microsoftonline.com",
                                    _str, "where Azure AD issuers live"),
    "ARGON2_TIME_COST": Setting("ARGON2_TIME_COST", 2, _int, "argon2id iterations"),
    "ARGON2_MEMORY_KIB": Setting("ARGON2_MEMORY_KIB", 19456, _int, "argon2id memory in KiB"),
    "ARGON2_CONCURRENCY": Setting("ARGON2_CONCURRENCY", 1, _int,
                                  "argon2 computations one worker process runs at a time"),
    "ARGON2_PARALLELISM": Setting("ARGON2_PARALLELISM", 1, _int, "argon2id lanes"),
    "JWKS_MAX_AGE": Setting("JWKS_MAX_AGE", 300, _int,
                            "Cache-Control max-age of the JWKS and discovery documents"),
    "CLIENT_CACHE_SECONDS": Setting("CLIENT_CACHE_SECONDS", 10.0, float,
                                    "how long a worker keeps a registered client before "
                                    "re-reading it (a change reaches every worker within this)"),
    "KEY_CACHE_SECONDS": Setting("KEY_CACHE_SECONDS", 30, _int,
                                 "how long a worker keeps the signing keys before re-reading them"),
    "KEY_ROTATION_DAYS": Setting("KEY_ROTATION_DAYS", 90, _int,
                                 "days the active signing key signs before it is rotated "
                                 "automatically; 0 turns automatic rotation off"),
    "INSTANCE_PATH": Setting("IDP_INSTANCE_PATH", None, _str,
                             "folder for the SQLite database and generated secret key; "
                             "default instance/ in the project folder"),
    "LOG_LEVEL": Setting("LOG_LEVEL", "INFO", _str, "log level of the JSON log"),
}

MAX_CONTENT_LENGTH = 64 * 1024


def load_config(environ: dict[str, str] | None = None) -> dict[str, object]:
    """Read every setting from ``environ`` (default: the process environment)."""
    environ = os.environ if environ is None else environ
    config: dict[str, object] = {}
    for key, setting in SETTINGS.items():
        raw = environ.get(setting.env)
        if raw is None or raw == "":
            config[key] = setting.default
            continue
        try:
            config[key] = setting.parse(raw)
        except ValueError:
            raise ConfigError(f"{setting.env} is not a valid value: {raw!r}") from None
    return config


def normalise_database_url(url: str) -> str:
    """``postgresql://`` means psycopg 3 here, the only PostgreSQL driver we install."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


# the least each numeric setting may be; 0 where 0 turns a feature off
MINIMUMS = {
    "ACCESS_TOKEN_TTL": 1, "REFRESH_TOKEN_TTL": 1, "REFRESH_REUSE_GRACE_SECONDS": 0,
    "LOGIN_FREE_ATTEMPTS": 0, "LOGIN_BASE_DELAY": 0, "LOGIN_MAX_DELAY": 0,
    "LOGIN_ACCOUNT_THRESHOLD": 1, "LOGIN_ACCOUNT_LOCK": 1, "LOGIN_WINDOW": 1,
    "API_KEY_ROTATION_DAYS": 1, "AUTHORIZATION_CODE_TTL": 1, "SESSION_TTL": 1,
    "TRUSTED_PROXIES": 0, "ARGON2_TIME_COST": 1, "ARGON2_MEMORY_KIB": 8,
    "ARGON2_CONCURRENCY": 1, "ARGON2_PARALLELISM": 1, "JWKS_MAX_AGE": 1,
    "CLIENT_CACHE_SECONDS": 0, "KEY_CACHE_SECONDS": 0, "KEY_ROTATION_DAYS": 0,
}


def validate(config: dict[str, object]) -> None:
    issuer = str(config["ISSUER"])
    if not issuer.startswith(("https://", "http://")) or issuer.endswith("/"):
        raise ConfigError("IDP_ISSUER must be an http(s) URL without a trailing slash")
    for key, least in MINIMUMS.items():
        if float(config[key]) < least:
            raise ConfigError(f"{SETTINGS[key].env} must be at least {least}")
    if int(config["AUTHORIZATION_CODE_TTL"]) > 60:
        raise ConfigError("AUTHORIZATION_CODE_TTL must be between 1 and 60 seconds")
    if int(config["ARGON2_MEMORY_KIB"]) < 8 * int(config["ARGON2_PARALLELISM"]):
        raise ConfigError("ARGON2_MEMORY_KIB must be at least 8 × ARGON2_PARALLELISM")
    redis_url = str(config["REDIS_URL"])
    if not redis_url.startswith(("redis://", "rediss://", "unix://", "memory://")):
        raise ConfigError("REDIS_URL must be redis://, rediss://, unix:// or memory://")


def uses_embedded_store(config: dict[str, object]) -> bool:
    """REDIS_URL names the embedded in-process store (its default, so also when unset or empty)."""
    return str(config["REDIS_URL"]).startswith("memory://")


def embedded_store_refusal(config: dict[str, object]) -> str | None:
    """Why the embedded store cannot serve ``config``, or None when it can.

    ``memory://`` keeps revocations, refresh-token families and login counters inside one
    process. On SQLite (the default database) one lock next to the database file keeps a
    second process off it; any other database (PostgreSQL) is there to be shared by several
    processes and hosts, each of which would keep a disjoint store of its own and accept what
    another revoked. The server refuses it at start-up (``gunicorn.conf.py``) and the store at
    its first use (``app/services.py``), so CLI commands such as ``db upgrade``, which never
    touch the store, still run.
    """
    database = config.get("DATABASE_URL")
    if not uses_embedded_store(config) or not database or str(database).startswith("sqlite"):
        return None
    return ("REDIS_URL=memory:// (the default when REDIS_URL is unset or empty) serves an SQLite "
            "database only: it keeps revocations, refresh-token families and login counters "
            "inside one process, and with PostgreSQL several processes or hosts share the "
            "database, each of which would keep a store of its own. Set REDIS_URL to a Redis "
            "they share (redis://, rediss:// or unix://).")
