"""Start-up work that must happen once a database exists: a signing key and a first admin.

Every step is idempotent and safe when several workers or hosts run it at once; the
server runs it in each worker (``gunicorn.conf.py``), ``make run`` and the tests too.
"""

from __future__ import annotations

import logging
import secrets
import sys

from flask import Flask

from idp.errors import Conflict

from .extensions import services
from .users import any_user_exists, create_user

log = logging.getLogger("infracast.startup")

GENERATED_ADMIN = "admin"


def bootstrap(app: Flask) -> None:
    with app.app_context():
        services().keys.ensure_active()
        ensure_first_admin(app)


def is_embedded(app: Flask) -> bool:
    return (str(app.config["REDIS_URL"]).startswith("memory://")
            and str(app.config["SQLALCHEMY_DATABASE_URI"]).startswith("sqlite"))


def ensure_first_admin(app: Flask) -> None:
    if any_user_exists():
        return
    username = app.config.get("BOOTSTRAP_ADMIN_USERNAME")
    password = app.config.get("BOOTSTRAP_ADMIN_PASSWORD")
    generated = False
    if not (username and password):
        if not is_embedded(app):
            log.warning("no users exist and IDP_BOOTSTRAP_ADMIN_USERNAME/PASSWORD are unset")
            return
        username, password, generated = GENERATED_ADMIN, secrets.token_urlsafe(18), True
    try:
        create_user(username=str(username), email=None, password=str(password),
                    platform_roles=["admin"])
    except Conflict:
        return  # another worker made it first
    log.info("created the first platform admin", extra={"fields": {"username": username}})
    if generated:
        # printed once, to the terminal only: the log never carries a password
        print(f"\n  First platform admin created: username '{username}', password '{password}'\n"
              "  It is shown this once; set IDP_BOOTSTRAP_ADMIN_* to choose your own.\n",
              file=sys.stderr, flush=True)
