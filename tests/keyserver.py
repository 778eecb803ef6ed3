"""An issuer of our own for verifier tests: locally generated RSA keys, real HTTP.

``KeyServer`` serves discovery and a JWKS on a loopback port from a thread and counts the
requests it receives, so tests see what a verifier really asks of an IdP. ``mint`` signs
access tokens with a local key; ``forge`` builds the unsigned or wrongly signed tokens of
the classic JWT attacks.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives.asymmetric.padding import PKCS1v15
from cryptography.hazmat.primitives.hashes import SHA256
from joserfc import jws
from joserfc.jwk import RSAKey

AUDIENCE = "infracast-api"


def new_key() -> RSAKey:
    key = RSAKey.generate_key(2048, private=True)
    key.ensure_kid()
    return key


def public_jwk(key: RSAKey) -> dict:
    return {**key.as_dict(private=False), "alg": "RS256", "use": "sig"}


class KeyServer:
    def __init__(self, max_age: int = 300):
        self.keys: list[RSAKey] = []
        self.max_age = max_age
        self.age: str | None = None  # an Age header, as a CDN in front would add
        self.status = 200  # anything else: every request answers this, as a broken IdP
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._held: str | None = None
        self._released = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                with server._lock:
                    server.requests[self.path] += 1
                if self.path == server._held:
                    server._released.wait(timeout=30)
                server._answer(self)

            def log_message(self, *args):
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.01,),
                                        daemon=True)
        self._thread.start()

    @property
    def jwks_requests(self) -> int:
        return self.requests["/jwks.json"]

    @property
    def discovery_requests(self) -> int:
        return self.requests["/.well-known/openid-configuration"]

    def hold(self, path: str) -> None:
        """Keep requests to ``path`` waiting until ``release()``: an IdP slower than any
        timeout, however fast or slow this machine is."""
        self._released.clear()
        self._held = path

    def release(self) -> None:
        self._held = None
        self._released.set()

    def wait_for(self, path: str, count: int) -> None:
        """Return once ``path`` has been asked ``count`` times (10 s at most)."""
        for _ in range(1000):
            with self._lock:
                if self.requests[path] >= count:
                    return
            time.sleep(0.01)
        raise AssertionError(f"{path} was not asked {count} times")

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        if self.status != 200:
            handler.send_response(self.status)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        if handler.path == "/.well-known/openid-configuration":
            body = {"issuer": self.url, "jwks_uri": self.url + "/jwks.json",
                    "introspection_endpoint": self.url + "/introspect"}
        elif handler.path == "/jwks.json":
            body = {"keys": [public_jwk(key) for key in self.keys]}
        else:
            handler.send_response(404)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
            return
        raw = json.dumps(body).encode()
        etag = '"' + hashlib.sha256(raw).hexdigest()[:16] + '"'
        status = 304 if handler.headers.get("If-None-Match") == etag else 200
        handler.send_response(status)
        handler.send_header("Cache-Control", f"public, max-age={self.max_age}")
        if self.age is not None:
            handler.send_header("Age", self.age)
        handler.send_header("ETag", etag)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", "0" if status == 304 else str(len(raw)))
        handler.end_headers()
        if status == 200:
            handler.wfile.write(raw)

    def stop(self) -> None:
        self.release()
        self._httpd.shutdown()
        self._httpd.server_close()


def claims_for(issuer: str, **overrides) -> dict:
    now = int(time.time())
    claims = {"iss": issuer, "sub": "user-1", "aud": AUDIENCE, "exp": now + 600, "iat": now,
              "nbf": now, "jti": uuid.uuid4().hex, "client_id": "infracast", "scope": "openid",
              "roles": [], "tenants": {"acme": ["nodes:read"]}, "sid": "family-1"}
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def mint(key: RSAKey, issuer: str, header: dict | None = None, **claims) -> str:
    """An RS256 access token signed with ``key``; ``header`` entries override (None drops)."""
    fields = {"alg": "RS256", "typ": "at+jwt", "kid": key.kid, **(header or {})}
    fields = {name: value for name, value in fields.items() if value is not None}
    payload = json.dumps(claims_for(issuer, **claims)).encode()
    return jws.serialize_compact(fields, payload, key, algorithms=[fields["alg"]])


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign_raw(key: RSAKey, header: dict | str, payload: bytes) -> str:
    """Signed exactly as RS256 signs, with no library refusing an odd header first;
    ``header`` as an object, or as the very JSON text to sign."""
    text = header if isinstance(header, str) else json.dumps(header)
    signing_input = _b64(text.encode()) + "." + _b64(payload)
    signature = key.private_key.sign(signing_input.encode(), PKCS1v15(), SHA256())
    return signing_input + "." + _b64(signature)


def forge(header: dict, claims: dict, secret: bytes | None = None) -> str:
    """A token with any header: unsigned (``alg`` none) or HMAC-SHA256 keyed with ``secret``."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    signature = b"" if secret is None else hmac.new(secret, signing_input.encode(),
                                                     hashlib.sha256).digest()
    return signing_input + "." + _b64(signature)
