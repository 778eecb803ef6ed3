"""The README's quick start, run as written: `make run`, then its curl login block."""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.helpers import free_port, readme_block

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e


def test_make_run_then_the_readme_curl_login(tmp_path):
    port = free_port()
    env = {**os.environ, "IDP_INSTANCE_PATH": str(tmp_path / "instance"),
           "GUNICORN_BIND": f"127.0.0.1:{port}", "IDP_ISSUER": f"http://127.0.0.1:{port}"}
    for name in ("DATABASE_URL", "REDIS_URL", "IDP_SECRET_KEY", "IDP_SECRET_KEY_FILE",
                 "IDP_BOOTSTRAP_ADMIN_USERNAME", "IDP_BOOTSTRAP_ADMIN_PASSWORD"):
        env.pop(name, None)
    log = tmp_path / "make-run.log"
    with open(log, "w") as out:
        server = subprocess.Popen(["make", "run"], cwd=ROOT, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        password = None
        deadline = time.time() + 120
        while time.time() < deadline and password is None:
            found = re.search(r"password '([^']+)'", log.read_text())
            password = found.group(1) if found else None
            assert server.poll() is None, log.read_text()[-3000:]
            time.sleep(0.2)
        assert password, "make run printed no admin password"
        while time.time() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                time.sleep(0.2)

        block = readme_block("quickstart-login")
        block = block.replace("the-printed-password", password).replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = subprocess.run(["bash", "-c", block], capture_output=True, text=True, timeout=30)
        body = json.loads(result.stdout)
        assert body["token_type"] == "Bearer" and body["token"].count(".") == 2
        assert body["user"]["username"] == "admin" and body["user"]["roles"] == ["admin"]
        assert (tmp_path / "instance" / "idp.db").exists()
        assert (tmp_path / "instance" / "secret.key").exists()
        assert password not in (tmp_path / "instance" / "idp.db").read_bytes().decode("latin-1")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=20)
