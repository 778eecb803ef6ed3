"""Audit events: a row in ``audit_events`` (its own transaction) and a JSON log line."""

from __future__ import annotations

import logging

import sqlalchemy as sa
from flask import has_request_context, request

from .extensions import autocommit
from .models import AuditEvent, utcnow

log = logging.getLogger("infracast.audit")


class SqlAudit:
    table = AuditEvent.__table__

    def __call__(self, action: str, outcome: str, *, actor: str | None = None,
                 target: str | None = None, **details) -> None:
        client_ip = request.remote_addr if has_request_context() else None
        # the columns are bounded and PostgreSQL refuses NUL in text; an attacker-chosen value
        # (a user name tried, a request path, an upstream's error) must not be able to make
        # the event unwritable
        actor, target = _bounded(actor, self.table.c.actor), _bounded(target, self.table.c.target)
        details = _without_nul(details)
        # one statement outside any request transaction: a refused request rolls back, its
        # audit event stays
        with autocommit() as conn:
            conn.execute(sa.insert(self.table).values(
                at=utcnow(), action=action, outcome=outcome, actor=actor, target=target,
                client_ip=client_ip, details=details))
        log.info("audit", extra={"fields": {
            "event": "audit", "action": action, "outcome": outcome, "actor": actor,
            "target": target, "client_ip": client_ip, **details}})


def _bounded(value: str | None, column: sa.Column) -> str | None:
    return None if value is None else _without_nul(str(value))[:column.type.length]


def _without_nul(value):
    """``value`` with each NUL in its strings, at any depth, replaced by U+FFFD."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, (list, tuple)):
        return [_without_nul(item) for item in value]
    if isinstance(value, dict):
        return {_without_nul(key): _without_nul(item) for key, item in value.items()}
    return value
