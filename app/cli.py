"""``flask --app wsgi idp ...`` and ``flask --app wsgi keys ...``: operator commands."""

from __future__ import annotations

from datetime import datetime

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from keys.manager import RETIRED, KeyRecord, KeyStates
from keys.rotation import CREATED, LOST_RACE, PROMOTED, WAITING, KeyRotator, RotationStep

from .bootstrap import bootstrap
from .extensions import services

idp_cli = AppGroup("idp", help="Infracast Identity operations.")
keys_cli = AppGroup("keys", help="Signing keys: list them, rotate them.")


@idp_cli.command("bootstrap")
def bootstrap_command():
    """Create the signing key and the first platform admin if missing (idempotent)."""
    bootstrap(current_app._get_current_object())
    click.echo("bootstrap complete")


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _in(moment: datetime, now: datetime) -> str:
    seconds = max(0, int((moment - now).total_seconds()))
    if seconds == 0:
        return "now"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    units = zip((days, hours, minutes, seconds), "dhms")
    return "in " + "".join(f"{amount}{unit}" for amount, unit in units if amount)


def _ready(rotator: KeyRotator, next_key: KeyRecord, now: datetime) -> str:
    ready = rotator.ready_at(next_key)
    return f"{_when(ready)} ({_in(ready, now)})"


def describe(step: RotationStep, rotator: KeyRotator, now: datetime) -> str:
    if step.outcome == CREATED:
        return (f"Created next key {step.next.kid}; it is published in the JWKS from now on.\n"
                f"It can be promoted from {_ready(rotator, step.next, now)}: "
                "run `keys rotate` again then.")
    if step.outcome == WAITING:
        return (f"Next key {step.next.kid} is published, but caches may not hold it yet.\n"
                f"It can be promoted from {_ready(rotator, step.next, now)}. Nothing changed.")
    if step.outcome == PROMOTED:
        reload = current_app.config["KEY_CACHE_SECONDS"]
        return (f"Promoted {step.active.kid} to active: every worker signs with it "
                f"within {reload}s (KEY_CACHE_SECONDS).\n"
                f"Retired {step.retired.kid}: it stays in the JWKS until "
                f"{_when(step.retired.publish_until)}, when every token it signed has expired.")
    return ("Another host changed the signing keys at the same moment; nothing changed here.\n"
            f"Active key: {step.active.kid if step.active else '-'}; "
            f"next key: {step.next.kid if step.next else '-'}. Run `keys rotate` again to go on.")


@keys_cli.command("rotate")
def rotate_command():
    """One rotation step: create a next key, or promote it once every cache holds it.

    Run it once to publish a new key and again (after JWKS_MAX_AGE + KEY_CACHE_SECONDS)
    to make it the signing key. Safe to run from several hosts at once.
    """
    rotator = services().rotator
    step = rotator.step()
    click.echo(describe(step, rotator, rotator.manager.clock()))
    if step.outcome == LOST_RACE:
        raise SystemExit(1)


@keys_cli.command("list")
def list_command():
    """Every signing key: state, when it was created, activated, retired, and published until."""
    rotator = services().rotator
    now = rotator.manager.clock()
    records = rotator.manager.all_keys()
    header = ("KID", "STATE", "CREATED", "ACTIVATED", "RETIRED", "PUBLISHED UNTIL")
    rows = [header] + [
        (r.kid, r.state, _when(r.created_at), _when(r.activated_at), _when(r.retired_at),
         _when(r.publish_until) + (" (unpublished)" if r.state == RETIRED
                                  and r.publish_until is not None and r.publish_until <= now
                                  else ""))
        for r in records
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip())
    click.echo(_schedule(rotator, now, KeyStates.of(records)))


def _schedule(rotator: KeyRotator, now: datetime, keys: KeyStates) -> str:
    if keys.next is not None:
        return f"\nNext key {keys.next.kid} can be promoted from {_ready(rotator, keys.next, now)}."
    if keys.active is None:
        return "\nNo active key yet: the first worker to start (or `idp bootstrap`) creates one."
    due = rotator.due_at(keys.active)
    if due is None:
        return "\nAutomatic rotation is off (KEY_ROTATION_DAYS=0): rotate with `keys rotate`."
    begins = due - rotator.policy.publish_delay
    return (f"\nAutomatic rotation publishes the next key from {_when(begins)} "
            f"and promotes it from {_when(due)}.")


def register_cli(app: Flask) -> None:
    app.cli.add_command(idp_cli)
    app.cli.add_command(keys_cli)
