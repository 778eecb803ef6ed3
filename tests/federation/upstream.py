"""A small but real OpenID Connect provider for the federation tests (test scaffolding).

It runs as a process of its own on loopback; ``UpstreamProcess`` starts and stops one::

    python -m tests.federation.upstream --port 8765 --client-id app --client-secret s3cret

Every issuer below its base URL is served at once: the issuer of a request is the base URL
plus the path in front of the endpoint's name. So ``http://127.0.0.1:P`` (an Okta org
server), ``http://127.0.0.1:P/oauth2/default`` (an Okta custom authorization server) and
``http://127.0.0.1:P/{tenant-guid}/v2.0`` (Azure AD) all work, each with:

- ``{issuer}/.well-known/openid-configuration``: discovery;
- ``{issuer}/keys``: the JWKS (one RS256 key);
- ``{issuer}/authorize``: approves the test user at once and redirects to ``redirect_uri``
  with ``code`` and ``state`` (PKCE S256 and ``nonce`` required), noting the ``prompt`` and
  ``max_age`` it was asked for;
- ``{issuer}/token``: authorization code (client_secret_basic or client_secret_post, PKCE
  verified, single use) -> access token and an RS256 ID token.

Controls, to make it misbehave (``POST /_control`` with a JSON object; ``UpstreamProcess.set``):

- ``user``: the signed-in user's claims (``sub``, ``email``, ``groups``, …);
- ``claims``: merged over the ID token's claims (``{"nonce": "x"}``, ``{"aud": "other"}``,
  ``{"exp": 0}``); a ``null`` removes a claim;
- ``discovery``: merged over the discovery document the same way (``{"issuer": "…"}``);
- ``signing``: ``"jwks"`` (default), ``"unknown-key"`` (a key not in the JWKS, same alg),
  ``"tampered"`` (claims changed after signing), ``"none"`` (unsigned),
  ``"hs256-public-key"`` (HMAC keyed with the public key's PEM), ``"not-a-jwt"``;
- ``broken``: endpoint name (``.well-known/openid-configuration``, ``keys``, ``token``) ->
  ``"not-json"``, ``"http-500"``, ``"wrong-shape"`` or any JSON document to answer with;
- ``authorize_params``: merged over the redirect's query (``{"error": "access_denied"}``
  answers with that error instead of a code; ``{"iss": "…"}`` per RFC 9207);
- ``token_delay``: seconds the token endpoint sleeps before answering.

``POST /_control/reset`` restores the default behaviour and zeroes the counters (the
signing key stays); ``POST /_control/rotate`` replaces the signing key; ``GET /_control``
returns request counts per endpoint, the client authentication method of the last token
request, the ``prompt`` and ``max_age`` of the last authorization request, and the current
``kid``.
The upstream being down is a stopped process (``UpstreamProcess.stop``) or a closed port.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import logging
import secrets
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import unquote, urlencode, urlsplit

import requests
from authlib.oidc.core.util import create_half_hash
from flask import Flask, Response, abort, jsonify, redirect, request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from tests.helpers import ServerProcess

CODE_TTL = 60
ID_TOKEN_TTL = 300
# the client the tests register at the upstream
CLIENT_ID = "0oa-infracast-test"
CLIENT_SECRET = "upstream-secret-4f2c9a"

DEFAULT_USER = {
    "sub": "00u1a2b3c4d5e6f7g8h9",
    "email": "ada@customer.example",
    "email_verified": True,
    "name": "Ada Lovelace",
    "preferred_username": "ada@customer.example",
    "groups": ["Everyone", "infra-admins"],
}
DEFAULT_BEHAVIOUR = {
    "user": DEFAULT_USER,
    "claims": {},
    "discovery": {},
    "signing": "jwks",
    "broken": {},
    "authorize_params": {},
    "token_delay": 0,
}
GARBAGE = {
    "not-json": lambda: Response("<html><body>Down for maintenance</body></html>", 200,
                                 content_type="text/html"),
    "http-500": lambda: Response("<html><body>Internal Server Error</body></html>", 500,
                                 content_type="text/html"),
}
WRONG_SHAPE = {
    ".well-known/openid-configuration": ["not", "an", "object"],
    "keys": {"keys": "none today"},
    "token": {"access_token": "at", "token_type": "Bearer", "expires_in": 3600},
}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _merged(base: dict, overrides: dict) -> dict:
    merged = {**base, **overrides}
    return {name: value for name, value in merged.items() if value is not None}


def _signing_key() -> RSAKey:
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"})
    key.ensure_kid()
    return key


class Provider:
    """The provider's state: keys, codes, behaviour, counters (one process, many threads)."""

    def __init__(self, base_url: str, client_id: str, client_secret: str):
        self.base_url = base_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.lock = threading.Lock()
        self.key = _signing_key()
        self.stranger = _signing_key()  # never published
        self.codes: dict[str, dict] = {}
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.behaviour = json.loads(json.dumps(DEFAULT_BEHAVIOUR))
            self.counts: Counter = Counter()
            self.last_client_auth: str | None = None
            self.last_authorize: dict = {}

    def discovery(self, issuer: str) -> dict:
        document = {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "jwks_uri": f"{issuer}/keys",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "groups"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post"],
            "code_challenge_methods_supported": ["S256"],
        }
        return _merged(document, self.behaviour["discovery"])

    def id_token(self, issuer: str, grant: dict, access_token: str) -> str:
        now = int(time.time())
        user = dict(grant["user"])
        claims = {
            **{name: value for name, value in user.items() if name != "sub"},
            "iss": issuer, "sub": user["sub"], "aud": self.client_id, "iat": now,
            "exp": now + ID_TOKEN_TTL, "auth_time": now, "nonce": grant["nonce"],
            "at_hash": create_half_hash(access_token, "RS256").decode(),
        }
        claims = _merged(claims, self.behaviour["claims"])
        return self.sign(claims)

    def sign(self, claims: dict) -> str:
        signing = self.behaviour["signing"]
        key = self.stranger if signing == "unknown-key" else self.key
        token = jwt.encode({"alg": "RS256", "kid": key.kid, "typ": "JWT"}, claims, key)
        header, payload, signature = token.split(".")
        if signing == "tampered":  # the claims changed after signing
            payload = _b64(json.dumps({**claims, "groups": ["platform-admins"]}).encode())
        elif signing == "none":
            header, signature = _b64(b'{"alg":"none"}'), ""
        elif signing == "hs256-public-key":
            header = _b64(json.dumps({"alg": "HS256", "kid": key.kid}).encode())
            mac = hmac.new(key.as_pem(private=False), f"{header}.{payload}".encode(),
                           hashlib.sha256)
            signature = _b64(mac.digest())
        elif signing == "not-a-jwt":
            return "not-a-jwt"
        return f"{header}.{payload}.{signature}"


def _client_auth(provider: Provider, methods: list[str]) -> str | None:
    """The client authentication method used (RFC 6749 §2.3.1), or None when it fails."""
    header = request.headers.get("Authorization", "")
    if header.startswith("Basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return None
        method = "client_secret_basic"
        client_id, secret = unquote(client_id), unquote(secret)
    else:
        method = "client_secret_post"
        client_id, secret = request.form.get("client_id"), request.form.get("client_secret")
    if method in methods and client_id == provider.client_id and secret is not None \
            and hmac.compare_digest(secret, provider.client_secret):
        return method
    return None


def _oauth_error(error: str, status: int = 400) -> Response:
    return Response(json.dumps({"error": error}), status, content_type="application/json")


def create_app(provider: Provider) -> Flask:
    app = Flask(__name__)

    def discovery(issuer: str):
        return jsonify(provider.discovery(issuer))

    def keys(issuer: str):
        return jsonify({"keys": [provider.key.as_dict(private=False)]})

    def authorize(issuer: str):
        args = request.args
        if args.get("client_id") != provider.client_id or not args.get("redirect_uri"):
            abort(400)
        provider.last_authorize = {"prompt": args.get("prompt"), "max_age": args.get("max_age")}
        problem = None
        if args.get("response_type") != "code":
            problem = "unsupported_response_type"
        elif "openid" not in args.get("scope", "").split():
            problem = "invalid_scope"
        elif args.get("code_challenge_method") != "S256" or not args.get("code_challenge") \
                or not args.get("nonce"):
            problem = "invalid_request"
        answer = {"state": args.get("state")}
        if problem:
            answer["error"] = problem
        else:
            code = secrets.token_urlsafe(24)
            with provider.lock:
                provider.codes[code] = {
                    "issuer": issuer, "redirect_uri": args["redirect_uri"],
                    "nonce": args["nonce"], "challenge": args["code_challenge"],
                    "user": dict(provider.behaviour["user"]), "expires": time.time() + CODE_TTL,
                }
            answer["code"] = code
        answer = _merged(answer, provider.behaviour["authorize_params"])
        if "error" in answer:
            answer.pop("code", None)
        separator = "&" if urlsplit(args["redirect_uri"]).query else "?"
        return redirect(args["redirect_uri"] + separator + urlencode(answer))

    def token(issuer: str):
        time.sleep(provider.behaviour["token_delay"])
        methods = provider.discovery(issuer).get("token_endpoint_auth_methods_supported",
                                                 ["client_secret_basic"])  # RFC 8414 §2
        method = _client_auth(provider, methods)
        provider.last_client_auth = method
        if method is None:
            return _oauth_error("invalid_client", 401)
        if request.form.get("grant_type") != "authorization_code":
            return _oauth_error("unsupported_grant_type")
        with provider.lock:
            grant = provider.codes.pop(request.form.get("code", ""), None)
        verifier = request.form.get("code_verifier", "")
        challenge = _b64(hashlib.sha256(verifier.encode()).digest())
        if grant is None or grant["expires"] < time.time() or grant["issuer"] != issuer \
                or grant["redirect_uri"] != request.form.get("redirect_uri") \
                or not hmac.compare_digest(challenge, grant["challenge"]):
            return _oauth_error("invalid_grant")
        access_token = secrets.token_urlsafe(32)
        return jsonify({"access_token": access_token, "token_type": "Bearer",
                        "expires_in": 3600, "scope": "openid email profile",
                        "id_token": provider.id_token(issuer, grant, access_token)})

    endpoints = {".well-known/openid-configuration": discovery, "keys": keys,
                 "authorize": authorize, "token": token}

    @app.route("/<path:path>", methods=["GET", "POST"])
    def dispatch(path: str):
        for name, view in endpoints.items():
            if path == name or path.endswith("/" + name):
                prefix = path[: -len(name)].rstrip("/")
                issuer = provider.base_url + (f"/{prefix}" if prefix else "")
                provider.counts[name] += 1
                broken = provider.behaviour["broken"].get(name)
                if broken == "wrong-shape":
                    return jsonify(WRONG_SHAPE[name])
                if isinstance(broken, str):
                    return GARBAGE[broken]()
                if broken is not None:
                    return jsonify(broken)
                return view(issuer)
        abort(404)

    @app.get("/_control")
    def status():
        return jsonify({"counts": provider.counts, "last_client_auth": provider.last_client_auth,
                        "last_authorize": provider.last_authorize, "kid": provider.key.kid})

    @app.post("/_control")
    def control():
        with provider.lock:
            provider.behaviour.update(request.get_json())
            return jsonify(provider.behaviour)

    @app.post("/_control/reset")
    def reset():
        provider.reset()
        return jsonify({})

    @app.post("/_control/rotate")
    def rotate():
        provider.key = _signing_key()
        return jsonify({"kid": provider.key.kid})

    return app


class UpstreamProcess(ServerProcess):
    """The provider above in a process of its own, on a free loopback port."""

    ready_path = "/_control"

    def __init__(self, client_id: str, client_secret: str, log_dir: Path):
        super().__init__()
        self.start([sys.executable, "-m", "tests.federation.upstream", "--port", str(self.port),
                    "--client-id", client_id, "--client-secret", client_secret],
                   log_dir / f"upstream-{self.port}.log", timeout=20)

    def set(self, **behaviour) -> None:
        requests.post(self.url + "/_control", json=behaviour, timeout=5).raise_for_status()

    def reset(self) -> None:
        requests.post(self.url + "/_control/reset", timeout=5).raise_for_status()

    def rotate_key(self) -> str:
        return requests.post(self.url + "/_control/rotate", timeout=5).json()["kid"]

    def status(self) -> dict:
        return requests.get(self.url + "/_control", timeout=5).json()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    provider = Provider(f"http://127.0.0.1:{args.port}", args.client_id, args.client_secret)
    make_server("127.0.0.1", args.port, create_app(provider), threaded=True).serve_forever()


if __name__ == "__main__":
    main()
