"""16 simultaneous refreshes of one token, against gunicorn with several workers."""

import threading

import pytest
import requests

from tests.e2e.conftest import LiveServer, create_test_user, post_json

pytestmark = pytest.mark.e2e
RACERS = 16


def _race(url: str, refresh_token: str) -> list[requests.Response]:
    barrier = threading.Barrier(RACERS)
    responses: list = [None] * RACERS

    def run(i):
        barrier.wait()
        responses[i] = post_json(url + "/api/v1/auth/refresh", {"refresh_token": refresh_token})

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def _live_successors(url: str, tokens: set[str]) -> int:
    return sum(post_json(url + "/api/v1/auth/refresh", {"refresh_token": t}).status_code == 200
               for t in tokens)


@pytest.fixture(scope="module")
def racer_user(backend_app):
    create_test_user(backend_app, "racer")
    return "racer"


@pytest.mark.parametrize("grace", ["5", "0"])
def test_concurrent_refresh_never_leaves_two_live_successors(server_backends, racer_user, grace,
                                                             tmp_path):
    server = LiveServer({**server_backends, "REFRESH_REUSE_GRACE_SECONDS": grace},
                        workers=2, tmp_path=tmp_path)
    try:
        login = post_json(server.url + "/api/v1/auth/token",
                          {"username": racer_user, "password": "correct horse battery"}).json()
        responses = _race(server.url, login["refresh_token"])
        assert all(r.status_code in (200, 401) for r in responses), [r.text for r in responses]
        successors = {r.json()["refresh_token"] for r in responses if r.status_code == 200}
        assert len(successors) <= 1
        if grace == "5":
            # every racer got the one successor, and the session lives on
            assert all(r.status_code == 200 for r in responses)
            assert _live_successors(server.url, successors) == 1
        else:
            # one racer won, the rest were reuse: the family is revoked, successor included
            assert sum(r.status_code == 200 for r in responses) == 1
            assert _live_successors(server.url, successors) == 0
    finally:
        server.stop()
