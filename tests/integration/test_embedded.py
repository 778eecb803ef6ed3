"""The embedded default (SQLite + memory://) runs the same login flow."""

from app import create_app
from app.extensions import db, services
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
                  "LOG_LEVEL": "CRITICAL"})
response = app.test_client().get("/readyz")
print(response.status_code, response.get_json()["checks"]["redis"])
"""


def test_a_second_process_cannot_serve_the_same_embedded_store(tmp_path):
    """memory:// holds state in one process: a second worker of the instance is refused
    (gunicorn refuses to start it; this guards every other server, granian included)."""
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
    # another instance folder is another embedded store, and is free
    other = tmp_path / "other"
    other.mkdir()
    free = subprocess.run([sys.executable, "-c", CLAIMANT, database, str(other), TEST_KEK],
                          capture_output=True, text=True, timeout=60)
    assert free.stdout.split() == ["200", "ok"], free.stderr[-2000:]
