"""Flask extensions and the per-app service container, in a module of their own.

Models, blueprints and the ``idp`` services import from here, never from ``app``'s
factory, so there is no import cycle (flask-sqlalchemy#230).
"""

from __future__ import annotations

from flask import current_app
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import MetaData
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


def services():
    """The running app's service container (see ``app/services/__init__.py``)."""
    return current_app.extensions[SERVICES_KEY]


def autocommit():
    """A connection for one self-contained statement: no BEGIN, no ROLLBACK, one round trip.

    The hot paths (token, refresh, introspection) read and write single rows; each statement
    is atomic on its own, so wrapping it in a transaction would only add round trips.
    """
    return db.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
