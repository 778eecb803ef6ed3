"""Driving one row with wrk, in a process of its own, over loopback."""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .report import WrkResult, parse_wrk

LUA_DIR = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class Load:
    """How hard to push: wrk's threads, connections and seconds per row."""

    threads: int = 2
    connections: int = 32
    seconds: int = 10
    timeout_seconds: int = 10


@dataclass(frozen=True)
class Request:
    """What a row sends: a GET, or POSTs whose bodies (or refresh tokens) come from a file."""

    path: str
    script: str = "get.lua"  # get.lua, bodies.lua or refresh.lua (bench/lua)
    method: str = "GET"
    headers: tuple[tuple[str, str], ...] = ()
    data: Path | None = None
    expect: str | None = None  # a Lua pattern every 2xx body must match
    expect_header: str | None = None

    @property
    def content_type(self) -> str | None:
        return "application/x-www-form-urlencoded" if self.method == "POST" else None

    def bodies(self) -> list[str]:
        """The bodies the script sends, in order (refresh.lua's data is tokens)."""
        if self.data is None:
            return []
        lines = [line for line in self.data.read_text().splitlines() if line]
        if self.script == "refresh.lua":
            return [f"grant_type=refresh_token&refresh_token={line}" for line in lines]
        return lines


def wrk_version() -> str:
    if shutil.which("wrk") is None:
        return "not installed"
    # wrk -v prints its version, then usage, and exits 1
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout
    return out.splitlines()[0].split(" [")[0] if out else "unknown"


def run_wrk(base_url: str, request: Request, load: Load, log: Path) -> WrkResult:
    """Run wrk against ``base_url + request.path``; its whole output goes to ``log``."""
    env = {**os.environ, "BENCH_THREADS": str(load.threads), "BENCH_METHOD": request.method}
    for name, value in (("BENCH_DATA", request.data), ("BENCH_EXPECT", request.expect),
                        ("BENCH_EXPECT_HEADER", request.expect_header),
                        ("BENCH_CONTENT_TYPE", request.content_type)):
        if value is not None:
            env[name] = str(value)
        else:
            env.pop(name, None)
    argv = ["wrk", f"-t{load.threads}", f"-c{load.connections}", f"-d{load.seconds}s",
            f"--timeout={load.timeout_seconds}s", "--latency", "-s", request.script]
    for name, value in request.headers:
        argv += ["-H", f"{name}: {value}"]
    argv.append(base_url + request.path)
    completed = subprocess.run(argv, cwd=LUA_DIR, env=env, capture_output=True, text=True,
                               timeout=load.seconds + 60)
    shown = [a if not a.startswith("Authorization:") else "Authorization: (redacted)"
             for a in argv]
    log.write_text(" ".join(shown) + "\n\n" + completed.stdout + completed.stderr)
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed ({completed.returncode}): {completed.stderr[-500:]}")
    return parse_wrk(completed.stdout)
