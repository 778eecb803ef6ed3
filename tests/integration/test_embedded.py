"""The embedded default (SQLite + memory://) runs the same login flow."""

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
