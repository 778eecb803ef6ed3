"""The bench's own bookkeeping (bench/report.py, bench/cpu.py): parsing wrk's result line,
marking rows invalid, judging targets, rendering. No server, no wrk."""

import inspect
import runpy
import time

import pytest
from gunicorn.config import KNOWN_SETTINGS
from joserfc import jwt
from joserfc.jwk import RSAKey

from bench.anatomy import statement
from bench.cpu import _TICK, CpuUse, _delta
from bench.report import (ARGON2_ALL, REFERENCE_PATH, RSA_SIGN_ALL, RSA_VERIFY_ONE,
                          Measurement, Report, Skipped, WrkResult, parse_wrk, verdict)
from bench.servers import ROOT, Server, parse_server
from bench.wrk import Request
from tests.helpers import access_token_issuer, jwt_parts

# what wrk 4.1 printed for a refresh row, with bench/lua/common.lua's done() line
CAPTURED = """\
Running 4s test @ http://127.0.0.1:58489/oauth/token
  2 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   131.31ms  101.75ms 441.28ms   56.93%
    Req/Sec   124.38     74.69   300.00     63.75%
  Latency Distribution
     50%  114.06ms
     75%  222.33ms
     90%  271.17ms
     99%  359.98ms
  997 requests in 4.04s, 1.49MB read
Requests/sec:    246.59
Transfer/sec:    377.10KB
BENCH_RESULT requests=997 duration_us=4043228 p50_us=114057 p90_us=271168 p99_us=359985 \
max_us=441278 connect=0 read=0 write=0 timeout=0 status=0 bad=0 starved=0
"""

CEILINGS = {RSA_SIGN_ALL: 2000.0, RSA_VERIFY_ONE: 40000.0, ARGON2_ALL: 100.0}


def test_parses_the_result_line():
    result = parse_wrk(CAPTURED)
    assert result.requests == 997
    assert result.rate == pytest.approx(246.59, abs=0.01)
    assert (result.p50_us, result.p99_us) == (114057, 359985)
    assert result.errors == 0


def test_without_the_result_line_parsing_fails():
    with pytest.raises(ValueError, match="BENCH_RESULT"):
        parse_wrk(CAPTURED.split("BENCH_RESULT")[0])


def test_errors_add_socket_errors_non_2xx_and_starved_requests():
    result = WrkResult(requests=100, duration_us=1_000_000, p50_us=1, p90_us=1, p99_us=1,
                       max_us=1, connect=1, read=2, timeout=1, status=3, bad=5, starved=2)
    # bad (the scripts' count) includes wrk's status count, so the larger one is used
    assert result.non_2xx == 5
    assert result.errors == 1 + 2 + 1 + 5 + 2


def test_a_run_whose_only_failures_are_refusals_counts_them_once_and_is_invalid():
    result = WrkResult(requests=100, duration_us=1_000_000, p50_us=1, p90_us=1, p99_us=1,
                       max_us=1, connect=0, read=0, timeout=0, status=3, bad=3, starved=0)
    measurement = Measurement.from_wrk("refresh", "gunicorn", result)
    assert (measurement.errors, measurement.non_2xx) == (3, 3)
    assert not measurement.valid and verdict(measurement, CEILINGS) == "INVALID"


def _row(row="refresh", rate=1500.0, p99=20.0, errors=0, non_2xx=0, requests=1000):
    return Measurement(row=row, server="gunicorn", rate=rate, p50_ms=5.0, p99_ms=p99,
                       errors=errors, non_2xx=non_2xx, requests=requests)


@pytest.mark.parametrize("measurement, expected", [
    (_row(), "pass"),
    (_row(rate=900), "FAIL (ratio)"),  # 45% of a 2,000/s sign ceiling
    (_row(p99=50.0), "FAIL (p99)"),  # p99 must stay below 50 ms
    (_row(rate=900, p99=80), "FAIL (ratio, p99)"),
    (_row(errors=1, non_2xx=1), "INVALID"),  # fast, but one answer was refused
    (_row(errors=3), "INVALID"),  # socket errors alone
    (_row(non_2xx=1), "INVALID"),  # a refused answer, however the errors were counted
    (_row(requests=0), "INVALID"),
    (_row("jwks", rate=5200), "pass"),
    (_row("jwks", rate=4999), "FAIL (rate)"),
    (_row("password", rate=91), "pass"),
    (_row("password", rate=89), "FAIL (ratio)"),
    (_row("verifier", rate=19000), "FAIL (ratio)"),
    (_row("introspect_api_key", rate=1), "-"),  # no target: measured, not judged
    (_row("reference_sign", rate=1), "-"),  # not ours: context for the signing rows
])
def test_verdicts(measurement, expected):
    assert verdict(measurement, CEILINGS) == expected


def test_a_row_that_left_the_machine_idle_says_so():
    idle = Measurement(row="jwks", server="gunicorn", rate=2700.0, p50_ms=5.0, p99_ms=9.0,
                       errors=0, non_2xx=0, requests=1000, busy=0.63)
    assert verdict(idle, CEILINGS) == "FAIL (rate); machine 63% busy"
    assert verdict(Measurement(**{**idle.__dict__, "busy": 0.97}), CEILINGS) == "FAIL (rate)"
    # only a failure is explained: an idle machine is not why a row passed or was invalid
    assert verdict(Measurement(**{**idle.__dict__, "rate": 6000.0}), CEILINGS) == "pass"


def test_a_row_without_its_ceiling_fails_its_ratio_target():
    assert verdict(_row(), {}) == "FAIL (ratio)"


def test_table_shows_ratio_invalid_and_skipped_rows():
    report = Report(machine="test machine", command="python -m bench.run", started="now",
                    ceilings=CEILINGS, costs={RSA_SIGN_ALL: 0.25})
    report.measurements += [
        Measurement.from_wrk("refresh", "gunicorn", parse_wrk(CAPTURED), cpu=CpuUse(
            wall=4.0, cores=2, server=3.99, wrk=0.1, postgres=0.2, redis=0.1, other=3.5,
            steal=0.0)),
        _row("jwks", rate=9000, errors=2, non_2xx=2),
    ]
    report.skipped.append(Skipped("client_credentials", "not on this branch"))
    text = report.markdown()
    lines = {line.split(" | ")[0]: line for line in text.splitlines() if line.startswith("| ")}
    refresh = lines["| refresh grant `POST /oauth/token`"]
    assert "| 247 |" in refresh and "| 12% |" in refresh and "FAIL (ratio, p99)" in refresh
    assert "INVALID" in lines["| JWKS `GET /.well-known/jwks.json`"]
    assert "skipped: not on this branch" in lines["| client_credentials `POST /oauth/token`"]
    # 3.99 CPU seconds over 997 requests is 4.00 ms, 16 signatures' worth
    assert "| refresh grant | gunicorn | 4.00 | 16.0× sign |" in text


def test_cpu_deltas_count_new_processes_whole_and_ended_ones_not_at_all():
    start = {1: 100, 2: 50}
    end = {1: 300, 3: 40}  # 2 ended, 3 started during the run
    assert _delta(end, start) == (200 + 40) / _TICK


def test_server_names():
    assert parse_server("gunicorn-sync").worker_class == "sync"
    assert parse_server("gunicorn-gthread8").threads == 8
    assert parse_server("granian-t2").kind == "granian"
    assert parse_server("gunicorn-reuseport").reuse_port
    assert not parse_server("gunicorn").reuse_port
    with pytest.raises(ValueError):
        parse_server("uwsgi")


def test_statements_are_named_by_verb_and_table():
    assert statement('SELECT users.id, users.username \nFROM users WHERE users.id = %(pk)s') \
        == "SELECT users"
    assert statement("INSERT INTO audit_events (actor) VALUES (%(actor)s)") \
        == "INSERT audit_events"
    assert statement('UPDATE "api_keys" SET last_used_at=%(x)s') == "UPDATE api_keys"
    assert statement("select 1") == "SELECT"
    # a subquery's table is not the statement's
    assert statement("SELECT users.id, (SELECT revocations.revoked_at FROM revocations WHERE "
                     "revocations.subject = users.id) AS revoked_before FROM users LEFT OUTER "
                     "JOIN memberships ON memberships.user_id = users.id") == "SELECT users"
    # nor a function's parentheses; a subquery in FROM is named as one
    assert statement("SELECT count(*) AS n FROM (SELECT users.id FROM users) AS anon_1") \
        == "SELECT subquery"


def test_the_refresh_script_sends_its_tokens_as_refresh_grants(tmp_path):
    data = tmp_path / "tokens.txt"
    data.write_text("family.secret\nother.secret\n")
    request = Request("/oauth/token", "refresh.lua", "POST", data=data)
    assert request.bodies() == ["grant_type=refresh_token&refresh_token=family.secret",
                                "grant_type=refresh_token&refresh_token=other.secret"]
    assert Request("/oauth/introspect", "bodies.lua", "POST", data=data).bodies() \
        == ["family.secret", "other.secret"]


def test_the_reference_row_shows_its_share_of_the_sign_ceiling_and_is_not_judged():
    report = Report(machine="m", command="c", started="s", ceilings=CEILINGS)
    report.measurements.append(_row("reference_sign", rate=900))
    line = next(line for line in report.table().splitlines()
                if line.startswith("| reference app `POST /sign`"))
    assert line.endswith("| RSA-2048 sign/s, all cores 2,000 | 45% | - | - |")


def test_the_reference_app_is_served_with_the_service_settings_but_without_its_hooks(tmp_path):
    gunicorn = Server(parse_server("gunicorn"), 8000, 2, {}, tmp_path / "log", reference=True)
    assert gunicorn.argv()[-3:] == ["-c", "bench/reference_gunicorn.conf.py",
                                    "bench.reference_app:app"]
    granian = Server(parse_server("granian"), 8000, 2, {}, tmp_path / "log", reference=True)
    assert granian.argv()[-1] == "bench.reference_app:app"
    assert Server(parse_server("granian"), 8000, 2, {}, tmp_path / "log").argv()[-1] \
        == "wsgi:app"
    known = {setting.name for setting in KNOWN_SETTINGS}
    reference = runpy.run_path(str(ROOT / "bench" / "reference_gunicorn.conf.py"))
    service = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    hooks = {name for name in service if name in known and inspect.isfunction(service[name])}
    assert hooks == {"on_starting", "post_worker_init"}
    # every setting the service's file makes, the same; none of its hooks
    assert {name: reference[name] for name in known & reference.keys()} \
        == {name: service[name] for name in known & service.keys() - hooks}


def test_the_reference_app_signs_one_access_token_of_our_shape_per_post():
    from bench.reference_app import KEY, app

    answer = app.test_client().post(REFERENCE_PATH, data="grant_type=client_credentials")
    assert answer.status_code == 200 and answer.json["token_type"] == "Bearer"
    public = RSAKey.import_key(KEY.as_dict(private=False))
    token = jwt.decode(answer.json["access_token"], public, algorithms=["RS256"])
    # the header and the claim names of a client_credentials token of ours
    ours = access_token_issuer(time.time).issue(subject="u1", client_id="c1", scope="",
                                                 roles=[], tenants={})
    our_header, our_claims = jwt_parts(ours.token)
    assert token.header == {**our_header, "kid": KEY.thumbprint()}
    assert token.claims.keys() == our_claims.keys()


def test_round_trips_table_flags_a_failed_request():
    report = Report(machine="m", command="c", started="s", ceilings={})
    report.round_trips = {"refresh": ("SELECT users", "EVALSHA", True, 2.5),
                          "introspect_jwt": ("SELECT oauth_clients", "MGET", False, 1.0)}
    table = report.round_trips_table()
    assert "| refresh grant | 2.50 | SELECT users | EVALSHA |" in table
    assert "| introspection of a JWT (request failed: not representative) |" in table
