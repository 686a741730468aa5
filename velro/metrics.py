"""The counters every process keeps itself (Prometheus, prometheus-client), and the
request-metrics middleware. ``/metrics`` (health/prometheus.py) exports them together
with the gauges it reads from the database.

With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus-client keeps each value in a file of
that folder per process (multiprocess mode) and ``/metrics`` adds up every process's
files: gunicorn's workers, ``run_worker`` and procrastinate's worker on the same host
write into the same folder, so a render counted by the worker is exported by whichever
gunicorn worker answers the scrape. The variable must be set before prometheus-client is
first imported (gunicorn.conf.py and the Makefile do it). Without it each process keeps
its own in-memory values (``runserver``, tests), exported by that process alone.

Labels are bounded on purpose: a view's name (never a path), a known method, a status
code, a catalog model's id, a ledger type, a provider name from a fixed list.

Domain counters are counted when their transaction commits (``count_on_commit``): a
rolled-back generation or refund counts nothing.
"""

from __future__ import annotations

import os
import time

from django.db import transaction

# In multiprocess mode the folder must exist before the first metric below is made: a
# worker or a management command may start before gunicorn has created it.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics  # noqa: E402

# No "_created" series beside every counter and histogram: nothing here reads them, and
# they double what a scrape carries.
disable_created_metrics()

# --- requests ---------------------------------------------------------------------

REQUESTS = Counter(
    "velro_http_requests",
    "HTTP requests answered, by view (the URL pattern's name), method and status code.",
    ["view", "method", "status"],
)
# Few buckets: each observation writes one bucket and the sum (one more file write each
# in multiprocess mode), and make bench watches every microsecond of a request.
REQUEST_SECONDS = Histogram(
    "velro_http_request_duration_seconds",
    "Seconds from the first middleware to the response, by view.",
    ["view"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)

# --- the product ------------------------------------------------------------------

GENERATIONS_CREATED = Counter(
    "velro_generations_created", "Generations asked for (pending, charged), by model.", ["model"]
)
# rate(velro_generations_finished_total{status="completed"}) is the renders per second.
GENERATIONS_FINISHED = Counter(
    "velro_generations_finished",
    "Generations that reached a final status (completed, failed, cancelled), by model.",
    ["model", "status"],
)
GENERATION_REFUNDS = Counter(
    "velro_generation_refunds", "Generations refunded (failed, cancelled, or by staff), by model.", ["model"]
)
CREDITS = Counter(
    "velro_credits",
    "Credits moved through the ledger, by ledger type (usage: spent; refund: refunded; signup_bonus, grant, "
    "purchase: granted; adjustment: either way, counted by its size).",
    ["type"],
)
WEBHOOK_DELIVERIES = Counter(
    "velro_webhook_deliveries",
    "Provider webhook deliveries received, by provider and outcome (applied, refused, replayed, unauthenticated).",
    ["provider", "outcome"],
)
SIGNUPS = Counter("velro_signups", "Identities created through sign-up (the API, /auth/v1 and its admin API).")
SIGNINS = Counter("velro_signins", "Sessions started, by how the person signed in.", ["method"])

# --- live status ------------------------------------------------------------------

# livesum: the sum over the events processes that are running (a process that exits
# cleanly has ended its streams first; one killed leaves its last value until the folder
# is emptied, when gunicorn or `make run` starts).
EVENT_STREAMS = Gauge(
    "velro_event_streams",
    "Live-status streams (GET generations/events) open in the events processes.",
    multiprocess_mode="livesum",
)
EVENT_STREAMS_CLOSED = Counter(
    "velro_event_streams_closed",
    "Live-status streams the server ended, by reason (token_expired, signed_out, server_shutdown); a client "
    "going away is not counted.",
    ["reason"],
)

# Webhook providers named in a label; anything else in the URL is "other".
KNOWN_PROVIDERS = frozenset({"local", "fal"})
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def count_on_commit(counter, amount: float = 1) -> None:
    """``counter.inc(amount)`` once the current transaction commits (at once outside
    one): what a rolled-back transaction did is never counted."""
    if amount:
        transaction.on_commit(lambda: counter.inc(amount))


def provider_label(provider: str) -> str:
    return provider if provider in KNOWN_PROVIDERS else "other"


class RequestMetricsMiddleware:
    """One counter increment and one histogram observation per request, labelled by the
    resolved view's name (``none`` when no URL matched), the method and the status.

    The labelled children are kept per (view, method, status): ``labels()`` takes a lock
    and builds a tuple on every call, the dictionary lookup does not. The key space is
    bounded (views × methods × status codes), so the dictionary is too. It sits early in
    MIDDLEWARE (after the static files), so its time includes the rest. A streamed
    response is timed until the view returned it, not until its last byte."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._children: dict[tuple[str, str, int], tuple] = {}

    def __call__(self, request):
        started = time.perf_counter()
        response = self.get_response(request)
        elapsed = time.perf_counter() - started
        match = request.resolver_match
        method = request.method if request.method in KNOWN_METHODS else "other"
        key = (match.view_name if match is not None else "none", method, response.status_code)
        children = self._children.get(key)
        if children is None:
            children = (REQUESTS.labels(key[0], method, str(key[2])), REQUEST_SECONDS.labels(key[0]))
            self._children[key] = children
        children[0].inc()
        children[1].observe(elapsed)
        return response
