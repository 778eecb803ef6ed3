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
