"""The reference row: a minimal Flask app that signs one RS256 JWT per ``POST`` and
does nothing else.

Issue 9 quotes such an app's rate as the measure of what a Python WSGI stack allows; the
bench serves it under the same servers, workers and load as the service, in the same run,
so the refresh and client_credentials rows can be read against it as well as against the
RSA-sign ceiling. It is not part of the service: no form parsing, no client
authentication, no database, no Redis, no log line. The token is of the service's shape
(header, claim names and sizes), signed the way ``idp.tokens`` signs, with a key made and
parsed once at start.

    gunicorn -c bench/reference_gunicorn.conf.py bench.reference_app:app
"""

from __future__ import annotations

import secrets
import time

from cryptography.hazmat.primitives.asymmetric import rsa
from flask import Flask
from joserfc import jwt
from joserfc.jwk import RSAKey

from bench.report import REFERENCE_PATH

KEY = RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))
HEADER = {"alg": "RS256", "typ": "at+jwt", "kid": KEY.thumbprint()}
TTL = 900

app = Flask(__name__)


@app.get("/readyz")
def ready():
    return {"status": "ready"}


@app.post(REFERENCE_PATH)
def sign():
    now = time.time()
    claims = {
        "iss": "http://127.0.0.1", "sub": secrets.token_hex(16), "aud": "infracast-api",
        "exp": int(now) + TTL, "iat": int(now), "iat_ms": int(now * 1000), "nbf": int(now),
        "jti": secrets.token_urlsafe(16), "client_id": "bench-reference", "scope": "",
        "roles": [], "tenants": {"acme": ["nodes:read", "findings:read"]},
    }
    return {"access_token": jwt.encode(HEADER, claims, KEY), "token_type": "Bearer",
            "expires_in": TTL}
