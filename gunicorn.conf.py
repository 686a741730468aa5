"""gunicorn's configuration: `gunicorn -c gunicorn.conf.py velro.wsgi` (`make serve`, Docker).

Everything comes from the environment (or `.env`, like the settings):

  HOST / PORT                  bind address (0.0.0.0 / 8000; `make serve` uses 127.0.0.1)
  WEB_CONCURRENCY              worker processes (default 2 × cores + 1, at most 12)
  GUNICORN_THREADS             threads per worker (default 1; > 1 uses the gthread worker)
  GUNICORN_TIMEOUT             seconds a silent worker lives before it is killed and restarted (30)
  GUNICORN_GRACEFUL_TIMEOUT    seconds workers get to finish their requests on stop or reload (30)
  GUNICORN_KEEPALIVE           seconds to keep an idle connection open (5; raise behind a load balancer)
  GUNICORN_MAX_REQUESTS        restart a worker after this many requests (1000, 0: never) …
  GUNICORN_MAX_REQUESTS_JITTER … plus up to this many more, so workers don't restart together (100)
  FORWARDED_ALLOW_IPS          proxies trusted for X-Forwarded-* (gunicorn's own variable; 127.0.0.1,::1)
  GUNICORN_CONTROL_SOCKET      path of gunicorn's control socket (default: none)
  LOG_FORMAT / LOG_LEVEL       as in the settings: gunicorn's lines use the same format
  PROMETHEUS_MULTIPROC_DIR     prometheus-client's multiprocess folder (<VELRO_DATA_DIR>/prometheus)

Access lines go to stdout with the response's X-Request-ID, like every other log line.

GET /api/v1/generations/events (Server-Sent Events) is not served here: a sync worker
would be held by each open stream. It has its own process, ``manage.py run_events``
(uvicorn, EVENTS_PORT), to which the reverse proxy routes that path (README, Deploy).
"""

import multiprocessing
import os
import sys
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent
if str(BASE_DIR) not in sys.path:  # the `gunicorn` script's sys.path lacks the project
    sys.path.insert(0, str(BASE_DIR))

from velro import logging as velro_logging  # noqa: E402

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

# Metrics (velro/metrics.py, /metrics): every worker writes its counters into files of one
# folder and whichever worker answers a scrape adds them all up (prometheus-client's
# multiprocess mode); without it a scrape would see one worker's share. Set here, in the
# master, before anything imports prometheus-client (it picks its mode at import), so the
# forked workers inherit it. Workers on this host (run_worker, procrastinate) share the
# folder when they are given the same variable (README, "Operating it: metrics and alerts").
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _data_dir = env.str("VELRO_DATA_DIR", default="") or str(BASE_DIR / ".data")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(Path(_data_dir).resolve() / "prometheus")


def _int(name: str, default: int) -> int:
    """An integer variable; unset or empty means ``default`` (as in the settings)."""
    return env.int(name) if env.str(name, default="") else default


def _default_workers() -> int:
    return min(2 * multiprocessing.cpu_count() + 1, 12)


bind = [f"{env.str('HOST', default='') or '0.0.0.0'}:{_int('PORT', 8000)}"]
workers = _int("WEB_CONCURRENCY", 0) or _default_workers()
threads = _int("GUNICORN_THREADS", 1)
timeout = _int("GUNICORN_TIMEOUT", 30)
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 30)
keepalive = _int("GUNICORN_KEEPALIVE", 5)
max_requests = _int("GUNICORN_MAX_REQUESTS", 1000)
max_requests_jitter = _int("GUNICORN_MAX_REQUESTS_JITTER", 100)

# Proxies whose X-Forwarded-* headers are trusted (gunicorn's variable; empty: its default).
forwarded_allow_ips = env.str("FORWARDED_ALLOW_IPS", default="") or "127.0.0.1,::1"

# Each worker imports the app itself and opens its own database connections: nothing
# (a connection, the embedded server's handle) is shared across fork.
preload_app = False

# The heartbeat file on tmpfs where there is one (Docker's disk can stall fchmod).
if os.path.isdir("/dev/shm"):
    worker_tmp_dir = "/dev/shm"

# gunicorn ≥ 25 opens a control socket by default; only where asked for.
_control_socket = env.str("GUNICORN_CONTROL_SOCKET", default="")
if _control_socket:
    control_socket = _control_socket
else:
    control_socket_disable = True

# Logs: errors and access lines on stdout, formatted like the app's (json or plain) and
# carrying the request id (read back from the X-Request-ID response header).
accesslog = "-"
errorlog = "-"
loglevel = (env.str("LOG_LEVEL", default="") or "INFO").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(f)s" "%(a)s"'
_log_format = env.str("LOG_FORMAT", default="") or ("plain" if env.bool("DEBUG", default=False) else "json")
logconfig_dict = velro_logging.build_config(_log_format, loglevel.upper(), gunicorn=True)

chdir = str(BASE_DIR)
wsgi_app = "velro.wsgi:application"


def post_worker_init(worker):
    """Once the worker has imported the app: move everything allocated so far (Django,
    DRF, the URL conf, the OpenAPI schema's classes …) out of the garbage collector's
    reach. Full collections then scan only what requests allocate, instead of pausing
    on hundreds of thousands of import-time objects (measured by make bench)."""
    import gc

    gc.collect()
    gc.freeze()


def on_starting(server):
    """Before the first worker: an empty metrics folder (prometheus-client's rule). The
    counters restart from zero with the server, which Prometheus' rate() takes as a reset;
    files left by the previous run would otherwise be added up forever."""
    import shutil

    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)


def child_exit(server, worker):
    """A worker that exits (recycled by max_requests, killed by the timeout): its live
    gauges' files go (prometheus-client's rule), and its counters and histograms are
    folded into the folder's archive files, so the totals stay and the folder does not
    grow by two files every recycle (velro/prometheus_files.py)."""
    from prometheus_client import multiprocess

    from velro.prometheus_files import fold_dead_process

    multiprocess.mark_process_dead(worker.pid)
    try:
        fold_dead_process(os.environ["PROMETHEUS_MULTIPROC_DIR"], worker.pid)
    except OSError as exc:  # never let bookkeeping stop the master; the files stay and still count
        server.log.warning("metrics: could not fold worker %s's files: %s", worker.pid, exc)
