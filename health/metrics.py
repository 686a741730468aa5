"""The gauges ``/metrics`` reads from the database, cached per process.

Counters that code paths increment live in velro/metrics.py; what only the database
knows (what exists now, how old, who is alive) is read here at scrape time by
:class:`DatabaseCollector`. Every query is cheap at a million generations: an index or
a small table per figure, never a scan of generations or credit_transactions
(tests/metrics/test_metrics_queries.py checks the plans):

- generations by status and model: ``generation_stats`` (kept by triggers; a handful of
  rows per person), not the generations;
- the oldest pending generation: min(created_at) on the partial index
  ``generations_pending_idx`` (the worker's queue);
- worker heartbeats: ``worker_heartbeats`` (one row per generation worker) and
  procrastinate's own ``procrastinate_workers``;
- database connections: ``pg_stat_activity`` of this database, by state;
- the last verified backup: ``health.backups.last_verified_at()``, the first entry of the
  partial index ``backup_runs_verified_idx``;
- the slow ones, cached METRICS_SLOW_CACHE_SECONDS: media bytes stored (the sum of the
  per-person ``storage_bytes``, one row per person) and the credit invariant for a random
  sample of people (two index range scans each, as dbhealth's generation-count sample).

The SQL lives here, as dbhealth's does in health/checks.py: it is the metric itself,
reading what the migrations built. It runs as the connection's owner role, outside any
transaction (the view is not atomic). A burst of scrapes within METRICS_CACHE_SECONDS runs
it once per process; an unreachable database is ``velro_database_up 0``, remembered for
the same time, and the other database gauges are then absent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import DatabaseError, connection
from prometheus_client.core import GaugeMetricFamily

from credits.selectors import credits_invariant_sample
from health.backups import last_verified_at

logger = logging.getLogger(__name__)

# People whose balances the ledger-invariant gauge checks per slow refresh.
LEDGER_SAMPLE = 200

_GENERATIONS = """
SELECT status, ai_model_id, sum(count) FROM public.generation_stats GROUP BY status, ai_model_id
"""
# min() on the partial index generations_pending_idx: its first entry, nothing else.
_OLDEST_PENDING = """
SELECT extract(epoch FROM now() - min(created_at)) FROM public.generations WHERE status = 'pending'
"""
_WORKERS = """
SELECT worker, extract(epoch FROM seen_at), extract(epoch FROM last_claim_at), claims FROM public.worker_heartbeats
"""
_TASK_WORKERS = "SELECT id, extract(epoch FROM last_heartbeat) FROM public.procrastinate_workers"
_CONNECTIONS = """
SELECT coalesce(state, 'other'), count(*) FROM pg_catalog.pg_stat_activity
 WHERE datname = current_database() GROUP BY 1
"""
_MAX_CONNECTIONS = "SELECT current_setting('max_connections')::int"
_MEDIA_BYTES = "SELECT coalesce(sum(storage_bytes), 0) FROM public.users"


class _Cache:
    """``compute()``'s result, kept for ``seconds()``; one caller computes at a time
    (gunicorn's threads), the others wait for its result instead of querying too."""

    def __init__(self, compute: Callable[[], dict], seconds: Callable[[], float]):
        self.compute, self.seconds = compute, seconds
        self.value: dict | None = None
        self.expires = 0.0
        self.lock = threading.Lock()

    def get(self) -> dict:
        with self.lock:
            now = time.monotonic()
            if self.value is None or now >= self.expires:
                self.value = self.compute()
                seconds = self.seconds()
                if not self.value.get("up", True):  # down: look again as soon as the fast figures do
                    seconds = min(seconds, settings.METRICS_CACHE_SECONDS)
                self.expires = time.monotonic() + seconds
            return self.value

    def clear(self) -> None:
        with self.lock:
            self.value, self.expires = None, 0.0


def _rows(cursor, statement: str) -> list[tuple]:
    cursor.execute(statement)
    return cursor.fetchall()


def _read(into: dict, name: str, cursor, statement: str, shape=list) -> None:
    """One gauge's query; a failure (a missing table on a half-migrated database) drops
    that gauge alone and is logged."""
    try:
        rows = _rows(cursor, statement)
    except DatabaseError:
        logger.warning("metrics: the query for %s failed", name, exc_info=True)
        return
    into[name] = shape(rows)


def database_up() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("metrics: the database is unreachable", exc_info=True)
        # Drop the broken connection now: the next refresh connects again.
        connection.close_if_unusable_or_obsolete()
        return False
    return True


def read_fast() -> dict:
    """The figures refreshed every METRICS_CACHE_SECONDS (one query each)."""
    if not database_up():
        return {"up": False}
    values: dict = {"up": True}
    with connection.cursor() as cursor:
        _read(values, "generations", cursor, _GENERATIONS)
        _read(values, "oldest_pending", cursor, _OLDEST_PENDING, lambda rows: rows[0][0] or 0.0)
        _read(values, "workers", cursor, _WORKERS)
        _read(values, "task_workers", cursor, _TASK_WORKERS)
        _read(values, "connections", cursor, _CONNECTIONS)
        _read(values, "max_connections", cursor, _MAX_CONNECTIONS, lambda rows: rows[0][0])
    # The last verified backup (one entry of a partial index); none yet leaves the key
    # out, so the gauge is absent and VelroBackupMissing can fire.
    try:
        verified = last_verified_at()
    except DatabaseError:
        logger.warning("metrics: the query for the last verified backup failed", exc_info=True)
    else:
        if verified is not None:
            values["backup_verified"] = verified.timestamp()
    return values


def read_slow() -> dict:
    """The figures refreshed every METRICS_SLOW_CACHE_SECONDS."""
    if not database_up():
        return {"up": False}
    values: dict = {}
    with connection.cursor() as cursor:
        _read(values, "media_bytes", cursor, _MEDIA_BYTES, lambda rows: rows[0][0])
    try:
        values["ledger"] = credits_invariant_sample(sample=LEDGER_SAMPLE)
    except DatabaseError:
        logger.warning("metrics: the ledger sample failed", exc_info=True)
    return values


FAST = _Cache(read_fast, lambda: settings.METRICS_CACHE_SECONDS)
SLOW = _Cache(read_slow, lambda: settings.METRICS_SLOW_CACHE_SECONDS)


def clear_caches() -> None:
    FAST.clear()
    SLOW.clear()


def _gauge(name: str, documentation: str, labels=(), samples=()) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=list(labels))
    for label_values, value in samples:
        family.add_metric(list(label_values), float(value))
    return family


class DatabaseCollector:
    """A prometheus-client collector: the database's figures as gauges, from the caches."""

    def collect(self):
        fast = FAST.get()
        yield _gauge(
            "velro_database_up", "1 when the database answered the last refresh, else 0.", (), [((), fast["up"])]
        )
        if not fast["up"]:
            return
        slow = SLOW.get()
        if "generations" in fast:
            yield _gauge(
                "velro_generations",
                "Generations that exist now, by status and model (generation_stats).",
                ("status", "model"),
                [((status, model), n) for status, model, n in fast["generations"]],
            )
        if "oldest_pending" in fast:
            yield _gauge(
                "velro_generation_oldest_pending_age_seconds",
                "Seconds the oldest pending generation has waited for a worker (0: none pending).",
                (),
                [((), fast["oldest_pending"])],
            )
        if "workers" in fast:
            workers = fast["workers"]
            yield _gauge(
                "velro_worker_heartbeat_timestamp_seconds",
                "Unix time of each generation worker's last heartbeat (run_worker, every 10 s).",
                ("worker",),
                [((w,), seen) for w, seen, _claim, _n in workers],
            )
            yield _gauge(
                "velro_worker_last_claim_timestamp_seconds",
                "Unix time each generation worker last claimed a generation (absent: none yet).",
                ("worker",),
                [((w,), claim) for w, _seen, claim, _n in workers if claim is not None],
            )
            yield _gauge(
                "velro_worker_claims",
                "Generations each worker has claimed since it started.",
                ("worker",),
                [((w,), n) for w, _seen, _claim, n in workers],
            )
        if "task_workers" in fast:
            yield _gauge(
                "velro_task_worker_heartbeat_timestamp_seconds",
                "Unix time of each procrastinate worker's last heartbeat (procrastinate_workers).",
                ("worker",),
                [((str(w),), seen) for w, seen in fast["task_workers"] if seen is not None],
            )
        if "connections" in fast:
            yield _gauge(
                "velro_database_connections",
                "Connections to this database now, by state (pg_stat_activity).",
                ("state",),
                [((state,), n) for state, n in fast["connections"]],
            )
        if "max_connections" in fast:
            yield _gauge(
                "velro_database_max_connections", "The server's max_connections.", (), [((), fast["max_connections"])]
            )
        if "backup_verified" in fast:
            yield _gauge(
                "velro_backup_last_success_timestamp_seconds",
                "Unix time the newest backup that passed its verification (a restore) finished.",
                (),
                [((), fast["backup_verified"])],
            )
        if "media_bytes" in slow:
            yield _gauge(
                "velro_media_stored_bytes",
                "Bytes of stored files (uploads and outputs) counted on people's profiles.",
                (),
                [((), slow["media_bytes"])],
            )
        if "ledger" in slow:
            violations, checked = slow["ledger"]
            yield _gauge(
                "velro_ledger_invariant_violations",
                "People in the last random sample whose balance disagrees with their ledger (should be 0).",
                (),
                [((), violations)],
            )
            yield _gauge(
                "velro_ledger_invariant_checked", "People checked in the last ledger sample.", (), [((), checked)]
            )
