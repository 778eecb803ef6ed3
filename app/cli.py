"""``flask --app wsgi idp ...``: operator commands."""

from __future__ import annotations

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from .bootstrap import bootstrap

idp_cli = AppGroup("idp", help="Infracast Identity operations.")


@idp_cli.command("bootstrap")
def bootstrap_command():
    """Create the signing key and the first platform admin if missing (idempotent)."""
    bootstrap(current_app._get_current_object())
    click.echo("bootstrap complete")


def register_cli(app: Flask) -> None:
    app.cli.add_command(idp_cli)
