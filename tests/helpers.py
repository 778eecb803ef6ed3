"""Small helpers shared by the tests (no fixtures here)."""

from __future__ import annotations

import base64
import json
import socket


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def jwt_parts(token: str) -> tuple[dict, dict]:
    """Header and claims of a JWT, read without verifying (for asserting shapes)."""
    def part(segment: str) -> dict:
        return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))

    header, payload, _ = token.split(".")
    return part(header), part(payload)


def login(client, username: str, password: str, **extra):
    return client.post("/api/v1/auth/token", json={"username": username, "password": password, **extra})


def basic_auth(client_id: str, secret: str) -> dict:
    raw = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {raw}"}


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}
