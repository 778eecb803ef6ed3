"""The WSGI servers a run compares: gunicorn as ``gunicorn.conf.py`` configures it, its
worker-class variants, and granian's WSGI interface.

A server name on the command line (``--servers``) is one of:

    gunicorn              gunicorn.conf.py as it is (the documented default)
    gunicorn-reuseport    gunicorn.conf.py with GUNICORN_REUSE_PORT=1 (a socket per worker)
    gunicorn-sync         sync workers (one request at a time per process)
    gunicorn-gthread<N>   gthread workers with N threads each
    granian               granian --interface wsgi with the blocking threads below
    granian-t<N>          granian with N blocking threads per worker

Every server runs ``cores`` worker processes on one loopback port.
"""

from __future__ import annotations

import os
import runpy
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
# granian's own default is backpressure/2 (256) threads per WSGI worker; 2 was measured best
# here (docs/benchmarks.md, "Servers and worker classes")
GRANIAN_BLOCKING_THREADS = 2


@dataclass(frozen=True)
class ServerSpec:
    name: str
    kind: str  # "gunicorn" or "granian"
    worker_class: str | None = None  # gunicorn: None keeps gunicorn.conf.py's
    threads: int | None = None
    reuse_port: bool = False  # gunicorn: GUNICORN_REUSE_PORT=1

    def describe(self, workers: int) -> str:
        if self.kind == "granian":
            return f"granian wsgi, {workers} workers × {self.threads} threads"
        if self.worker_class is None:
            reuse = ", GUNICORN_REUSE_PORT=1" if self.reuse_port else ""
            return (f"gunicorn (gunicorn.conf.py{reuse}: gthread, {workers} workers × "
                    f"{self.threads} threads)")
        if self.worker_class == "sync":
            return f"gunicorn sync, {workers} workers"
        return f"gunicorn gthread, {workers} workers × {self.threads} threads"


def parse_server(name: str) -> ServerSpec:
    if name == "gunicorn":
        return ServerSpec(name, "gunicorn", threads=_configured_gunicorn_threads())
    if name == "gunicorn-reuseport":
        return ServerSpec(name, "gunicorn", threads=_configured_gunicorn_threads(),
                          reuse_port=True)
    if name == "gunicorn-sync":
        return ServerSpec(name, "gunicorn", "sync", 1)
    if match := re.fullmatch(r"gunicorn-gthread(\d+)", name):
        return ServerSpec(name, "gunicorn", "gthread", int(match.group(1)))
    if name == "granian":
        return ServerSpec(name, "granian", threads=GRANIAN_BLOCKING_THREADS)
    if match := re.fullmatch(r"granian-t(\d+)", name):
        return ServerSpec(name, "granian", threads=int(match.group(1)))
    raise ValueError(f"unknown server {name!r} (gunicorn, gunicorn-reuseport, gunicorn-sync, "
                     "gunicorn-gthread<N>, granian, granian-t<N>)")


class Server:
    """One server process tree on ``port``, started in a session of its own."""

    def __init__(self, spec: ServerSpec, port: int, workers: int, env: dict[str, str],
                 log_path: Path, reference: bool = False):
        """``reference``: serve the reference app (bench/reference_app.py) instead of ours,
        with the same settings."""
        self.spec = spec
        self.reference = reference
        self.port = port
        self.workers = workers
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        self._env = {**os.environ, **env, "WEB_CONCURRENCY": str(workers),
                     "GUNICORN_BIND": f"127.0.0.1:{port}",
                     "GUNICORN_REUSE_PORT": "1" if spec.reuse_port else "0"}
        self.process: subprocess.Popen | None = None

    def argv(self) -> list[str]:
        spec = self.spec
        target = "bench.reference_app:app" if self.reference else "wsgi:app"
        if spec.kind == "gunicorn":
            config = "bench/reference_gunicorn.conf.py" if self.reference else "gunicorn.conf.py"
            argv = [sys.executable, "-m", "gunicorn", "-c", config]
            if spec.worker_class is not None:
                argv += ["--worker-class", spec.worker_class, "--threads", str(spec.threads)]
            return argv + [target]
        # granian runs no post_worker_init: bench/run.py bootstraps the database beforehand
        return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", "127.0.0.1",
                "--port", str(self.port), "--workers", str(self.workers),
                "--blocking-threads", str(spec.threads), "--no-ws", "--log-level", "warning",
                target]

    def start(self, timeout: float = 60) -> None:
        self._log = open(self.log_path, "w")
        self.process = subprocess.Popen(self.argv(), cwd=ROOT, env=self._env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.time() + timeout
        answered = 0
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.spec.name} exited: {self.log_path.read_text()[-2000:]}")
            try:
                # several answers in a row: every worker has had time to boot
                if requests.get(self.url + "/readyz", timeout=2).status_code == 200:
                    answered += 1
                    if answered >= 10 * self.workers:
                        return
                    continue
            except requests.RequestException:
                pass
            answered = 0
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.spec.name} did not become ready: "
                           f"{self.log_path.read_text()[-2000:]}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)  # the group this server leads
                self.process.wait()
        self.process = None
        self._log.close()


def _configured_gunicorn_threads() -> int:
    """The threads gunicorn.conf.py gives each worker (it reads GUNICORN_THREADS itself)."""
    config = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    return int(config["threads"])
