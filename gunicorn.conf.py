"""gunicorn settings: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Every value can be overridden on the command line or with GUNICORN_CMD_ARGS.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
# one process per core does the CPU work (RSA signatures, argon2); threads cover waits
# on PostgreSQL and Redis. See docs/benchmarks.md for how this was chosen.
workers = int(os.environ.get("WEB_CONCURRENCY", multiprocessing.cpu_count()))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
keepalive = 5
# GUNICORN_REUSE_PORT=1: each worker listens on a socket of its own (SO_REUSEPORT) and the
# kernel (Linux) assigns each new connection to one of them by a hash of its addresses.
# Without it, a keep-alive connection stays with whichever worker accepted it first, and a
# proxy's few long-lived connections can end up on one worker while the other idles
# (docs/benchmarks.md, "gunicorn's connection lottery"). Off by default: a second server
# started on the same port by mistake (with it too, as the same user) shares the traffic
# instead of failing with "address in use"; a worker that exits resets the connections still
# queued on its socket; and the master holds no socket, so USR2 upgrades and systemd socket
# activation do not work (README).
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "0") == "1"
timeout = 30
graceful_timeout = 20
# gunicorn 25.1 and later open a management socket by default ($XDG_RUNTIME_DIR/gunicorn.ctl
# or ~/.gunicorn/gunicorn.ctl: change the worker count, reload, shut down), one path for every
# instance on the host. Nothing of ours uses it: off, as one control surface less
control_socket_disable = True
# our own JSON request log replaces gunicorn's access log
accesslog = None
errorlog = "-"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def on_starting(server):
    # the environment as the app reads it (app/config.py: REDIS_URL unset or empty is
    # memory://), imported here and not above: the bench's reference server reads this
    # file's settings without its hooks, and without the app
    from app.config import ConfigError, embedded_store_refusal, load_config, uses_embedded_store
    from app.logging import keep_query_strings_out

    # gunicorn logs a malformed or failed request line whole, query string (a code) and all
    keep_query_strings_out("gunicorn.error")

    try:
        config = load_config()
    except ConfigError as error:
        raise SystemExit(str(error)) from None
    refusal = embedded_store_refusal(config)
    if refusal:
        raise SystemExit(refusal)
    if uses_embedded_store(config) and server.cfg.workers > 1:
        raise SystemExit(
            "REDIS_URL=memory:// (the default when REDIS_URL is unset or empty) keeps state "
            "inside one process and cannot serve "
            f"{server.cfg.workers} workers: set REDIS_URL=redis://... or run one worker "
            "(WEB_CONCURRENCY=1)."
        )


def post_worker_init(worker):
    from app.bootstrap import bootstrap

    bootstrap(worker.wsgi)
