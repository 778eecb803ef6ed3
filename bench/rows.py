"""What each row sends, and the data behind it, made through the running service.

Every request a row sends is valid and expected to succeed: real users with their real
password, a live refresh token used once, a current JWT, an active API key. The rows'
Lua scripts check each answer (status, body, header), so a row that measured refusals
shows up as INVALID instead of as a fast row.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

import requests

from idp.verifier_introspection import client_secret_basic

from .backends import ADMIN_USERNAME, TENANTS, USER_PASSWORD, RegisteredClient, Seed
from .report import REFERENCE, REFERENCE_PATH
from .wrk import Request

TOKEN_PATH = "/oauth/token"
INTROSPECT_PATH = "/oauth/introspect"
# the grant a row needs, as discovery's grant_types_supported names it
ROW_GRANTS = {"password": "password", "refresh": "refresh_token",
              "client_credentials": "client_credentials"}


def basic(client: RegisteredClient) -> tuple[str, str]:
    return ("Authorization", client_secret_basic(client.client_id, client.client_secret))


class Fixture:
    """Tokens, keys and request files for the rows, against the server at ``base_url``.

    The access token and the API key are made once and serve every server of the run
    (all servers share the port, hence the issuer). Refresh tokens are made afresh for
    each wrk run, because a run uses them up.
    """

    def __init__(self, base_url: str, seed: Seed, workdir: Path, threads: int):
        self.base_url = base_url
        self.seed = seed
        self.workdir = workdir
        self.threads = threads
        self._access_token: str | None = None
        self._api_key: str | None = None
        self._pools = 0

    # -- over HTTP ------------------------------------------------------------------

    def password_grant(self, username: str) -> dict:
        response = requests.post(
            self.base_url + TOKEN_PATH, timeout=30,
            data={"grant_type": "password", "username": username, "password": USER_PASSWORD},
            auth=(self.seed.app_client.client_id, self.seed.app_client.client_secret))
        response.raise_for_status()
        return response.json()

    @property
    def access_token(self) -> str:
        if self._access_token is None:
            self._access_token = self.password_grant(self.seed.usernames[0])["access_token"]
        return self._access_token

    @property
    def api_key(self) -> str:
        """An ``ic_live_`` key made by a platform admin through ``POST /api/v1/api-keys``."""
        if self._api_key is None:
            login = requests.post(self.base_url + "/api/v1/auth/token", timeout=30, json={
                "username": ADMIN_USERNAME, "password": self.seed.admin_password})
            login.raise_for_status()
            created = requests.post(
                self.base_url + "/api/v1/api-keys", timeout=30,
                headers={"Authorization": f"Bearer {login.json()['token']}"},
                json={"name": "bench", "tenants": sorted(TENANTS), "permissions": ["nodes:read"]})
            created.raise_for_status()
            self._api_key = created.json()["key"]
        return self._api_key

    def refresh_tokens(self, count: int) -> list[str]:
        """``count`` live refresh tokens, each of a family of its own and a user of its own
        (a user is signed in by one request at a time, as the brute-force counters expect)."""
        if count > len(self.seed.usernames):
            raise ValueError(f"{count} refresh families need as many users (--users)")
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = pool.map(self.password_grant, self.seed.usernames[:count])
            return [answer["refresh_token"] for answer in answers]

    # -- request files ----------------------------------------------------------------

    def _lines(self, name: str, lines: list[str]) -> Path:
        # each wrk thread takes every threads-th line: give every thread at least one
        while len(lines) < self.threads:
            lines = lines + lines
        path = self.workdir / f"{name}.txt"
        path.write_text("\n".join(lines) + "\n")
        return path

    def request(self, row: str, connections: int, families: int | None = None) -> Request:
        """What wrk sends for ``row``; the refresh row gets ``families`` live refresh
        tokens (default: twice as many as connections, so every connection finds one)."""
        seed = self.seed
        if row == "jwks":
            return Request("/.well-known/jwks.json", expect='"keys"', expect_header="ETag")
        if row == "discovery":
            return Request("/.well-known/openid-configuration", expect='"issuer"',
                           expect_header="ETag")
        if row == "password":
            bodies = [urlencode({"grant_type": "password", "username": username,
                                 "password": USER_PASSWORD}) for username in seed.usernames]
            return Request(TOKEN_PATH, "bodies.lua", "POST", (basic(seed.app_client),),
                           self._lines("password", bodies), expect='"access_token"')
        if row == "refresh":
            self._pools += 1
            tokens = self.refresh_tokens(families or 2 * connections)
            return Request(TOKEN_PATH, "refresh.lua", "POST", (basic(seed.app_client),),
                           self._lines(f"refresh-{self._pools}", tokens),
                           expect='"access_token"')
        if row == "client_credentials":
            assert seed.service_client is not None
            return Request(TOKEN_PATH, "bodies.lua", "POST", (basic(seed.service_client),),
                           self._lines("client-credentials", ["grant_type=client_credentials"]),
                           expect='"access_token"')
        if row == "introspect_jwt":
            body = urlencode({"token": self.access_token, "token_type_hint": "access_token"})
            return Request(INTROSPECT_PATH, "bodies.lua", "POST", (basic(seed.resource_server),),
                           self._lines("introspect-jwt", [body]), expect='"active":%s*true')
        if row == "introspect_api_key":
            body = urlencode({"token": self.api_key, "client_ip": "127.0.0.1"})
            return Request(INTROSPECT_PATH, "bodies.lua", "POST", (basic(seed.resource_server),),
                           self._lines("introspect-api-key", [body]), expect='"active":%s*true')
        if row == REFERENCE:
            # the client_credentials row's request, so that the same bytes cross the wire
            # (the reference app reads neither the header nor the body)
            client = seed.service_client or seed.app_client
            return Request(REFERENCE_PATH, "bodies.lua", "POST", (basic(client),),
                           self._lines("reference", ["grant_type=client_credentials"]),
                           expect='"access_token"')
        raise ValueError(f"no HTTP request for row {row!r}")


# -- the verifier, in a process of its own --------------------------------------------

def verifier_rate(issuer: str, audience: str, token: str, seconds: float) -> dict:
    """``idp.verifier.Verifier.verify`` on one token in a loop, in this process (one core).

    No revocation hook is configured: this is the library's own work (JWKS cache lookup,
    RS256 signature, claims, the principal); a resource server adds its revocation check.
    """
    from idp.verifier import VerificationError, Verifier

    verifier = Verifier(issuer, audience=audience)
    verifier.refresh()
    verifier.verify(token)  # warm up
    durations: list[float] = []
    errors = 0
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    now = started
    while now < deadline:
        try:
            verifier.verify(token)
        except VerificationError:
            errors += 1
        after = time.perf_counter()
        durations.append(after - now)
        now = after
    elapsed, cpu = now - started, time.process_time() - cpu_started
    cuts = statistics.quantiles(durations, n=100)
    return {"rate": len(durations) / elapsed, "p50_ms": cuts[49] * 1000,
            "p99_ms": cuts[98] * 1000, "errors": errors, "requests": len(durations),
            "cpu_ms": cpu * 1000 / len(durations)}
