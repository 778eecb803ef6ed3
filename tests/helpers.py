"""Small helpers shared by the tests (no fixtures here)."""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import socket
import subprocess
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

import redis as redis_lib
import requests

from idp.verifier_introspection import client_secret_basic

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """A server in a process of its own on a free loopback port, its output in a log file.

    A subclass picks ``self.port`` / ``self.url`` up from ``__init__``, then calls ``start``,
    which returns once GET ``ready_path`` answers 200.
    """

    ready_path = "/"

    def __init__(self):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, argv: list[str], log_path: Path, env: dict[str, str] | None = None,
              timeout: float = 30) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w")
        self.process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log()[-2000:]}")
            try:
                if requests.get(self.url + self.ready_path, timeout=1).status_code == 200:
                    return
            except (requests.ConnectionError, requests.Timeout):  # not listening, or busy
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"server did not become ready: {self.log()[-2000:]}")

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class RedisServer:
    """A redis-server of the test's own on a free port, which the test may stop and restart
    (empty, or with ``directory`` from the snapshot its last ``SAVE`` wrote there)."""

    def __init__(self, directory=None):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.directory = directory
        self.process = None
        self.start()

    def start(self) -> None:
        snapshot = ["--dir", str(self.directory)] if self.directory else []
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", *snapshot],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                if redis_lib.Redis(port=self.port, socket_timeout=0.5).ping():
                    return
            except redis_lib.RedisError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def crash(self) -> None:
        """Stop without saving what changed since the last snapshot (a crash, a failover)."""
        try:
            redis_lib.Redis(port=self.port, socket_timeout=5).shutdown(nosave=True)
        except redis_lib.ConnectionError:
            pass
        self.process.wait(timeout=10)


def new_api_key(idp_url: str, token: str, tenants: list[str], **fields) -> dict:
    """``POST /api/v1/api-keys`` on a live IdP (``nodes:read`` unless ``permissions`` says
    otherwise): the 201 body, with the key."""
    body = {"name": "ci", "tenants": tenants, "permissions": ["nodes:read"], **fields}
    answer = requests.post(idp_url + "/api/v1/api-keys", json=body, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 201, answer.text
    return answer.json()


def revoke_api_key(idp_url: str, token: str, key_id: str) -> None:
    answer = requests.delete(f"{idp_url}/api/v1/api-keys/{key_id}", timeout=10,
                             headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 204, answer.text


def readme_block(marker: str) -> str:
    """The ``sh`` block after ``<!-- marker`` in the README, for a test to run as written."""
    text = (ROOT / "README.md").read_text()
    after = text.split(f"<!-- {marker}", 1)[1]
    return after.split("```sh\n", 1)[1].split("```", 1)[0]


def jwt_parts(token: str) -> tuple[dict, dict]:
    """Header and claims of a JWT, read without verifying (for asserting shapes)."""
    def part(segment: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

    header, payload, _ = token.split(".")
    return part(header), part(payload)


class OneKey:
    """A keyring of one real, freshly generated signing key (``idp.tokens`` needs only
    ``signing_key()``), for tests that issue tokens without a database."""

    def __init__(self):
        from keys.manager import KeyManager
        from keys.sealing import Sealer, generate_kek, parse_kek

        manager = KeyManager(None, Sealer(parse_kek(generate_kek())),
                             clock=lambda: datetime.now(timezone.utc))
        self.key = manager.open(manager.generate("active"))

    def signing_key(self):
        return self.key


def access_token_issuer(clock, ttl: int = 900):
    """An ``AccessTokenIssuer`` on a key of its own, with ``clock``."""
    from idp.tokens import AccessTokenIssuer

    return AccessTokenIssuer(OneKey(), issuer="https://idp.example", audience="api", ttl=ttl,
                             clock=clock)


def login(client, username: str, password: str, **extra):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password, **extra})


def basic_auth(client_id: str, secret: str) -> dict:
    return {"Authorization": client_secret_basic(client_id, secret)}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


class RoundTrips:
    """The SQL statements and Redis commands an app makes, as ``bench/anatomy.py`` counts
    them: every engine's ``before_cursor_execute``, and the store's Redis client."""

    def __init__(self):
        self.sql: list[str] = []
        self.redis: list[tuple[str, str]] = []  # (command, key)

    def statements(self, table: str) -> int:
        """How many statements read or wrote ``table``."""
        pattern = re.compile(rf'\b(FROM|INTO|UPDATE)\s+"?{table}\b', re.IGNORECASE)
        return sum(1 for text in self.sql if pattern.search(text))

    def commands(self, command: str, kind: str) -> int:
        """How many ``command`` (GET, SET, ...) on keys of ``kind`` (``ia``, ``sess``, ...)."""
        return sum(1 for name, key in self.redis
                   if name == command and f":{kind}:" in key)


@contextmanager
def round_trips(app):
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from app.extensions import services

    seen = RoundTrips()
    with app.app_context():
        client = services().store.client

    def on_execute(conn, cursor, statement, *args):
        seen.sql.append(statement)

    original = client.execute_command

    def execute_command(*args, **kwargs):
        seen.redis.append((str(args[0]).upper(), str(args[1]) if len(args) > 1 else ""))
        return original(*args, **kwargs)

    event.listen(Engine, "before_cursor_execute", on_execute)
    client.execute_command = execute_command
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", on_execute)
        del client.execute_command  # back to the class's method


@contextmanager
def json_logs(level: int | None = None):
    """What the service logs meanwhile, written as its JSON lines are (``app/logging.py``),
    into the yielded ``StringIO``; ``level`` lowers the service's log level for as long."""
    from app.logging import JsonFormatter

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("infracast")
    previous = logger.level
    logger.addHandler(handler)
    if level is not None:
        logger.setLevel(level)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)
