import pytest

from app.config import (ConfigError, embedded_store_refusal, load_config, normalise_database_url,
                        validate)


def test_defaults_match_the_contract():
    config = load_config({})
    assert config["ISSUER"] == "http://127.0.0.1:8000"
    assert config["REDIS_URL"] == "memory://"
    assert config["AUDIENCE"] == "infracast-api"
    assert config["ACCESS_TOKEN_TTL"] == 3600
    assert config["REFRESH_TOKEN_TTL"] == 604800
    assert config["TRUSTED_PROXIES"] == 0
    validate(config)


def test_values_are_parsed_and_checked():
    assert load_config({"ACCESS_TOKEN_TTL": "60"})["ACCESS_TOKEN_TTL"] == 60
    with pytest.raises(ConfigError, match="ACCESS_TOKEN_TTL"):
        load_config({"ACCESS_TOKEN_TTL": "soon"})
    with pytest.raises(ConfigError, match="IDP_ISSUER"):
        validate(load_config({"IDP_ISSUER": "http://x/"}))
    with pytest.raises(ConfigError, match="REDIS_URL"):
        validate(load_config({"REDIS_URL": "mongodb://x"}))
    assert load_config({})["KEY_ROTATION_DAYS"] == 90
    with pytest.raises(ConfigError, match="KEY_ROTATION_DAYS must be at least 0"):
        validate(load_config({"KEY_ROTATION_DAYS": "-1"}))


def test_postgres_urls_use_psycopg3():
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"
    assert normalise_database_url("sqlite:///x.db") == "sqlite:///x.db"


def test_authorization_codes_live_at_most_a_minute():
    assert load_config({})["AUTHORIZATION_CODE_TTL"] == 60
    validate(load_config({"AUTHORIZATION_CODE_TTL": "30"}))
    for bad in ("0", "61"):
        with pytest.raises(ConfigError, match="AUTHORIZATION_CODE_TTL"):
            validate(load_config({"AUTHORIZATION_CODE_TTL": bad}))


def test_every_numeric_setting_has_a_lower_bound():
    from app.config import MINIMUMS, SETTINGS

    numeric = {key for key, setting in SETTINGS.items()
               if isinstance(setting.default, (int, float)) and not isinstance(setting.default, bool)}
    assert numeric == set(MINIMUMS)
    for key, least in MINIMUMS.items():
        with pytest.raises(ConfigError, match=SETTINGS[key].env):
            validate(load_config({SETTINGS[key].env: str(least - 1)}))


def test_the_embedded_store_serves_sqlite_only():
    postgres = "postgresql://db.internal/idp"
    assert embedded_store_refusal(load_config({})) is None  # make run: SQLite in the instance
    assert embedded_store_refusal(load_config({"DATABASE_URL": "sqlite:////srv/idp.db"})) is None
    assert embedded_store_refusal(load_config({"DATABASE_URL": postgres,
                                               "REDIS_URL": "redis://r:6379/0"})) is None
    for unset in ({}, {"REDIS_URL": ""}, {"REDIS_URL": "memory://"}):
        refusal = embedded_store_refusal(load_config({"DATABASE_URL": postgres, **unset}))
        assert refusal.startswith("REDIS_URL=memory://")
        assert "PostgreSQL" in refusal and "redis://" in refusal
