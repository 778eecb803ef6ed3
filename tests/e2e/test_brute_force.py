"""50 parallel wrong passwords for one account from one address, against gunicorn.

The server trusts one proxy hop (``IDP_TRUSTED_PROXIES=1``); the test plays that proxy and
says which address each request comes from.
"""

import threading

import pytest
import requests

from app.clients import register_client
from app.extensions import services
from tests.e2e.conftest import LiveServer, create_test_user, post_json

pytestmark = pytest.mark.e2e
ATTACKER, ELSEWHERE = "203.0.113.5", "198.51.100.7"
GUESSES = 50


def _login(url, username, password, address):
    return post_json(url + "/api/v1/auth/token", {"username": username, "password": password},
                     headers={"X-Forwarded-For": address})


def test_parallel_guesses_are_all_counted_and_only_the_guesser_is_slowed(
        server_backends, backend_app, tmp_path):
    create_test_user(backend_app, "victim")
    create_test_user(backend_app, "bystander")
    with backend_app.app_context():
        public_client = register_client({"client_name": "CLI", "grant_types": ["password"],
                                         "token_endpoint_auth_method": "none"}).client.client_id
    server = LiveServer({**server_backends, "IDP_TRUSTED_PROXIES": "1", "LOG_LEVEL": "INFO"},
                        tmp_path=tmp_path)
    try:
        barrier = threading.Barrier(GUESSES)
        statuses: list = [None] * GUESSES

        def guess(i):
            barrier.wait()
            statuses[i] = _login(server.url, "victim", f"guess-{i}", ATTACKER).status_code

        threads = [threading.Thread(target=guess, args=(i,)) for i in range(GUESSES)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert set(statuses) <= {401, 429} and 429 in statuses
        with backend_app.app_context():
            assert services().throttle.attempts("victim", ATTACKER) == GUESSES

        # the guesser is slowed, even with the right password
        blocked = _login(server.url, "victim", "correct horse battery", ATTACKER)
        assert blocked.status_code == 429
        assert blocked.json()["error"]["code"] == "RATE_LIMITED"
        assert int(blocked.headers["Retry-After"]) >= 1
        # but the owner elsewhere, and other accounts from that address, still sign in
        assert _login(server.url, "victim", "correct horse battery", ELSEWHERE).status_code == 200
        assert _login(server.url, "bystander", "correct horse battery", ATTACKER).status_code == 200
        # the same limit guards the password grant, in RFC 6749 form
        oauth = requests.post(server.url + "/oauth/token", data={
            "grant_type": "password", "client_id": public_client, "username": "victim",
            "password": "correct horse battery"}, headers={"X-Forwarded-For": ATTACKER}, timeout=15)
        assert oauth.status_code == 429 and oauth.json()["error"] == "slow_down"
        assert int(oauth.headers["Retry-After"]) >= 1
        assert '"action":"login.lockout"' in server.log()
    finally:
        server.stop()
