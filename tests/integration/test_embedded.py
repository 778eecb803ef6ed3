"""The embedded default (SQLite + memory://) runs the same login flow."""

from app import create_app
from app.extensions import db, services
from app.tenants import create_tenant
from app.users import create_user
from tests.helpers import jwt_parts, login


def test_login_on_sqlite_and_memory_store(embedded_app):
    with embedded_app.app_context():
        create_user(username="alice", email="alice@example.test", password="correct horse battery")
        assert services().store.embedded
        assert db.engine.dialect.name == "sqlite"
    client = embedded_app.test_client()
    response = login(client, "Alice", "correct horse battery")  # user names ignore case
    assert response.status_code == 200
    assert jwt_parts(response.get_json()["token"])[1]["client_id"] == "infracast"
    assert client.get("/readyz").status_code == 200
    assert login(client, "alice", "wrong").status_code == 401


def test_code_flow_consent_and_reuse_on_sqlite_and_memory_store(embedded_app):
    from app.clients import register_client
    from tests.oidc import RelyingParty, csrf_token

    with embedded_app.app_context():
        create_user(username="bob", email="bob@example.test", password="correct horse battery")
        client_id = register_client({
            "client_name": "Third", "first_party": False, "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["http://127.0.0.1:9999/cb"]}).client.client_id
    rp = RelyingParty(embedded_app.test_client(), client_id)
    after_login = rp.submit_login(rp.authorize(scope="openid offline_access"), "bob",
                                  "correct horse battery")
    consent_url = after_login.headers["Location"]
    page = rp.http.get(consent_url).get_data(True)
    allowed = rp.http.post(consent_url, data={"csrf_token": csrf_token(page), "decision": "allow"})
    code = rp.callback(allowed)["code"]
    assert rp.exchange(code).get_json()["refresh_token"]
    assert rp.exchange(code).get_json()["error"] == "invalid_grant"


CLAIMANT = """
import sys
from app import create_app
app = create_app({"DATABASE_URL": sys.argv[1], "REDIS_URL": "memory://",
                  "INSTANCE_PATH": sys.argv[2], "SECRET_KEY_VALUE": sys.argv[3],
                  "LOG_LEVEL": "ERROR"})
response = app.test_client().get("/readyz")
print(response.status_code, response.get_json()["checks"]["redis"])
"""


def test_a_second_process_cannot_serve_the_same_embedded_store(tmp_path):
    """memory:// holds state in one process: a second process on the same SQLite database is
    refused, whatever its instance folder (gunicorn refuses several workers at start-up; this
    guards every other server, granian included)."""
    import subprocess
    import sys

    from tests.conftest import TEST_KEK, base_config

    database = f"sqlite:///{tmp_path / 'idp.db'}"
    app = create_app(base_config(DATABASE_URL=database, REDIS_URL="memory://",
                                 INSTANCE_PATH=str(tmp_path)))
    with app.app_context():
        from flask_migrate import upgrade
        upgrade()
    assert app.test_client().get("/readyz").status_code == 200  # this process claims it
    second = subprocess.run([sys.executable, "-c", CLAIMANT, database, str(tmp_path), TEST_KEK],
                            capture_output=True, text=True, timeout=60)
    assert second.stdout.split() == ["503", "down"], second.stderr[-2000:]
    assert "REDIS_URL=memory://" in second.stderr
    # the lock is the database's, not the instance folder's: another instance folder on the
    # same database would be a second, disjoint store, and is refused too
    assert (tmp_path / "idp.db.store.lock").is_file()
    other = tmp_path / "other"
    other.mkdir()
    refused = subprocess.run([sys.executable, "-c", CLAIMANT, database, str(other), TEST_KEK],
                             capture_output=True, text=True, timeout=60)
    assert refused.stdout.split() == ["503", "down"], refused.stderr[-2000:]
    # another database is another embedded store, and is free
    free = subprocess.run([sys.executable, "-c", CLAIMANT, f"sqlite:///{other / 'idp.db'}",
                           str(other), TEST_KEK], capture_output=True, text=True, timeout=60)
    assert free.stdout.split()[1:] == ["ok"], free.stderr[-2000:]


def test_memory_store_on_a_database_that_hosts_share_is_refused(pg_schema, clean, make_user,
                                                                 tmp_path):
    """Contract §1: "memory:// with more than one worker or host must refuse to start".
    Two hosts (two instance folders) on one PostgreSQL database, each on memory://, each kept
    a store of its own: a token logged out elsewhere stayed good on the host that had already
    checked it. memory:// serves SQLite only; on PostgreSQL every store path is refused."""
    from app.extensions import dispose_engines
    from tests.conftest import base_config, bearer

    user = make_user()
    deployment = clean.test_client()  # the shared-Redis hosts of the same database
    token = login(deployment, user["username"], user["password"]).get_json()["token"]
    hosts = [create_app(base_config(DATABASE_URL=pg_schema.url, REDIS_URL="memory://",
                                    INSTANCE_PATH=str(tmp_path / name)))
             for name in ("host-a", "host-b")]
    try:
        web = [host.test_client() for host in hosts]
        seen = [http.get("/api/v1/auth/me", headers=bearer(token)) for http in web]
        assert deployment.post("/api/v1/auth/logout", json={},
                               headers=bearer(token)).status_code == 204
        for http, before in zip(web, seen):
            after = http.get("/api/v1/auth/me", headers=bearer(token))
            assert after.status_code != 200, "a logged-out token is accepted by a memory:// host"
            for refused in (before, after, login(http, user["username"], user["password"])):
                assert refused.status_code == 503, refused.get_json()
                assert refused.get_json()["error"]["code"] == "UNAVAILABLE"
            ready = http.get("/readyz")
            assert ready.status_code == 503
            assert ready.get_json()["checks"]["redis"] == "down"
    finally:
        for host in hosts:
            with host.app_context():
                dispose_engines()


def test_consent_grants_and_a_withdrawal_at_once_on_sqlite(embedded_app, monkeypatch):
    """SQLite has no FOR UPDATE: the grant's lock is its first write. A second grant, and a
    withdrawal, made while a grant is between its read and its write, wait for it; the
    second grant merges with it, and the withdrawal removes what it wrote."""
    import threading
    import time

    import app.repositories as repositories
    from app.clients import register_client
    from tests.oidc import REDIRECT_URI

    with embedded_app.app_context():
        user_id = create_user(username="ada", email=None, password="correct horse battery").id
        client_id = register_client({
            "client_name": "Third party", "grant_types": ["authorization_code"],
            "token_endpoint_auth_method": "none", "redirect_uris": [REDIRECT_URI],
            "first_party": False}).client.client_id
        consents = services().consents
        consents.grant(user_id, client_id, ["openid"])
    reading, original = threading.Event(), repositories._upsert_insert

    def upsert_insert(conn):
        if not reading.is_set():  # the first grant has read the consent; it writes soon
            reading.set()
            time.sleep(0.3)
        return original(conn)

    monkeypatch.setattr(repositories, "_upsert_insert", upsert_insert)

    def grant(scopes):
        with embedded_app.app_context():
            consents.grant(user_id, client_id, scopes)

    for meanwhile, expected in ((lambda: grant(["openid", "profile"]), ["email", "openid", "profile"]),
                                (lambda: consents.revoke(user_id, client_id), None)):
        reading.clear()
        first = threading.Thread(target=grant, args=(["openid", "email"],))
        first.start()
        assert reading.wait(10)
        with embedded_app.app_context():
            meanwhile()
        first.join(10)
        with embedded_app.app_context():
            found = consents.find(user_id, client_id)
        assert (found and sorted(found.scopes)) == expected


def test_a_tenant_scoped_token_sees_only_its_tenants_keys_on_sqlite(embedded_app):
    """The rule is one SQL query on both databases (json_each here, PostgreSQL's
    json_array_elements_text there)."""
    with embedded_app.app_context():
        for tenant in ("acme", "globex"):
            create_tenant(tenant, tenant.title())
        create_user(username="alice", email="alice@example.test", password="correct horse battery",
                    memberships={"acme": "admin", "globex": "admin"})
    client = embedded_app.test_client()
    unscoped = {"Authorization": "Bearer " + login(client, "alice", "correct horse battery")
                .get_json()["token"]}
    made = {tenant: client.post("/api/v1/api-keys", headers=unscoped, json={
        "name": tenant, "tenants": [tenant], "permissions": ["nodes:read"]}).get_json()["id"]
        for tenant in ("acme", "globex")}
    scoped = {"Authorization": "Bearer " + client.post("/api/v1/auth/token", json={
        "username": "alice", "password": "correct horse battery", "tenant": "acme"})
        .get_json()["token"]}
    listed = client.get("/api/v1/api-keys", headers=scoped).get_json()["items"]
    assert [k["id"] for k in listed] == [made["acme"]]
    assert client.get(f"/api/v1/api-keys/{made['globex']}", headers=scoped).status_code == 404
    assert len(client.get("/api/v1/api-keys", headers=unscoped).get_json()["items"]) == 2
