"""Calling the project's own database functions from services, with their errors
turned into domain errors.

Our functions raise SQLSTATEs of class ``VL`` with the field at fault in HINT:

========  ==========================================  =====================
SQLSTATE  meaning                                     becomes
========  ==========================================  =====================
VL401     no caller (auth.uid() is NULL)              PermissionDenied
VL403     the caller's role does not allow it         PermissionDenied
VL402     the balance does not cover a charge         InsufficientCredits
VL404     the object does not exist for the caller    Http404
VL409     the object is not in a state that allows it Conflict
VL422     invalid input (HINT names the field)        ValidationError
========  ==========================================  =====================
"""

import contextlib
import json

from django.core.exceptions import EmptyResultSet, PermissionDenied, ValidationError
from django.db import DatabaseError, connection, connections, transaction
from django.http import Http404
from psycopg import sql
from psycopg.types.json import Jsonb

from velro.exceptions import Conflict, InsufficientCredits
from velro.rows import fetch_instance


@contextlib.contextmanager
def translating_db_errors():
    """Run the block in a savepoint; raise our SQLSTATEs as domain errors.

    The savepoint keeps the surrounding transaction usable after the error, so the
    caller can go on. Directly in an API request's own transaction (no atomic block of
    the caller's in between) it is skipped: there the error ends the request, the
    exception handler marks the transaction for rollback and nothing runs SQL before it
    (two statements saved on every POST generations; velro.rls.RLSViewMixin.dispatch).
    """
    direct = getattr(connection, "velro_request_depth", None) == len(connection.atomic_blocks)
    try:
        with contextlib.nullcontext() if direct else transaction.atomic():
            yield
    except DatabaseError as exc:
        diag = getattr(exc.__cause__, "diag", None)
        state = getattr(diag, "sqlstate", None) or ""
        if not state.startswith("VL"):
            raise
        message = diag.message_primary or "Invalid request."
        field = diag.message_hint or "non_field_errors"
        if state in ("VL401", "VL403"):
            raise PermissionDenied(message) from exc
        if state == "VL402":
            extra = json.loads(diag.message_detail) if diag.message_detail else {}
            raise InsufficientCredits(message, extra=extra) from exc
        if state == "VL404":
            raise Http404(message) from exc
        if state == "VL409":
            raise Conflict(message) from exc
        raise ValidationError({field: message}) from exc


def _call(name: str, arity: int) -> sql.Composed:
    """``public.<name>(%s, …)`` with ``arity`` placeholders."""
    return sql.SQL("{}({})").format(sql.Identifier("public", name), sql.SQL(", ").join(sql.Placeholder() * arity))


def _params(args) -> list:
    return [Jsonb(arg) if isinstance(arg, dict) else arg for arg in args]


def call_function(name: str, *args, field: str | None = None):
    """``SELECT public.<name>(args…)`` and return the value it returns (or, for a
    function returning a row, that row's ``field``)."""
    call = _call(name, len(args))
    if field is not None:
        call = sql.SQL("({}).{}").format(call, sql.Identifier(field))
    query = sql.SQL("SELECT {}").format(call)
    with translating_db_errors(), connection.cursor() as cursor:
        cursor.execute(query.as_string(), _params(args))
        return cursor.fetchone()[0]


def call_row_function(model, name: str, *args):
    """``SELECT * FROM public.<name>(args…)`` for a function returning one row of
    ``model``'s table: that row as a ``model`` instance, in one statement."""
    query = sql.SQL("SELECT * FROM {}").format(_call(name, len(args)))
    with translating_db_errors():
        return fetch_instance(model, query.as_string(), _params(args))


def planner_row_estimate(queryset) -> int:
    """The rows the planner expects ``queryset`` to return (``EXPLAIN``, nothing run):
    what a changelist of millions shows as its total instead of counting them
    (velro.admin.EstimatedCountPaginator). Its ordering and joins are dropped: they cost
    planning time and do not change the number."""
    query = queryset.order_by().values("pk").query
    try:
        statement, params = query.get_compiler(queryset.db).as_sql()
    except EmptyResultSet:  # e.g. ``pk__in=[]``: Django knows it is empty without asking
        return 0
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(f"EXPLAIN (FORMAT JSON) {statement}", params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return int(plan[0]["Plan"]["Plan Rows"])
