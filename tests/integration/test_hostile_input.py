"""Hostile input over every route: never a 500, always an answer in the route's form.

Each sweep collects every violation and fails once with the list, so one run shows them
all. The forms: an HTML page for the browser pages (a URL that is a page's, app/errors.py),
RFC 6749 §5.2 JSON under /oauth, the envelope under /api/v1 (contract §2).
"""

from __future__ import annotations

import base64
import json
from urllib.parse import unquote

import pytest
from werkzeug.exceptions import HTTPException

from app.clients import register_client
from tests.conftest import bearer

HOSTILE_VALUES = [None, True, False, 0, -1, 1.5, 10 ** 40, float("inf"), "", " ", "\t\n",
                  "\u202eevil", "a\x00b", "\x00", "é", "x" * 5000, [], ["a"], [1, 2], {},
                  {"a": 1}, [[[]]], [{}], "../..", "%2F", "*", "{}", "null"]

RAW_BODIES = ["[]", '"x"', "1", "null", "true", "1e999", "NaN", "-Infinity", "{", "",
              "{}", '{"a": NaN}', '{"a": 1e999}', "1" * 5000, '{"a": ' + "1" * 5000 + "}",
              '{"a": "\\ud800"}', '{"\\udfff": 1}', "[" * 3000 + "]" * 3000,
              '{"a": ' + '{"a": ' * 3000 + "1" + "}" * 3001,
              b"\xff\xfe{}", b'{"username": "\xff"}', '{"a":1,"a":2}']


ENVELOPE_CODES = {400: "INVALID_REQUEST", 401: "UNAUTHORIZED", 403: "FORBIDDEN",
                  404: "NOT_FOUND", 405: "INVALID_REQUEST", 409: "CONFLICT",
                  413: "INVALID_REQUEST", 415: "INVALID_REQUEST", 429: "RATE_LIMITED"}


def is_page(app, path: str) -> bool:
    """Is ``path`` the URL of a browser page (of the blueprint ``web``)?"""
    adapter = app.url_map.bind("localhost")
    for method in ("GET", "POST"):
        try:
            endpoint, _ = adapter.match(unquote(path), method=method)
        except HTTPException:
            continue
        return endpoint.startswith("web.")
    return False


def check(app, response, method, path, problems, note=""):
    status = response.status_code
    text = response.get_data(as_text=True)
    where = f"{method} {path} {note}"[:300]
    if status >= 500:
        problems.append(f"{status} {where}: {text[:200]}")
        return
    if "Traceback" in text or 'File "' in text:
        problems.append(f"traceback {where}")
    if status < 400 or method == "HEAD":
        return
    if is_page(app, path.split("?")[0]):
        if response.mimetype != "text/html":
            problems.append(f"not a page {status} {where}: {text[:200]}")
        return
    body = response.get_json(silent=True)
    if path.startswith("/oauth/"):
        if not isinstance(body, dict) or not isinstance(body.get("error"), str):
            problems.append(f"not RFC 6749 {status} {where}: {text[:200]}")
    elif path.startswith("/api/v1/"):
        if not (isinstance(body, dict) and isinstance(body.get("error"), dict)
                and body["error"].get("code") == ENVELOPE_CODES.get(status)
                and isinstance(body["error"].get("message"), str)):
            problems.append(f"not the envelope {status} {where}: {text[:200]}")


def report(problems):
    assert not problems, "\n".join(problems[:80]) + f"\n({len(problems)} in all)"


@pytest.fixture
def world(client, clean, make_user, make_tenant, token_for):
    tenant = make_tenant("acme")
    admin = make_user(username="root", roles=["admin"], tenants={tenant: "admin"})
    user = make_user(username="alice", tenants={tenant: "viewer"})
    with clean.app_context():
        conf = register_client({"client_name": "conf", "grant_types": [
            "authorization_code", "refresh_token", "client_credentials", "password"],
            "token_endpoint_auth_method": "client_secret_basic",
            "redirect_uris": ["http://127.0.0.1:9999/cb"], "resource_server": True})
        public = register_client({"client_name": "pub", "grant_types": [
            "authorization_code", "refresh_token", "password"],
            "token_endpoint_auth_method": "none", "redirect_uris": ["http://127.0.0.1:9999/cb"]})
        conf_ids = (conf.client.client_id, conf.client_secret)
        public_id = public.client.client_id
    return {"tenant": tenant, "admin_token": token_for(admin), "user_token": token_for(user),
            "conf": conf_ids,
            "public": public_id, "admin": admin, "user": user}


JSON_ROUTES = {
    ("POST", "/api/v1/auth/token"): {"username": "alice", "password": "correct horse battery",
                                     "tenant": "acme"},
    ("POST", "/api/v1/auth/refresh"): {"refresh_token": "x"},
    ("POST", "/api/v1/auth/logout"): {"refresh_token": "x"},
    ("POST", "/api/v1/admin/tenants"): {"id": "t-new", "name": "New"},
    ("POST", "/api/v1/admin/users"): {"username": "bob", "email": "b@example.test",
                                      "password": "password123", "roles": [],
                                      "tenants": [{"id": "acme", "role": "viewer"}]},
    ("PATCH", "/api/v1/admin/users/{alice}"): {"roles": [], "tenants": [{"id": "acme", "role": "editor"}],
                                               "disabled": False, "email": "a@example.test"},
    ("POST", "/api/v1/admin/clients"): {
        "client_name": "c", "redirect_uris": ["https://rp.example/cb"],
        "post_logout_redirect_uris": ["https://rp.example/out"],
        "grant_types": ["authorization_code"], "token_endpoint_auth_method": "none",
        "scope": "openid", "tenant_permissions": {"acme": ["nodes:read"]},
        "first_party": False, "resource_server": False},
    ("POST", "/api/v1/admin/sso/okta"): {"domain": "example.okta.com", "client_id": "abc",
                                         "client_secret": "s3cr3t-value",
                                         "default_tenants": [{"id": "acme", "role": "viewer"}],
                                         "group_mappings": {"g": [{"id": "acme", "role": "viewer"}]}},
    ("POST", "/api/v1/admin/sso/azure"): {"tenant_id": "11111111-1111-1111-1111-111111111111",
                                          "client_id": "abc", "client_secret": "s3cr3t-value"},
    ("POST", "/api/v1/admin/sso/saml"): {"entity_id": "https://idp.example/e",
                                         "sso_url": "https://idp.example/sso",
                                         "certificate": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----"},
    ("POST", "/api/v1/api-keys"): {"name": "k", "tenants": ["acme"], "permissions": ["nodes:read"],
                                   "expires_at": "2099-01-01T00:00:00Z", "allowed_ips": ["10.0.0.0/8"]},
    ("POST", "/api/v1/api-keys/{key}/rotate"): {"grace_period_seconds": 10},
}


def _expand(path, w):
    return path.replace("{alice}", w["user"]["id"]).replace("{key}", w.get("key", "key-x"))


def test_sweep_json_routes(app, client, world, redis_ns, token_for):
    w = world
    problems: list[str] = []
    auth = bearer(w["admin_token"])
    w["key"] = client.post("/api/v1/api-keys", headers=auth, json={
        "name": "k", "tenants": ["acme"], "permissions": ["nodes:read"]}).get_json()["id"]

    def send(path, method, headers, **kwargs):
        # the brute-force gate and logouts must not hide the parsers behind a 429 or a 401
        for key in redis_ns.client.scan_iter(match=f"{redis_ns.prefix}:bf:*"):
            redis_ns.client.delete(key)
        if path == "/api/v1/auth/logout":
            headers = bearer(token_for(w["user"]))
        response = client.open(path, method=method, headers=headers, **kwargs)
        if response.status_code == 401 and path != "/api/v1/auth/refresh" \
                and "username" not in kwargs.get("data", ""):
            problems.append(f"unexpected 401 {method} {path} {kwargs.get('data', '')[:80]}")
        return response

    for (method, template), base in JSON_ROUTES.items():
        path = _expand(template, w)
        for raw in RAW_BODIES:
            response = send(path, method=method, headers=auth, data=raw,
                            content_type="application/json")
            check(app, response, method, path, problems, f"raw={raw[:40]!r}")
        for ctype in ("text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1",
                      "application/json-patch+json", "multipart/form-data"):
            response = send(path, method=method, headers=auth, data=json.dumps(base),
                            content_type=ctype)
            check(app, response, method, path, problems, f"ctype={ctype}")
        for name in base:
            for value in HOSTILE_VALUES:
                body = {**base, name: value}
                try:
                    data = json.dumps(body)
                except ValueError:
                    continue
                response = send(path, method=method, headers=auth, data=data,
                                content_type="application/json")
                check(app, response, method, path, problems, f"{name}={value!r:.40}")
            # nested hostile values inside lists/objects
            if isinstance(base[name], list) and base[name]:
                for value in HOSTILE_VALUES:
                    body = {**base, name: [value]}
                    response = send(path, method=method, headers=auth,
                                    data=json.dumps(body), content_type="application/json")
                    check(app, response, method, path, problems, f"{name}=[{value!r:.40}]")
                if isinstance(base[name][0], dict):
                    for key in base[name][0]:
                        for value in HOSTILE_VALUES:
                            body = {**base, name: [{**base[name][0], key: value}]}
                            response = send(path, method=method, headers=auth,
                                            data=json.dumps(body),
                                            content_type="application/json")
                            check(app, response, method, path, problems,
                                  f"{name}[0].{key}={value!r:.40}")
            if isinstance(base[name], dict) and base[name]:
                first = next(iter(base[name]))
                for value in HOSTILE_VALUES:
                    body = {**base, name: {first: value}}
                    response = send(path, method=method, headers=auth,
                                    data=json.dumps(body), content_type="application/json")
                    check(app, response, method, path, problems, f"{name}.{first}={value!r:.40}")
                    key = "x" * 300 if value is None else json.dumps(value)[:300]
                    body = {**base, name: {key: base[name][first]}}
                    response = send(path, method=method, headers=auth,
                                    data=json.dumps(body), content_type="application/json")
                    check(app, response, method, path, problems, f"{name} key={value!r:.40}")
        # unknown extra field, and the whole body empty
        for body in ({**base, "zzz": {"a": [1]}}, {}):
            response = send(path, method=method, headers=auth, data=json.dumps(body),
                            content_type="application/json")
            check(app, response, method, path, problems, f"body={body!r:.40}")
    report(problems)


ALL_PATHS = ["/healthz", "/readyz", "/.well-known/openid-configuration",
             "/.well-known/oauth-authorization-server", "/.well-known/jwks.json",
             "/api/v1/auth/token", "/api/v1/auth/refresh", "/api/v1/auth/logout",
             "/api/v1/auth/me", "/api/v1/auth/consents", "/api/v1/auth/consents/{pub}",
             "/api/v1/auth/sso/saml/metadata", "/oauth/token", "/oauth/revoke",
             "/oauth/introspect", "/oauth/userinfo", "/api/v1/admin/tenants",
             "/api/v1/admin/tenants/acme", "/api/v1/admin/users", "/api/v1/admin/users/{alice}",
             "/api/v1/admin/clients", "/api/v1/admin/clients/{pub}", "/api/v1/admin/sso",
             "/api/v1/admin/sso/okta", "/api/v1/admin/sso/saml", "/api/v1/api-keys",
             "/api/v1/api-keys/{key}", "/api/v1/api-keys/{key}/rotate", "/oauth/authorize",
             "/login/abcdefghijklmnopqrstuvwxyz", "/consent/abcdefghijklmnopqrstuvwxyz",
             "/oauth/logout", "/api/v1/auth/sso/okta/login", "/api/v1/auth/sso/saml/login",
             "/login/abcdefghijklmnopqrstuvwxyz/sso/okta", "/api/v1/auth/sso/okta/callback",
             "/api/v1/auth/sso/saml/acs", "/api/v1/auth/sso/saml/complete"]

METHODS = ["GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE", "TRACE", "PROPFIND"]

AUTH_HEADERS = [None, "Bearer", "Bearer ", "Bearer x", "Bearer a.b.c", "Bearer " + "A" * 8000,
                "Basic", "Basic ", "Basic !!!", "Basic " + base64.b64encode(b"\xff:\xff").decode(),
                "Basic " + base64.b64encode(b"noc").decode(),
                "Basic " + base64.b64encode(b"a%zz:b%").decode(),
                "Basic " + base64.b64encode(b"%00:%00").decode(),
                "Basic " + base64.b64encode(b"x" * 6000 + b":y").decode(),
                "Digest x", "bearer\tx", "Bearer x y", "Bearer \x7f", "ic_live_x",
                "Bearer ic_live_" + "A" * 43]


def test_sweep_methods_headers_paths(app, client, world):
    w = world
    problems: list[str] = []
    paths = [p.replace("{pub}", w["public"]).replace("{alice}", w["user"]["id"])
             .replace("{key}", "key-x") for p in ALL_PATHS]
    for path in paths:
        for method in METHODS:
            for header in (None, "Bearer " + w["admin_token"]):
                headers = {"Authorization": header} if header else {}
                response = client.open(path, method=method, headers=headers)
                check(app, response, method, path, problems, f"auth={bool(header)}")
        for header in AUTH_HEADERS:
            headers = {"Authorization": header} if header else {}
            for method in ("GET", "POST", "DELETE"):
                response = client.open(path, method=method, headers=headers,
                                       data="token=x&grant_type=client_credentials",
                                       content_type="application/x-www-form-urlencoded")
                check(app, response, method, path, problems, f"auth={header!r:.40}")
        for host in ("a" * 64 + ".example", "[::1", "ex ample", "\u00e9.example"):
            for method in ("GET", "PUT"):
                # a Host that is no host name cannot be routed: any clear 4xx will do
                response = client.open(path, method=method, headers={"Host": host})
                if response.status_code >= 500:
                    problems.append(f"{response.status_code} {method} {path} host={host[:30]!r}")
        for cookie in ("idp_session=" + "A" * 40, "idp_session=\xff" * 3, "idp_session=%00" * 30,
                       "idp_session=" + "é" * 30, "idp_session==;;=="):
            response = client.open(path, method="GET", headers={"Cookie": cookie})
            check(app, response, "GET", path, problems, f"cookie={cookie[:30]!r}")
    # path parameters: dots, encoded slashes, NUL, long, non-UTF-8
    for template in ("/api/v1/admin/tenants/{}", "/api/v1/admin/users/{}",
                     "/api/v1/admin/clients/{}", "/api/v1/api-keys/{}",
                     "/api/v1/api-keys/{}/rotate", "/api/v1/auth/consents/{}",
                     "/login/{}", "/consent/{}", "/login/{}/sso/okta"):
        for segment in ("..", ".", "%2F", "a%2Fb", "%00", "%ff", "%ED%A0%80", "x" * 3000,
                        "%20", "\u202e", "%25", "*", "a.b.c", "key-x%00"):
            for method in ("GET", "POST", "DELETE", "PATCH"):
                path = template.format(segment)
                response = client.open(path, method=method,
                                       headers=bearer(w["admin_token"]), json={})
                check(app, response, method, path, problems, "segment")
    report(problems)


def test_sweep_query_strings(app, client, world):
    w = world
    problems: list[str] = []
    auth = bearer(w["admin_token"])
    for path in ("/api/v1/admin/tenants", "/api/v1/admin/users", "/api/v1/admin/clients",
                 "/api/v1/api-keys", "/api/v1/auth/sso/saml/complete"):
        for query in ("limit=%ff", "cursor=%ff", "cursor=%ff%ff%ff%ff", "cursor=____",
                      "cursor=" + base64.urlsafe_b64encode(b"\x00").decode(),
                      "cursor=" + base64.urlsafe_b64encode("\ud800".encode("utf-8", "surrogatepass")).decode(),
                      "cursor=" + base64.urlsafe_b64encode(b"a" * 2000).decode(),
                      "limit=1&limit=2", "limit=", "limit=0", "limit=200", "limit=%00",
                      "cursor=", "cursor=%00", "id=%00", "id=" + "a" * 5000, "id=%ff"):
            response = client.get(f"{path}?{query}", headers=auth)
            check(app, response, "GET", path, problems, query)
    report(problems)
