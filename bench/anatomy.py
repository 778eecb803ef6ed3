"""The round trips behind one request of each row, counted without any noise.

One request of the row, exactly as wrk sends it, goes through the app in the runner's
process (Flask's test client, same database schema and Redis prefix as the server); every
SQL statement and every Redis command it makes is recorded. Unlike requests/s, this does
not depend on what else the machine is doing.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from dataclasses import dataclass
from urllib.parse import parse_qsl

from psycopg.pq import TransactionStatus
from sqlalchemy import event

from .wrk import Request

_TABLE_AFTER = {"SELECT": r"\bFROM\s+\"?(\w+)", "INSERT": r"\bINTO\s+\"?(\w+)",
                "UPDATE": r"^\s*UPDATE\s+\"?(\w+)", "DELETE": r"\bFROM\s+\"?(\w+)"}
_PARENTHESES = re.compile(r"\(([^()]*)\)")  # innermost first
# pool_pre_ping: every checkout of a pooled connection costs a SELECT 1 round trip first
PING = "ping (pool_pre_ping)"


@dataclass(frozen=True)
class Anatomy:
    ok: bool  # every answer was what the row expects (so the counts are of real requests)
    sql: tuple[str, ...]  # "SELECT users", "INSERT audit_events", ... of the first request
    redis: tuple[str, ...]  # "EVALSHA", "MGET", ... of the first request
    cpu_ms: float  # this process's CPU per request, one request at a time, no WSGI server

    def describe_sql(self) -> str:
        return _describe(self.sql)

    def describe_redis(self) -> str:
        return _describe(self.redis)


def _describe(calls: tuple[str, ...]) -> str:
    """``SELECT users, 2× INSERT audit_events``: each call once, counted, in first-seen order."""
    counts = Counter(calls)
    return ", ".join(f"{n}× {what}" if n > 1 else what for what, n in counts.items()) or "-"


def statement(sql: str) -> str:
    """``SELECT users`` for a statement reading users: its verb and first table, outside
    any subquery."""
    verb = sql.split(None, 1)[0].upper() if sql.strip() else "?"
    pattern = _TABLE_AFTER.get(verb)
    outer = sql
    # a subquery becomes the word "subquery" (so FROM (SELECT ...) names no table of its
    # own); other parentheses, count(*) say, just go
    while (inner := _PARENTHESES.sub(_hide, outer)) != outer:
        outer = inner
    match = re.search(pattern, outer, re.IGNORECASE) if pattern else None
    return f"{verb} {match.group(1)}" if match else verb


def _hide(parenthesised: re.Match) -> str:
    return " subquery " if re.match(r"\s*SELECT\b", parenthesised.group(1), re.I) else " "


def _bodies(request: Request) -> list[dict | None]:
    if request.data is None:
        return [None]
    return [dict(parse_qsl(body)) for body in request.bodies()]


def trace(app, request: Request, repeat: int = 1) -> Anatomy:
    """Send ``repeat`` of ``request``'s requests through ``app``, one after the other:
    the round trips of the first, and the CPU they took on average.

    The caller sends one first to warm the caches a worker keeps (keys, discovery), so
    that the recorded ones are steady-state requests.
    """
    from app.extensions import AUTOCOMMIT_ENGINE_KEY, db, services

    sql: list[str] = []
    redis: list[str] = []
    with app.app_context():
        # the ORM's engine, and the hot paths' autocommit one (app.extensions.autocommit),
        # which the warm-up request has made
        engines = [db.engine, *filter(None, [app.extensions.get(AUTOCOMMIT_ENGINE_KEY)])]
        client = services().store.client

    def on_execute(conn, cursor, text, parameters, context, executemany):
        sql.append(statement(text))

    def on_checkout_of(engine):
        def on_checkout(dbapi_connection, record, proxy):
            if engine.pool._pre_ping:  # without it a checkout makes no round trip
                sql.append(PING)
        return on_checkout

    def on_commit(conn):
        sql.append("COMMIT")

    def on_rollback(conn):
        # SQLAlchemy closes every connection with a rollback; psycopg sends it only when
        # a transaction is open (never on the autocommit engine), so count only those
        info = getattr(conn.connection.dbapi_connection, "info", None)
        if info is None or info.transaction_status != TransactionStatus.IDLE:
            sql.append("ROLLBACK")

    listeners = [listener for engine in engines for listener in (
        (engine, "before_cursor_execute", on_execute), (engine, "commit", on_commit),
        (engine, "rollback", on_rollback), (engine.pool, "checkout", on_checkout_of(engine)))]

    original = client.execute_command

    def execute_command(*args, **kwargs):
        redis.append(str(args[0]).upper())
        return original(*args, **kwargs)

    headers = dict(request.headers)
    bodies = _bodies(request)
    if len(bodies) < repeat and request.script == "refresh.lua":
        raise ValueError("each refresh request needs a token of its own")
    # the rows' expectations are Lua patterns; ours translate to regular expressions
    expect = re.compile((request.expect or "").replace("%s", r"\s"))
    tester = app.test_client()
    ok, first = True, ([], [])
    for target, name, listener in listeners:
        event.listen(target, name, listener)
    client.execute_command = execute_command
    try:
        started = time.process_time()
        for i in range(repeat):
            response = tester.open(request.path, method=request.method,
                                   data=bodies[i % len(bodies)], headers=headers)
            ok = ok and 200 <= response.status_code < 300 \
                and expect.search(response.get_data(True)) is not None
            if i == 0:
                first = (list(sql), list(redis))
        cpu = time.process_time() - started
    finally:
        for target, name, listener in listeners:
            event.remove(target, name, listener)
        del client.execute_command  # back to the class's method
    return Anatomy(ok, tuple(first[0]), tuple(first[1]), cpu * 1000 / repeat)
