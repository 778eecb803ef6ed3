"""The round trips behind one request of each row, counted without any noise.

One request of the row, exactly as wrk sends it, goes through the app in the runner's
process (Flask's test client, same database schema and Redis prefix as the server); every
SQL statement and every Redis command it makes is recorded. Unlike requests/s, this does
not depend on what else the machine is doing.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qsl

from sqlalchemy import event

from .wrk import Request

_TABLE_AFTER = {"SELECT": r"\bFROM\s+\"?(\w+)", "INSERT": r"\bINTO\s+\"?(\w+)",
                "UPDATE": r"^\s*UPDATE\s+\"?(\w+)", "DELETE": r"\bFROM\s+\"?(\w+)"}
# pool_pre_ping: every checkout of a pooled connection costs a SELECT 1 round trip first
PING = "ping (pool_pre_ping)"


@dataclass(frozen=True)
class Anatomy:
    ok: bool  # the answer was what the row expects (so the counts are of a real request)
    sql: tuple[str, ...]  # "SELECT users", "INSERT audit_events", ...
    redis: tuple[str, ...]  # "EVALSHA", "MGET", ...

    def describe_sql(self) -> str:
        counts = Counter(self.sql)
        return ", ".join(f"{n}× {what}" if n > 1 else what for what, n in counts.items()) or "-"

    def describe_redis(self) -> str:
        counts = Counter(self.redis)
        return ", ".join(f"{n}× {what}" if n > 1 else what for what, n in counts.items()) or "-"


def statement(sql: str) -> str:
    """``SELECT users`` for a statement reading users: its verb and first table."""
    verb = sql.split(None, 1)[0].upper() if sql.strip() else "?"
    pattern = _TABLE_AFTER.get(verb)
    match = re.search(pattern, sql, re.IGNORECASE) if pattern else None
    return f"{verb} {match.group(1)}" if match else verb


def trace(app, request: Request) -> Anatomy:
    """Send ``request``'s first request through ``app`` and record its round trips.

    The caller sends one first to warm the caches a worker keeps (keys, discovery), so
    that the recorded one is a steady-state request.
    """
    from app.extensions import db, services

    sql: list[str] = []
    redis: list[str] = []
    with app.app_context():
        engine = db.engine
        client = services().store.client

    def on_execute(conn, cursor, text, parameters, context, executemany):
        sql.append(statement(text))

    def on_checkout(dbapi_connection, record, proxy):
        sql.append(PING)

    def on_commit(conn):
        sql.append("COMMIT")

    def on_rollback(conn):
        sql.append("ROLLBACK")

    listeners = [(engine, "before_cursor_execute", on_execute), (engine, "commit", on_commit),
                 (engine, "rollback", on_rollback), (engine.pool, "checkout", on_checkout)]

    original = client.execute_command

    def execute_command(*args, **kwargs):
        redis.append(str(args[0]).upper())
        return original(*args, **kwargs)

    headers = dict(request.headers)
    first = request.first_body()
    body = None if first is None else dict(parse_qsl(first))
    for target, name, listener in listeners:
        event.listen(target, name, listener)
    client.execute_command = execute_command
    try:
        response = app.test_client().open(request.path, method=request.method, data=body,
                                          headers=headers)
    finally:
        for target, name, listener in listeners:
            event.remove(target, name, listener)
        del client.execute_command  # back to the class's method
    # the rows' expectations are Lua patterns; ours translate to regular expressions
    expect = (request.expect or "").replace("%s", r"\s")
    ok = 200 <= response.status_code < 300 and re.search(expect, response.get_data(True)) is not None
    return Anatomy(ok, tuple(sql), tuple(redis))
