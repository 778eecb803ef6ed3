"""Helpers for the OpenID Connect tests: PKCE, reading pages and redirects (no fixtures)."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

from idp.verifier_introspection import client_secret_basic

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def csrf_token(html: str) -> str:
    match = _CSRF.search(html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def query_of(location: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


def without_query(location: str) -> str:
    parts = urlsplit(location)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


REDIRECT_URI = "http://127.0.0.1:9999/cb"


class RelyingParty:
    """Drives the authorization code flow through a Flask test client (which keeps cookies,
    like a browser), as a client with ``client_id`` (and ``secret`` when confidential)."""

    def __init__(self, http, client_id: str, secret: str | None = None,
                 redirect_uri: str = REDIRECT_URI):
        self.http = http
        self.client_id = client_id
        self.secret = secret
        self.redirect_uri = redirect_uri
        self.verifier = None

    def params(self, **overrides) -> dict:
        self.verifier, challenge = pkce_pair()
        params = {"response_type": "code", "client_id": self.client_id,
                  "redirect_uri": self.redirect_uri, "scope": "openid profile email",
                  "state": secrets.token_urlsafe(8), "nonce": secrets.token_urlsafe(8),
                  "code_challenge": challenge, "code_challenge_method": "S256"}
        params.update(overrides)
        return {name: value for name, value in params.items() if value is not None}

    def authorize(self, **overrides):
        return self.http.get("/oauth/authorize", query_string=self.params(**overrides))

    def submit_login(self, response, username: str, password: str):
        """From the redirect to the login page: show it, then post the form."""
        assert response.status_code == 302, response.data
        login_url = response.headers["Location"]
        assert login_url.startswith("/login/"), login_url
        page = self.http.get(login_url)
        assert page.status_code == 200
        return self.http.post(login_url, data={"csrf_token": csrf_token(page.get_data(True)),
                                               "username": username, "password": password})

    def callback(self, response) -> dict[str, str]:
        """The parameters the browser brings back to ``redirect_uri``."""
        assert response.status_code in (302, 303), response.get_data(True)[:500]
        location = response.headers["Location"]
        assert without_query(location) == self.redirect_uri, location
        return query_of(location)

    def sign_in(self, user: dict, **overrides) -> dict[str, str]:
        """A whole front channel: authorize, sign in if asked, and the callback's parameters."""
        response = self.authorize(**overrides)
        if response.headers.get("Location", "").startswith("/login/"):
            response = self.submit_login(response, user["username"], user["password"])
        return self.callback(response)

    def exchange(self, code: str, **overrides):
        return self._token({"grant_type": "authorization_code", "code": code,
                            "redirect_uri": self.redirect_uri, "code_verifier": self.verifier,
                            **overrides})

    def refresh(self, refresh_token: str):
        return self._token({"grant_type": "refresh_token", "refresh_token": refresh_token})

    def _token(self, form: dict):
        """A token request as this client: HTTP Basic when confidential, its client_id in
        the form when public (an override of None leaves a parameter out)."""
        headers = {}
        if self.secret:
            headers["Authorization"] = client_secret_basic(self.client_id, self.secret)
        else:
            form = {"client_id": self.client_id, **form}
        return self.http.post("/oauth/token", headers=headers,
                              data={k: v for k, v in form.items() if v is not None})

    def tokens_for(self, user: dict, **overrides) -> dict:
        callback = self.sign_in(user, **overrides)
        response = self.exchange(callback["code"])
        assert response.status_code == 200, response.get_json()
        return response.get_json()
