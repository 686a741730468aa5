"""Compute the database health report, and the cheap liveness answer for load balancers.

Where the report runs: as the connection's own role (the owner), never under RLS. The
checks read pg_catalog, ``auth.users`` and ``django_migrations`` and count every row of
tables that have RLS; as ``authenticated`` (how an API request runs once the glue has
switched) they would fail with "permission denied" or count only the caller's rows, and
the staff report would show one user and their own ledger. So :func:`health_report`
steps out of whatever role the transaction is in for the report's read-only queries and
puts the caller's role and claims back before returning — the staff API view, the admin
page and the command all get the same numbers. Who may *see* the report is decided
before this runs: ``IsAdminUser`` on the API view, ``admin_view`` on the admin page.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable

from django.db import connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from health.base import Check, Level, Report
from health.checks import CHECKS
from velro.rls import transaction_role

logger = logging.getLogger(__name__)


@contextlib.contextmanager
def owner_role():
    """Run the block as the connection's own role, then restore the role and claims the
    transaction had (``authenticated`` inside an API request, nothing elsewhere)."""
    with transaction_role("none", ""):
        yield


def _run(name: str, function, cursor) -> Check:
    started = time.monotonic()
    try:
        # A savepoint per check: one failing statement must not abort the others.
        with transaction.atomic():
            outcome = function(cursor)
    except Exception as exc:  # a broken check is itself an ERROR, and the rest still run
        logger.exception("database health check %r failed", name)
        summary = f"the check failed: {type(exc).__name__}: {exc}"
        return Check(name, Level.ERROR, summary, [], time.monotonic() - started)
    return Check(name, outcome.level, outcome.summary, outcome.details, time.monotonic() - started)


def health_report(
    *,
    only: Iterable[str] | None = None,
    on_start: Callable[[int, int, str], None] | None = None,
    on_done: Callable[[int, int, Check], None] | None = None,
) -> Report:
    """Run the checks (all, or those named in ``only``) and return the report.

    ``on_start(index, total, name)`` and ``on_done(index, total, check)`` are called
    around each check, for progress output. Never raises for a failing check: that
    check is reported at ERROR with the exception.
    """
    wanted = None if only is None else set(only)
    selected = [(name, function) for name, function in CHECKS if wanted is None or name in wanted]
    if wanted is not None and len(selected) != len(wanted):
        raise ValueError(f"unknown checks: {sorted(wanted - {name for name, _ in selected})}")
    generated_at, started = timezone.now(), time.monotonic()
    checks = []
    with owner_role(), connection.cursor() as cursor:
        for index, (name, function) in enumerate(selected, 1):
            if on_start:
                on_start(index, len(selected), name)
            check = _run(name, function, cursor)
            if on_done:
                on_done(index, len(selected), check)
            checks.append(check)
    return Report(checks=checks, generated_at=generated_at, duration=time.monotonic() - started)


# --- liveness ------------------------------------------------------------------------

# Loading the migration graph reads every migration file: a load balancer calling every
# second gets the answer of the last few seconds instead.
MIGRATIONS_CACHE_SECONDS = 5.0
_migrations_cache: dict[str, object] = {"status": None, "expires": 0.0}


def migrations_pending() -> bool:
    """True when some migration on disk is not applied to the database."""
    executor = MigrationExecutor(connection)
    return bool(executor.migration_plan(executor.loader.graph.leaf_nodes()))


def migrations_status() -> str:
    """Either "ok" or "unapplied", cached for MIGRATIONS_CACHE_SECONDS (a race only recomputes)."""
    now = time.monotonic()
    if _migrations_cache["status"] is None or now >= _migrations_cache["expires"]:
        # django_migrations is the owner's: no API role has a grant on it.
        with owner_role():
            status = "unapplied" if migrations_pending() else "ok"
        _migrations_cache.update(status=status, expires=now + MIGRATIONS_CACHE_SECONDS)
    return _migrations_cache["status"]


def clear_migrations_cache() -> None:
    _migrations_cache.update(status=None, expires=0.0)


def liveness() -> tuple[bool, dict[str, str]]:
    """Is the database reachable and fully migrated? Returns (healthy, body); the body
    names only the parts, never a host, a version or an error message.

    A database error propagates: the caller answers 503 (the transaction is aborted)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    migrations = migrations_status()
    healthy = migrations == "ok"
    return healthy, {"status": "ok" if healthy else "error", "database": "ok", "migrations": migrations}


UNREACHABLE = {"status": "error", "database": "unreachable", "migrations": "unknown"}
