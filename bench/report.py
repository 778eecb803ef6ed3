"""What a bench run measured, judged against the issue's targets, as one markdown table.

Nothing here starts a process or opens a socket: ``bench/run.py`` measures, this module
parses wrk's result line, decides validity and pass/fail, and renders. The unit tests in
``tests/unit/test_bench_report.py`` exercise it on captured output.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# ceilings measured in the same run (bench/ceilings.py), by key
RSA_SIGN_ALL = "rsa_sign_all"
RSA_VERIFY_ALL = "rsa_verify_all"
RSA_VERIFY_ONE = "rsa_verify_one"
ARGON2_ALL = "argon2_verify_all"

# the primitive whose CPU cost a row's server CPU is compared with (bench/report.py's CPU
# table): one verification costs the same whichever ceiling measured it
PRIMITIVE_COST = {RSA_SIGN_ALL: RSA_SIGN_ALL, RSA_VERIFY_ALL: RSA_VERIFY_ONE,
                  RSA_VERIFY_ONE: RSA_VERIFY_ONE, ARGON2_ALL: ARGON2_ALL}
PRIMITIVE_NAMES = {RSA_SIGN_ALL: "sign", RSA_VERIFY_ONE: "verify", ARGON2_ALL: "argon2"}

CEILING_NAMES = {
    RSA_SIGN_ALL: "RSA-2048 sign/s, all cores",
    RSA_VERIFY_ALL: "RSA-2048 verify/s, all cores",
    RSA_VERIFY_ONE: "RSA-2048 verify/s, one core",
    ARGON2_ALL: "argon2id verify/s, all cores",
}


@dataclass(frozen=True)
class Target:
    """The issue's target for a row: a share of a ceiling, an absolute rate, a p99 bound."""

    text: str
    min_ratio: float | None = None  # of the row's ceiling
    min_rate: float | None = None
    max_p99_ms: float | None = None


@dataclass(frozen=True)
class RowSpec:
    key: str
    title: str
    ceiling: str | None  # the ceiling printed beside the row (and the ratio's denominator)
    target: Target | None

    @property
    def short_title(self) -> str:
        """The title without its endpoint: ``refresh grant``."""
        return self.title.split(" `")[0]


REFERENCE = "reference_sign"
REFERENCE_PATH = "/sign"  # what bench/reference_app.py answers

ROWS: tuple[RowSpec, ...] = (
    RowSpec("jwks", "JWKS `GET /.well-known/jwks.json`", None,
            Target("≥ 5,000/s", min_rate=5000)),
    RowSpec("discovery", "discovery `GET /.well-known/openid-configuration`", None,
            Target("≥ 5,000/s", min_rate=5000)),
    RowSpec("password", "password grant `POST /oauth/token`", ARGON2_ALL,
            Target("≥ 90% of argon2 ceiling", min_ratio=0.90)),
    RowSpec("refresh", "refresh grant `POST /oauth/token`", RSA_SIGN_ALL,
            Target("≥ 50% of sign ceiling, p99 < 50 ms", min_ratio=0.50, max_p99_ms=50)),
    RowSpec("client_credentials", "client_credentials `POST /oauth/token`", RSA_SIGN_ALL,
            Target("≥ 50% of sign ceiling", min_ratio=0.50)),
    # not ours: what a Flask app that only signs gets from the same server (issue 9's own
    # reference), beside which the two signing rows can be read
    RowSpec(REFERENCE, "reference app `POST /sign`: Flask, one RS256 signature, nothing "
            "else (bench/reference_app.py)", RSA_SIGN_ALL, None),
    RowSpec("introspect_jwt", "introspection of a JWT `POST /oauth/introspect`", RSA_VERIFY_ALL,
            Target("≥ 3,000/s", min_rate=3000)),
    RowSpec("introspect_api_key", "introspection of an API key `POST /oauth/introspect`", None,
            None),
    RowSpec("verifier", "verifier library, in-process (`idp/verifier.py`)", RSA_VERIFY_ONE,
            Target("≥ 50% of one-core verify ceiling", min_ratio=0.50)),
)
ROW_KEYS = tuple(row.key for row in ROWS)
_SPECS = {row.key: row for row in ROWS}


def spec(key: str) -> RowSpec:
    return _SPECS[key]


# -- wrk ------------------------------------------------------------------------------

_RESULT_LINE = re.compile(r"^BENCH_RESULT (.*)$", re.MULTILINE)


@dataclass(frozen=True)
class WrkResult:
    """The line ``bench/lua/common.lua``'s ``done()`` prints, as numbers.

    ``status`` is wrk's own count of responses above 399; ``bad`` is the scripts' count of
    responses that were not 2xx or lacked what the row expects (``"active":true``, a
    refresh token, an ETag...), so it includes ``status``; ``starved`` counts requests the
    refresh script had no live token for.
    """

    requests: int
    duration_us: int
    p50_us: int
    p90_us: int
    p99_us: int
    max_us: int
    connect: int = 0
    read: int = 0
    write: int = 0
    timeout: int = 0
    status: int = 0
    bad: int = 0
    starved: int = 0

    @property
    def rate(self) -> float:
        return self.requests / (self.duration_us / 1e6) if self.duration_us else 0.0

    @property
    def socket_errors(self) -> int:
        return self.connect + self.read + self.write + self.timeout

    @property
    def non_2xx(self) -> int:
        return max(self.status, self.bad)

    @property
    def errors(self) -> int:
        return self.socket_errors + self.non_2xx + self.starved


def parse_wrk(output: str) -> WrkResult:
    """The ``BENCH_RESULT key=value ...`` line of a wrk run; ValueError when it is missing."""
    match = _RESULT_LINE.search(output)
    if match is None:
        raise ValueError("wrk printed no BENCH_RESULT line (did the Lua script fail to load?)")
    fields: dict[str, int] = {}
    for pair in match.group(1).split():
        name, _, value = pair.partition("=")
        fields[name] = int(float(value))
    known = set(WrkResult.__dataclass_fields__)
    return WrkResult(**{name: value for name, value in fields.items() if name in known})


# -- rows -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Measurement:
    row: str
    server: str
    rate: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int  # every failed request: socket errors, non-2xx answers, starved requests
    non_2xx: int = 0  # of which answers other than 2xx (shown, already counted in errors)
    requests: int = 0
    note: str = ""
    # CPU milliseconds per request by group (bench/cpu.py), and the machine's busy and
    # stolen shares while the row ran; None where it was not measured
    cpu_ms: dict[str, float] | None = None
    busy: float | None = None
    steal: float | None = None

    @property
    def valid(self) -> bool:
        # from_wrk counts the non-2xx answers in errors too; a measurement made otherwise
        # may not, and a refused answer must never pass
        return self.errors == 0 and self.non_2xx == 0 and self.requests > 0

    @classmethod
    def from_wrk(cls, row: str, server: str, result: WrkResult, note: str = "",
                 cpu=None) -> "Measurement":
        """``cpu`` is a ``bench.cpu.CpuUse`` over the same run, or None."""
        return cls(row=row, server=server, rate=result.rate, p50_ms=result.p50_us / 1000,
                   p99_ms=result.p99_us / 1000, errors=result.errors, non_2xx=result.non_2xx,
                   requests=result.requests, note=note,
                   cpu_ms=cpu.per_request_ms(result.requests) if cpu else None,
                   busy=cpu.busy_share if cpu else None, steal=cpu.steal_share if cpu else None)


@dataclass(frozen=True)
class Skipped:
    row: str
    reason: str


def ratio(measurement: Measurement, ceilings: dict[str, float]) -> float | None:
    ceiling_key = spec(measurement.row).ceiling
    ceiling = ceilings.get(ceiling_key) if ceiling_key else None
    return measurement.rate / ceiling if ceiling else None


# below this share of the machine busy, a CPU-bound row was held back by something other
# than the CPU: with gunicorn, one worker holding most of wrk's keep-alive connections
# (docs/benchmarks.md, "gunicorn's connection lottery")
BUSY_ENOUGH = 0.9


def verdict(measurement: Measurement, ceilings: dict[str, float]) -> str:
    """``INVALID`` (any error or non-2xx), ``pass``, ``FAIL``, or ``-`` (no target); a
    failing row that left the machine partly idle says so."""
    judged = _judge(measurement, ceilings)
    busy = measurement.busy
    if busy is not None and busy < BUSY_ENOUGH and judged.startswith("FAIL"):
        return f"{judged}; machine {busy:.0%} busy"
    return judged


def _judge(measurement: Measurement, ceilings: dict[str, float]) -> str:
    if not measurement.valid:
        return "INVALID"
    target = spec(measurement.row).target
    if target is None:
        return "-"
    misses = []
    if target.min_rate is not None and measurement.rate < target.min_rate:
        misses.append("rate")
    if target.min_ratio is not None:
        share = ratio(measurement, ceilings)
        if share is None or share < target.min_ratio:
            misses.append("ratio")
    if target.max_p99_ms is not None and (measurement.p99_ms is None
                                          or measurement.p99_ms >= target.max_p99_ms):
        misses.append("p99")
    return "pass" if not misses else "FAIL (" + ", ".join(misses) + ")"


# -- rendering ------------------------------------------------------------------------

def _rate(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.1f}"


def _share(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.1%}" if value < 0.1 else f"{value:.0%}"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def _markdown(headers: list[str], align: str, rows: list[list[str]]) -> str:
    """A markdown table (``align``: one ``l`` or ``r`` per column); "" without rows."""
    if not rows:
        return ""
    rule = ["---" if a == "l" else "--:" for a in align]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in [headers, rule, *rows])


@dataclass
class Report:
    machine: str
    command: str
    started: str
    ceilings: dict[str, float]
    # CPU milliseconds one operation of each ceiling took
    costs: dict[str, float] = field(default_factory=dict)
    # every measurement of each ceiling, in order (``ceilings`` holds the best)
    ceiling_runs: dict[str, list[float]] = field(default_factory=dict)
    measurements: list[Measurement] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # row -> (SQL statements, Redis commands, whether the requests succeeded, CPU ms per
    # request) of steady-state requests sent one at a time in-process (bench/anatomy.py)
    round_trips: dict[str, tuple[str, str, bool, float]] = field(default_factory=dict)

    def table(self) -> str:
        by_row: dict[str, list[Measurement]] = {}
        for measurement in self.measurements:
            by_row.setdefault(measurement.row, []).append(measurement)
        skipped = {s.row: s.reason for s in self.skipped}
        rows = []
        for row in ROWS:
            target = row.target.text if row.target else "-"
            if row.key in skipped:
                rows.append([row.title] + ["-"] * 7 + [target, f"skipped: {skipped[row.key]}"])
            ceiling = self.ceilings.get(row.ceiling) if row.ceiling else None
            ceiling_text = f"{CEILING_NAMES[row.ceiling]} {_rate(ceiling)}" if ceiling else "-"
            for m in by_row.get(row.key, []):
                errors = str(m.errors) if not m.non_2xx else f"{m.errors} ({m.non_2xx} non-2xx)"
                rows.append([row.title, m.server + (f" ({m.note})" if m.note else ""),
                             _rate(m.rate), _ms(m.p50_ms), _ms(m.p99_ms), errors, ceiling_text,
                             _share(ratio(m, self.ceilings)), target,
                             verdict(m, self.ceilings)])
        return _markdown(["row", "server", "req/s", "p50 ms", "p99 ms", "errors",
                          "ceiling (same run)", "ratio", "target", "result"], "llrrrrlrll", rows)

    def primitive(self, m: Measurement) -> str:
        """The row's server CPU per request as a multiple of its primitive's CPU cost."""
        key = spec(m.row).ceiling
        cost_key = PRIMITIVE_COST.get(key) if key else None
        cost = self.costs.get(cost_key) if cost_key else None
        if not cost or not m.cpu_ms or "server" not in m.cpu_ms:
            return "-"
        return f"{m.cpu_ms['server'] / cost:.1f}× {PRIMITIVE_NAMES[cost_key]}"

    def cpu_table(self) -> str:
        rows = []
        for m in self.measurements:
            if m.cpu_ms is None:
                continue
            cells = [f"{m.cpu_ms[k]:.2f}" if k in m.cpu_ms else "-"
                     for k in ("server", "postgres", "redis", "wrk", "other")]
            rows.append([spec(m.row).short_title, m.server, cells[0], self.primitive(m),
                         *cells[1:], "-" if m.busy is None else f"{m.busy:.0%}",
                         "-" if m.steal is None else f"{m.steal:.0%}"])
        return _markdown(["row", "server", "server CPU", "÷ primitive", "PostgreSQL (ours)",
                          "Redis", "wrk", "other", "machine busy", "steal"], "llrrrrrrrr", rows)

    def round_trips_table(self) -> str:
        rows = []
        for row in ROWS:
            if row.key in self.round_trips:
                sql, redis, ok, cpu_ms = self.round_trips[row.key]
                failed = "" if ok else " (request failed: not representative)"
                rows.append([row.short_title + failed, f"{cpu_ms:.2f}", sql, redis])
        return _markdown(["row", "in-process CPU ms", "SQL statements", "Redis commands"],
                         "lrll", rows)

    def ceilings_table(self) -> str:
        rows = []
        for key, name in CEILING_NAMES.items():
            if key in self.ceilings:
                cost = self.costs.get(key)
                runs = ", ".join(_rate(r) for r in self.ceiling_runs.get(key, []))
                rows.append([name, _rate(self.ceilings[key]), runs or "-",
                             "-" if cost is None else f"{cost:.3f}"])
        return _markdown(["ceiling", "per second (used)", "each measurement",
                          "CPU ms per operation"], "lrrr", rows)

    def markdown(self) -> str:
        parts = [
            f"# Benchmark run {self.started}",
            "",
            f"Machine: {self.machine}",
            "",
            f"Command: `{self.command}`",
            "",
            self.table(),
            "",
            "Ceilings, measured in this run before and after the rows (one process per core "
            "unless one core is named):",
            "",
            self.ceilings_table(),
        ]
        trips = self.round_trips_table()
        if trips:
            parts += ["", "One request at a time through the app in the runner's process "
                      "(bench/anatomy.py): its CPU without a WSGI server or concurrency, and "
                      "the round trips of one steady-state request (a ping is pool_pre_ping's "
                      "SELECT 1 at each connection checkout):", "", trips]
        cpu = self.cpu_table()
        if cpu:
            parts += ["", "CPU milliseconds per request while each row ran (bench/cpu.py). "
                      "\"server\" is the server's processes (the verifier: its own process), "
                      "\"÷ primitive\" that cost over the CPU cost of the row's primitive "
                      "operation; PostgreSQL is the server's own connections; Redis and "
                      "\"other\" (everyone else on the machine) are machine-wide:", "", cpu]
        if self.notes:
            parts += ["", *[f"- {note}" for note in self.notes]]
        return "\n".join(parts) + "\n"
