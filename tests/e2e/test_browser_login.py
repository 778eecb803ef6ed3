"""A real browser (Debian's headless Chromium, driven by Playwright) signs in on the login page.

The relying party's ``redirect_uri`` is a tiny HTTP server of the test's own, so the test
sees exactly what the browser brings back. Only ``/usr/bin/chromium`` is used — installed
by the Makefile from Debian's packages, never a browser Playwright downloads.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import pytest
import requests
from playwright.sync_api import expect, sync_playwright

from app.clients import register_client
from tests.helpers import free_port
from tests.oidc import pkce_pair, query_of

pytestmark = pytest.mark.e2e

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]


class CallbackServer:
    """The relying party's redirect_uri: records every request it gets."""

    def __init__(self):
        self.requests: list[str] = []
        received = self.requests

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                received.append(self.path)
                body = b"<!doctype html><title>Back at the app</title><h1>Signed in</h1>"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/callback"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def callback_server():
    server = CallbackServer()
    yield server
    server.stop()


def test_chromium_fills_the_login_form_and_lands_on_the_redirect_uri(
        live_server, backend_app, callback_server, tmp_path):
    from tests.e2e.conftest import create_test_user

    create_test_user(backend_app, "browser-user")
    with backend_app.app_context():
        client_id = register_client({
            "client_name": "Nodes Console", "token_endpoint_auth_method": "none",
            "redirect_uris": [callback_server.url]}).client.client_id
    verifier, challenge = pkce_pair()
    authorize = requests.Request("GET", live_server.url + "/oauth/authorize", params={
        "response_type": "code", "client_id": client_id, "redirect_uri": callback_server.url,
        "scope": "openid profile", "state": "browser-state", "nonce": "browser-nonce",
        "code_challenge": challenge, "code_challenge_method": "S256"}).prepare().url

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            page = browser.new_page()
            page.goto(authorize)
            expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
            expect(page.get_by_text("Nodes Console")).to_be_visible()

            # keyboard only: the user name field has the focus, Tab leads to the password
            expect(page.get_by_label("User name")).to_be_focused()
            page.keyboard.type("browser-user")
            page.keyboard.press("Tab")
            expect(page.get_by_label("Password")).to_be_focused()
            page.keyboard.type("not the password")
            page.keyboard.press("Enter")
            expect(page.get_by_role("alert")).to_have_text("Invalid username or password")
            page.screenshot(path=str(tmp_path / "login-error.png"))  # for a person to look at

            page.get_by_label("Password").fill("correct horse battery")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url(callback_server.url + "?**")
            expect(page.get_by_role("heading", name="Signed in")).to_be_visible()
        finally:
            browser.close()

    # (the browser may also ask the app for /favicon.ico)
    [landed] = [path for path in callback_server.requests if urlsplit(path).path == "/callback"]
    params = query_of(landed)
    assert params["state"] == "browser-state" and params["iss"] == live_server.url
    token = requests.post(live_server.url + "/oauth/token", timeout=10, data={
        "grant_type": "authorization_code", "code": params["code"], "client_id": client_id,
        "redirect_uri": callback_server.url, "code_verifier": verifier})
    assert token.status_code == 200 and token.json()["id_token"]
