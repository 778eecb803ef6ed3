"""Flask extensions and the per-app service container, in a module of their own.

Models, blueprints and the ``idp`` services import from here, never from ``app``'s
factory, so there is no import cycle (flask-sqlalchemy#230).
"""

from __future__ import annotations

from flask import current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData, create_engine
from sqlalchemy.orm import DeclarativeBase

# deterministic constraint names so migrations agree on every backend
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()

SERVICES_KEY = "infracast"
AUTOCOMMIT_ENGINE_KEY = "infracast.autocommit_engine"


def services():
    """The running app's service container (see ``app/services/__init__.py``)."""
    return current_app.extensions[SERVICES_KEY]


def autocommit():
    """A connection for one self-contained statement: no BEGIN, no ROLLBACK, one round trip.

    The hot paths (token, refresh, introspection) read and write single rows; each statement
    is atomic on its own, so wrapping it in a transaction would only add round trips. The
    connections come from a pool of their own whose connections are always in autocommit
    mode, so nothing is switched or reset around each use either.
    """
    engine = current_app.extensions.get(AUTOCOMMIT_ENGINE_KEY)
    if engine is None:
        engine = current_app.extensions.setdefault(AUTOCOMMIT_ENGINE_KEY, create_engine(
            db.engine.url, isolation_level="AUTOCOMMIT", pool_reset_on_return=None,
            pool_recycle=1800))
    return engine.connect()


def dispose_engines() -> None:
    db.engine.dispose()
    engine = current_app.extensions.get(AUTOCOMMIT_ENGINE_KEY)
    if engine is not None:
        engine.dispose()
