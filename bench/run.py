"""``make bench``: the throughput table of issue 9, measured against same-run ceilings.

    python -m bench.run [--servers gunicorn,granian] [--rows ...] [--duration 10] ...

1. measures the ceilings (RSA-2048 sign and verify, argon2id verify) with nothing else
   of ours running;
2. makes a PostgreSQL schema and a Redis key prefix of its own, migrates and seeds them;
3. for each server: starts it (``cores`` workers, one loopback port), then drives each
   row with wrk from a process of its own (a short warm-up, then the measured run); then
   serves the reference app (``bench/reference_app.py``: Flask and one signature, nothing
   else) under the same server and settings and measures it the same way;
4. runs the verifier library in a process of its own while the first server is up, before
   its HTTP rows;
5. prints the table and writes it to ``bench/results/latest.md`` (and ``latest.json``,
   and a dated copy), then removes the schema, the keys and the server processes.

``--profile`` also records each measured run with py-spy (``bench/results/profiles``);
numbers from a profiled run carry py-spy's overhead and are marked as such.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import socket
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import datetime, timezone
from importlib import metadata
from multiprocessing import get_context
from pathlib import Path

import requests

from . import anatomy
from . import ceilings as ceiling_probe
from . import profile
from .backends import AUDIENCE_DEFAULT, Backends, seed
from .cpu import CpuMeter
from .report import REFERENCE, ROW_KEYS, Measurement, Report, Skipped
from .rows import ROW_GRANTS, Fixture, verifier_rate
from .servers import Server, ServerSpec, parse_server
from .wrk import Load, run_wrk, wrk_version

RESULTS = Path(__file__).resolve().parent / "results"
# rows our server answers; the reference row has a server of its own, the verifier none
HTTP_ROWS = tuple(key for key in ROW_KEYS if key not in ("verifier", REFERENCE))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default="gunicorn,granian",
                        help="comma-separated: gunicorn, gunicorn-reuseport, gunicorn-sync, "
                             "gunicorn-gthread<N>, "
                             "granian, granian-t<N> (default: %(default)s)")
    parser.add_argument("--rows", default=",".join(ROW_KEYS),
                        help="comma-separated subset of: " + ", ".join(ROW_KEYS))
    parser.add_argument("--duration", type=int, default=10, help="seconds per row (%(default)s)")
    parser.add_argument("--warmup", type=int, default=2,
                        help="seconds of unmeasured load before each row (%(default)s)")
    parser.add_argument("--threads", type=int, default=2, help="wrk -t (%(default)s)")
    parser.add_argument("--connections", type=int, default=32, help="wrk -c (%(default)s)")
    parser.add_argument("--workers", type=int, default=0,
                        help="server worker processes (default: one per core)")
    parser.add_argument("--users", type=int, default=128,
                        help="bench users; the password row cycles through them (%(default)s)")
    parser.add_argument("--ceiling-seconds", type=float, default=3.0,
                        help="seconds per ceiling measurement (%(default)s)")
    parser.add_argument("--verifier-seconds", type=float, default=5.0,
                        help="seconds of the in-process verifier row (%(default)s)")
    parser.add_argument("--profile", action="store_true",
                        help="record every measured run with py-spy (slows the server)")
    parser.add_argument("--database-url", default=os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--redis-url", default=os.environ.get(
        "BENCH_REDIS_URL", "redis://127.0.0.1:6379/9"))
    parser.add_argument("--out", type=Path, default=RESULTS, help="results folder")
    args = parser.parse_args(argv)
    args.server_specs = [parse_server(name) for name in args.servers.split(",") if name]
    args.row_keys = [row for row in args.rows.split(",") if row]
    unknown = set(args.row_keys) - set(ROW_KEYS)
    if unknown:
        parser.error(f"unknown rows: {', '.join(sorted(unknown))}")
    return args


def machine_line(cores: int) -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    def version(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    load = "{:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    return (f"{model}, {cores} cores, Linux {platform.release()}, Python "
            f"{platform.python_version()}, gunicorn {version('gunicorn')}, granian "
            f"{version('granian')}, {wrk_version()}, load average at start {load}")


def command_line() -> str:
    """How this run was started, as someone would type it again."""
    arguments = " ".join(sys.argv[1:])
    if "MAKELEVEL" in os.environ:
        return f"make bench BENCH_ARGS='{arguments}'" if arguments else "make bench"
    return f"python -m bench.run {arguments}".rstrip()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _terminate(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")


class Bench:
    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.cores = ceiling_probe.cores()
        self.workers = args.workers or self.cores
        self.load = Load(args.threads, args.connections, args.duration)
        self.logs = args.out / "logs"
        self.profiles = args.out / "profiles"

    def run(self) -> Report:
        from app.config import load_config

        args = self.args
        args.out.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(exist_ok=True)
        config = load_config()
        argon2 = ceiling_probe.Argon2Parameters(int(config["ARGON2_TIME_COST"]),
                                                int(config["ARGON2_MEMORY_KIB"]),
                                                int(config["ARGON2_PARALLELISM"]))
        started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        report = Report(machine=machine_line(self.cores), command=command_line(),
                        started=started, ceilings={})
        log(report.machine)
        log(f"ceilings: {args.ceiling_seconds:g} s each, argon2id {argon2.describe()}")
        self._ceilings(report, argon2)
        report.notes += [
            f"wrk -t{self.load.threads} -c{self.load.connections}, {self.load.seconds} s per "
            f"row after {args.warmup} s of warm-up; servers run {self.workers} worker processes "
            "on PostgreSQL and Redis with LOG_LEVEL INFO (one JSON line per request).",
            f"argon2id at the configured parameters: {argon2.describe()}.",
            "The verifier row runs in one process (one core), with no revocation hook, "
            "before any HTTP row, while the server is idle; its ceiling is one-core RSA verify.",
            "Ceilings are measured before and after the rows; the table uses the higher rate "
            "of the two (and the lower CPU cost), so a ceiling caught at a busy moment cannot "
            "flatter a row.",
        ]
        if args.profile:
            report.notes.append("Profiled run: py-spy sampled the server during each measured "
                                "row, so the numbers carry its overhead.")

        backends = self.backends = Backends(args.database_url, args.redis_url)
        instance = tempfile.mkdtemp(prefix="bench-instance-")
        try:
            backends.create()
            self._measure(backends, instance, report)
        finally:
            backends.drop()
            shutil.rmtree(instance, ignore_errors=True)
            log(f"removed schema {backends.schema} and Redis keys {backends.prefix}:*")
        log("ceilings again, now that the rows are done")
        self._ceilings(report, argon2)
        return report

    def _ceilings(self, report: Report, argon2: ceiling_probe.Argon2Parameters) -> None:
        """Measure every ceiling; keep the best rate and the lowest CPU cost seen so far."""
        measured = ceiling_probe.measure(self.cores, self.args.ceiling_seconds, argon2)
        for key, rate in measured.items():
            log(f"  {key}: {rate.per_second:,.0f}/s, {rate.cpu_seconds * 1e6:,.0f} µs CPU each")
            report.ceiling_runs.setdefault(key, []).append(rate.per_second)
            report.ceilings[key] = max(report.ceilings.get(key, 0.0), rate.per_second)
            cost = rate.cpu_seconds * 1000
            report.costs[key] = min(report.costs.get(key, cost), cost)

    def _measure(self, backends: Backends, instance: str, report: Report) -> None:
        from app import create_app

        args = self.args
        port = free_port()
        issuer = f"http://127.0.0.1:{port}"
        # the runner's own app (seeding, round-trip counts) sees what the servers see
        app = create_app({**backends.app_config(), "INSTANCE_PATH": instance, "ISSUER": issuer})
        log(f"seeding schema {backends.schema}: {args.users} users, clients, tenants")
        seeded = seed(app, args.users)
        env = {**backends.env(), "IDP_ISSUER": issuer, "IDP_INSTANCE_PATH": instance}
        try:
            self._serve(app, seeded, port, env, report)
        finally:
            from app.extensions import dispose_engines

            with app.app_context():
                dispose_engines()  # before the schema is dropped

    def _serve(self, app, seeded, port: int, env: dict[str, str], report: Report) -> None:
        """Each server in turn: start it, count round trips once, measure every row."""
        args = self.args
        fixture: Fixture | None = None
        skipped: set[str] = set()
        for spec in args.server_specs:
            server = Server(spec, port, self.workers, env, self.logs / f"{spec.name}.log")
            label = spec.describe(self.workers)
            log(f"starting {label}")
            server.start()
            try:
                grants = requests.get(server.url + "/.well-known/openid-configuration",
                                      timeout=10).json()["grant_types_supported"]
                if fixture is None:
                    fixture = Fixture(server.url, seeded, self.logs, self.load.threads)
                rows = []
                for row in (r for r in args.row_keys if r in HTTP_ROWS):
                    grant = ROW_GRANTS.get(row)
                    if grant is None or grant in grants:
                        rows.append(row)
                    elif row not in skipped:
                        skipped.add(row)
                        report.skipped.append(Skipped(
                            row, f"`{grant}` is not in discovery's grant_types_supported on "
                                 "this branch"))
                for row in rows:
                    if row not in report.round_trips:
                        report.round_trips[row] = self._round_trips(row, app, fixture)
                if "verifier" in args.row_keys and not any(
                        m.row == "verifier" for m in report.measurements):
                    # first, on a machine as quiet as the ceiling's: run after the HTTP
                    # rows, the same loop measured 46-47% of the ceiling where it measured
                    # 54-56% alone, the machine still busy with what the rows left behind
                    report.measurements.append(self._verifier(server, fixture, app))
                for row in rows:
                    report.measurements.append(self._row(row, server, label, fixture))
            finally:
                server.stop()
            if REFERENCE in args.row_keys:
                try:
                    report.measurements.append(self._reference(spec, port, env, label, fixture))
                except (RuntimeError, ValueError, OSError) as error:
                    # it would not start, or wrk could not measure it: our rows still count
                    log(f"  {REFERENCE}: {error}")
                    report.skipped.append(Skipped(REFERENCE, f"under {spec.name}: {error}"[:200]))

    def _reference(self, spec: ServerSpec, port: int, env: dict[str, str], label: str,
                   fixture: Fixture) -> Measurement:
        """The reference app under the same server, settings and load as our rows."""
        server = Server(spec, port, self.workers, env,
                        self.logs / f"{spec.name}-reference.log", reference=True)
        log(f"starting the reference app under {label}")
        server.start()
        try:
            return self._row(REFERENCE, server, label, fixture)
        finally:
            server.stop()

    def _round_trips(self, row: str, app, fixture: Fixture,
                     repeat: int = 20) -> tuple[str, str, bool, float]:
        """SQL statements and Redis commands of one steady-state request of ``row``, and
        the CPU of ``repeat`` such requests in this process (bench/anatomy.py)."""
        connections = self.load.connections
        anatomy.trace(app, fixture.request(row, connections, families=1))  # warms caches
        found = anatomy.trace(app, fixture.request(row, connections, families=repeat), repeat)
        log(f"  {row}: {found.cpu_ms:.2f} ms CPU in-process; SQL {found.describe_sql()}; "
            f"Redis {found.describe_redis()}" + ("" if found.ok else " (a request FAILED)"))
        return found.describe_sql(), found.describe_redis(), found.ok, found.cpu_ms

    def _row(self, row: str, server: Server, label: str, fixture: Fixture) -> Measurement:
        args, name = self.args, server.spec.name
        if args.warmup > 0:
            warm = run_wrk(server.url, fixture.request(row, self.load.connections),
                           Load(self.load.threads, self.load.connections, args.warmup),
                           self.logs / f"{name}-{row}-warmup.txt")
            if warm.errors:
                log(f"  {row}: warm-up had {warm.errors} errors")
        request = fixture.request(row, self.load.connections)
        recorder = None
        if args.profile:
            recorder = profile.Recorder(server.pid, self.profiles / f"{name}-{row}.txt",
                                        self.load.seconds)
        meter = CpuMeter(server.pid, self.cores, self.backends.postgres_pids)
        meter.start()
        result = run_wrk(server.url, request, self.load, self.logs / f"{name}-{row}.txt")
        cpu = meter.stop()
        note = ""
        if recorder is not None:
            recorder.wait()
            note = "profiled"
        measurement = Measurement.from_wrk(row, label, result, note, cpu)
        cpu_text = "" if not measurement.cpu_ms else " cpu ms/request " + " ".join(
            f"{group} {ms:.2f}" for group, ms in measurement.cpu_ms.items())
        log(f"  {row}: {measurement.rate:,.0f}/s p50 {measurement.p50_ms:.1f} ms "
            f"p99 {measurement.p99_ms:.1f} ms errors {measurement.errors}{cpu_text}")
        return measurement

    def _verifier(self, server: Server, fixture: Fixture, app) -> Measurement:
        audience = str(app.config.get("AUDIENCE", AUDIENCE_DEFAULT))
        with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn")) as pool:
            result = pool.submit(verifier_rate, server.url, audience, fixture.access_token,
                                 self.args.verifier_seconds).result()
        measurement = Measurement(
            row="verifier", server="in-process, 1 process", rate=result["rate"],
            p50_ms=result["p50_ms"], p99_ms=result["p99_ms"], errors=result["errors"],
            requests=result["requests"], cpu_ms={"server": result["cpu_ms"]})
        log(f"  verifier: {measurement.rate:,.0f}/s p50 {measurement.p50_ms * 1000:.0f} µs")
        return measurement


def write(report: Report, out: Path) -> Path:
    text = report.markdown()
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (out / "latest.md").write_text(text)
    (out / f"run-{stamp}.md").write_text(text)
    (out / "latest.json").write_text(json.dumps({
        "started": report.started, "machine": report.machine, "command": report.command,
        "ceilings": report.ceilings, "ceiling_runs": report.ceiling_runs,
        "costs_ms": report.costs, "round_trips": report.round_trips,
        "measurements": [asdict(m) for m in report.measurements],
        "skipped": [asdict(s) for s in report.skipped],
    }, indent=2))
    return out / "latest.md"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench: wrk is not installed (make bench installs it from Debian)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminate)
    report = Bench(args).run()
    path = write(report, args.out)
    print()
    print(report.markdown())
    log(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
