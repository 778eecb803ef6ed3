"""The reference resource server against the IdP under gunicorn, all over real HTTP.

The IdP runs with JWKS_MAX_AGE=1 and KEY_CACHE_SECONDS=1 so that a whole key rotation,
run with the real ``flask --app wsgi keys rotate``, fits in a few seconds while clients keep
calling the resource server.

The resource server checks revocations in the IdP's Redis (its URL and key prefix), admits
API keys through introspection as a resource-server client registered with the admin API,
caches active answers for ``CACHE_SECONDS``, and trusts one proxy hop: the tests play that
proxy and name the caller's address in ``X-Forwarded-For``, as a load balancer in front of
a real resource server would.
"""

import json
import os
import subprocess
import sys
import threading
import time

import pytest
import requests

from app import create_app
from app.extensions import db, dispose_engines, services
from app.models import Tenant
from app.users import create_user
from idp.tokens import AccessTokenIssuer
from idp.verifier import ACCESS_TOKEN, Verifier
from tests.conftest import FAST_ARGON2, TEST_KEK, base_config
from tests.e2e.conftest import LiveServer
from tests.helpers import ROOT
from tests.helpers import free_port, jwt_parts, new_api_key, readme_block, revoke_api_key
from tests.keyserver import AUDIENCE, mint, new_key

pytestmark = pytest.mark.e2e

FAST_KEYS = {"JWKS_MAX_AGE": "1", "KEY_CACHE_SECONDS": "1"}
PASSWORD = "correct horse battery"
ADMIN_PASSWORD = "admin-password-1"
NODES = "/api/v1/tenants/acme/nodes"
CACHE_SECONDS = 1


@pytest.fixture(scope="module")
def idp(server_backends, tmp_path_factory):
    server = LiveServer({**server_backends, **FAST_KEYS, "ARGON2_TIME_COST": "1",
                         "ARGON2_MEMORY_KIB": "1024", "IDP_BOOTSTRAP_ADMIN_USERNAME": "admin",
                         "IDP_BOOTSTRAP_ADMIN_PASSWORD": ADMIN_PASSWORD},
                        tmp_path=tmp_path_factory.mktemp("idp"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def idp_app(server_backends, idp):
    """The IdP's app in this process, on the server's database: users, tenants, keys."""
    app = create_app(base_config(
        DATABASE_URL=server_backends["DATABASE_URL"], REDIS_URL=server_backends["REDIS_URL"],
        REDIS_KEY_PREFIX=server_backends["REDIS_KEY_PREFIX"], ISSUER=idp.url,
        JWKS_MAX_AGE=1, KEY_CACHE_SECONDS=1, **FAST_ARGON2))
    with app.app_context():
        db.session.add_all([Tenant(id="acme", name="Acme"), Tenant(id="beta", name="Beta")])
        db.session.commit()
        for username, role in (("viewer", "viewer"), ("editor", "editor")):
            create_user(username=username, email=f"{username}@example.test", password=PASSWORD,
                        platform_roles=[], memberships={"acme": role})
    yield app
    with app.app_context():
        dispose_engines()


@pytest.fixture(scope="module")
def admin_token(idp, idp_app):
    return login(idp, "admin", password=ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def rs_client(idp, admin_token):
    """The resource server's client at the IdP, registered through the admin API."""
    answer = requests.post(idp.url + "/api/v1/admin/clients", timeout=10,
                           headers={"Authorization": f"Bearer {admin_token}"},
                           json={"client_name": "Nodes API", "grant_types": ["refresh_token"],
                                 "token_endpoint_auth_method": "client_secret_basic",
                                 "resource_server": True})
    assert answer.status_code == 201, answer.text
    return answer.json()["client_id"], answer.json()["client_secret"]


@pytest.fixture(scope="module")
def resource_server(idp, server_backends, rs_client, tmp_path_factory):
    """``python -m examples.resource_server`` (what ``make resource-server`` runs)."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("resource-server") / "server.log"
    env = {**os.environ, "IDP_ISSUER": idp.url, "IDP_AUDIENCE": AUDIENCE, "PORT": str(port),
           "IDP_REDIS_URL": server_backends["REDIS_URL"],
           "IDP_REDIS_KEY_PREFIX": server_backends["REDIS_KEY_PREFIX"],
           "IDP_INTROSPECTION_CLIENT_ID": rs_client[0],
           "IDP_INTROSPECTION_CLIENT_SECRET": rs_client[1],
           "IDP_INTROSPECTION_CACHE_SECONDS": str(CACHE_SECONDS), "TRUSTED_PROXIES": "1"}
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, "-m", "examples.resource_server"], cwd=ROOT,
                                   env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 20
    while True:
        if process.poll() is not None or time.time() > deadline:
            process.kill()
            raise RuntimeError(f"resource server did not start: {log_path.read_text()}")
        try:
            requests.get(url + NODES, timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def login(idp, username, password=PASSWORD, **extra):
    response = requests.post(idp.url + "/api/v1/auth/token",
                             json={"username": username, "password": password, **extra}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["token"]


def call(resource_server, method, path, token=None, forwarded_for=None, **kwargs):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    if forwarded_for:
        headers["X-Forwarded-For"] = forwarded_for
    return requests.request(method, resource_server + path, headers=headers, timeout=10, **kwargs)


def acme_key(idp, admin_token, **fields):
    return new_api_key(idp.url, admin_token, ["acme"], **fields)


UNAUTHORIZED = {"error": {"code": "UNAUTHORIZED", "message": "Invalid or expired token"}}
FORBIDDEN = {"error": {"code": "FORBIDDEN", "message": "Insufficient permissions"}}


def test_user_tokens_read_and_write_by_their_roles(idp, idp_app, resource_server):
    editor, viewer = login(idp, "editor"), login(idp, "viewer")
    created = call(resource_server, "POST", NODES, editor, json={"name": "web-1"})
    assert created.status_code == 201, created.text
    listed = call(resource_server, "GET", NODES, viewer)
    assert listed.status_code == 200
    assert [node["name"] for node in listed.json()["nodes"]] == ["web-1"]
    # a token scoped to the tenant works the same
    scoped = login(idp, "viewer", tenant="acme")
    assert call(resource_server, "GET", NODES, scoped).status_code == 200


def test_the_verifier_reads_a_token_of_the_live_idp(idp, idp_app):
    principal = Verifier(idp.url, AUDIENCE).verify(login(idp, "editor"))
    with idp_app.app_context():
        editor = services().accounts.find_by_username("editor")
    assert (principal.subject, principal.client_id, principal.token_type) == (
        editor.id, "infracast", ACCESS_TOKEN)
    assert principal.allows("acme", "nodes:write") and not principal.allows("beta", "nodes:read")
    assert principal.roles == () and principal.jti and principal.expires_at > time.time()


def test_401_without_a_good_token(idp, idp_app, resource_server):
    with idp_app.app_context():
        past = AccessTokenIssuer(services().keyring, issuer=idp.url, audience=AUDIENCE, ttl=60,
                                 clock=lambda: time.time() - 3600)
        expired = past.issue(subject="someone", client_id="infracast", scope="", roles=[],
                             tenants={"acme": ["nodes:read"]}).token
    unknown_key = mint(new_key(), idp.url, tenants={"acme": ["nodes:read"]})
    for token in (None, "garbage", expired, unknown_key):
        answer = call(resource_server, "GET", NODES, token)
        assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED), token
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_403_for_a_missing_permission_and_for_another_tenant(idp, idp_app, resource_server):
    viewer = login(idp, "viewer")
    denied = call(resource_server, "POST", NODES, viewer, json={"name": "web-2"})
    assert (denied.status_code, denied.json()) == (403, FORBIDDEN)
    other = call(resource_server, "GET", "/api/v1/tenants/beta/nodes", login(idp, "editor"))
    assert (other.status_code, other.json()) == (403, FORBIDDEN)


def _keys_cli(server_backends, idp, command):
    env = {**os.environ, **server_backends, **FAST_KEYS, "IDP_ISSUER": idp.url,
           "IDP_SECRET_KEY": TEST_KEK, "LOG_LEVEL": "WARNING"}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "keys", command],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def _published(idp):
    return {key["kid"] for key in requests.get(idp.url + "/.well-known/jwks.json",
                                               timeout=5).json()["keys"]}


def test_a_key_rotation_under_load_fails_no_request(idp, idp_app, resource_server,
                                                   server_backends):
    outcomes, stop = [], threading.Event()

    def client():
        session = requests.Session()
        while not stop.is_set():
            token = login(idp, "viewer")
            answer = session.get(resource_server + NODES, timeout=10,
                                 headers={"Authorization": f"Bearer {token}"})
            outcomes.append((jwt_parts(token)[0]["kid"], answer.status_code))

    clients = [threading.Thread(target=client) for _ in range(3)]
    for thread in clients:
        thread.start()
    try:
        old = jwt_parts(login(idp, "viewer"))[0]["kid"]
        assert "Created next key" in _keys_cli(server_backends, idp, "rotate")
        deadline = time.time() + 30
        while "Promoted" not in (said := _keys_cli(server_backends, idp, "rotate")):
            assert "Nothing changed" in said and time.time() < deadline
            time.sleep(0.5)
        while sum(kid != old for kid, _ in outcomes) < 20 and time.time() < deadline:
            time.sleep(0.1)
        time.sleep(1)
    finally:
        stop.set()
        for thread in clients:
            thread.join(timeout=30)

    kids = {kid for kid, _ in outcomes}
    assert len(kids) == 2 and old in kids
    assert sum(kid != old for kid, _ in outcomes) >= 20
    assert [status for _, status in outcomes if status != 200] == []
    # the retired key is still published: the tokens it signed verify to their end
    assert kids <= _published(idp)
    listing = _keys_cli(server_backends, idp, "list")
    assert f"{old}  retired" in listing


def test_api_keys_read_and_write_by_their_permissions(idp, admin_token, resource_server):
    writer = acme_key(idp, admin_token, permissions=["nodes:read", "nodes:write"])
    reader = acme_key(idp, admin_token)
    created = call(resource_server, "POST", NODES, writer["key"], json={"name": "db-1"})
    assert created.status_code == 201, created.text
    assert created.json()["created_by"] == writer["id"]
    listed = call(resource_server, "GET", NODES, reader["key"])
    assert listed.status_code == 200
    assert "db-1" in [node["name"] for node in listed.json()["nodes"]]
    denied = call(resource_server, "POST", NODES, reader["key"], json={"name": "db-2"})
    assert (denied.status_code, denied.json()) == (403, FORBIDDEN)
    other = call(resource_server, "GET", "/api/v1/tenants/beta/nodes", writer["key"])
    assert (other.status_code, other.json()) == (403, FORBIDDEN)
    unknown = call(resource_server, "GET", NODES, "ic_live_" + "x" * 43)
    assert (unknown.status_code, unknown.json()) == (401, UNAUTHORIZED)


def test_a_logged_out_token_is_refused_at_once(idp, idp_app, resource_server):
    token = login(idp, "viewer")
    assert call(resource_server, "GET", NODES, token).status_code == 200
    logout = requests.post(idp.url + "/api/v1/auth/logout", json={}, timeout=10,
                           headers={"Authorization": f"Bearer {token}"})
    assert logout.status_code == 204
    # the IdP's Redis is read on every request: no cache, no delay
    answer = call(resource_server, "GET", NODES, token)
    assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)


def test_an_api_key_from_outside_its_allowed_ips_is_refused(idp, admin_token, resource_server):
    key = acme_key(idp, admin_token, allowed_ips=["203.0.113.0/24"])["key"]
    inside = call(resource_server, "GET", NODES, key, forwarded_for="203.0.113.7")
    assert inside.status_code == 200, inside.text
    for outside in ("198.51.100.1", None):  # None: the peer itself, 127.0.0.1
        answer = call(resource_server, "GET", NODES, key, forwarded_for=outside)
        assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED), outside


def test_a_revoked_api_key_is_refused_once_the_cache_runs_out(idp, admin_token,
                                                              resource_server):
    key = acme_key(idp, admin_token)
    assert call(resource_server, "GET", NODES, key["key"]).status_code == 200
    revoke_api_key(idp.url, admin_token, key["id"])
    # the resource server may keep the answer it got before the revocation this long, no longer
    time.sleep(CACHE_SECONDS)
    for _ in range(2):
        answer = call(resource_server, "GET", NODES, key["key"])
        assert (answer.status_code, answer.json()) == (401, UNAUTHORIZED)


def test_the_readme_curl_flows_with_a_token_and_with_an_api_key(idp, admin_token,
                                                                resource_server):
    """The README's blocks as written: register the resource server, call with the admin's
    token, then with an API key made through the API-key API."""
    script = "\n".join(readme_block(marker) for marker in (
        "resource-server-register", "resource-server-token", "resource-server-api-key"))
    script = (script.replace("127.0.0.1:8001", resource_server.removeprefix("http://"))
              .replace("127.0.0.1:8000", idp.url.removeprefix("http://")))
    done = subprocess.run(["bash", "-c", script], env={**os.environ, "PASSWORD": ADMIN_PASSWORD},
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    bodies = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    registered = [body for body in bodies if "client_secret" in body]
    assert len(registered) == 1 and registered[0]["resource_server"] is True
    created = [(body["name"], body["created_by"].startswith("key-"))
               for body in bodies if "created_by" in body and "tenant" in body]
    assert created == [("web-1", False), ("web-2", True)]
    listed = [body["nodes"] for body in bodies if "nodes" in body]
    assert len(listed) == 2 and "web-2" in [node["name"] for node in listed[-1]]
    assert "HTTP/1.1 401" in done.stdout and UNAUTHORIZED in bodies
