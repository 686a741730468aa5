"""How an API request meets Row Level Security.

Every API request runs in one transaction (``ATOMIC_REQUESTS``). Once DRF has
authenticated the caller, :class:`RLSViewMixin` switches that transaction to the
database role ``authenticated`` (or ``anon``) and publishes the caller's JWT claims in
``request.jwt.claims``, both transaction-local. From then on PostgreSQL filters every row
through the policies, and ``auth.uid()`` is the caller's id.

Why here and not elsewhere:

* Middleware runs before DRF authenticates and outside the view's transaction (a
  ``SET LOCAL`` outside a transaction does nothing).
* An authentication class fails open: ``force_authenticate`` and any view that overrides
  ``authentication_classes`` would skip it.
* ``perform_authentication()`` runs for every request, anonymous ones included, after the
  caller is known and inside the transaction.

The switch is undone at the end of ``dispatch()``: under test savepoints (and anything
else that keeps using the connection inside the same transaction) the role would
otherwise leak into the next request or into the admin. It is not undone in a
``finally``: after a database error the transaction is aborted, any statement fails with
"current transaction is aborted" and would hide the real error, and rolling back undoes
the transaction-local settings anyway.
"""

from __future__ import annotations

import contextlib
import json

from django.conf import settings
from django.db import connection, transaction

ROLE_AUTHENTICATED = "authenticated"
ROLE_ANON = "anon"
ROLE_SERVICE = "service_role"

# set_config(..., true) is SET LOCAL; one round trip sets both. Parameterised: the
# claims come from the caller's token.
_SWITCH = "SELECT set_config('role', %s, true), set_config('request.jwt.claims', %s, true)"
_RESET = "SELECT set_config('role', 'none', true), set_config('request.jwt.claims', '', true)"
_READ = "SELECT current_setting('role'), coalesce(current_setting('request.jwt.claims', true), '')"
# Copied from the access token into the published claims, beside sub/role/email/aud.
TOKEN_CLAIMS = ("exp", "iat", "jti", "session_id")


class RLSNotInTransaction(RuntimeError):
    """Raised instead of running a request as the database owner."""


def user_claims(user) -> dict:
    return {"sub": str(user.pk), "role": ROLE_AUTHENTICATED, "email": user.email, "aud": "authenticated"}


def claims_for(request) -> dict:
    """The claims that ``auth.uid()``, ``auth.role()`` and ``auth.jwt()`` will read.

    The role is decided here from who DRF authenticated, never taken from the token: a
    client cannot talk its way into ``service_role``.
    """
    user = request.user
    if user is None or not user.is_authenticated:
        return {"role": ROLE_ANON}
    if getattr(user, "is_service", False):
        # A signed provider webhook (generations.webhooks): the service side.
        return {"role": ROLE_SERVICE, "service": user.name}
    claims = user_claims(user)
    token = request.auth
    payload = getattr(token, "payload", None)
    if isinstance(payload, dict):
        for key in TOKEN_CLAIMS:
            if key in payload:
                claims[key] = payload[key]
    return claims


def switch(claims: dict) -> None:
    if not connection.in_atomic_block:
        raise RLSNotInTransaction(
            "Refusing to serve an API request outside a transaction: the RLS role switch "
            "would not apply and the request would run as the database owner."
        )
    with connection.cursor() as cursor:
        cursor.execute(_SWITCH, [claims["role"], json.dumps(claims)])
    connection.velro_rls_active = True
    # Whom the transaction now acts for: acting_as() for the same person needs no switch.
    connection.velro_rls_sub = claims.get("sub") if claims["role"] == ROLE_AUTHENTICATED else None


def mark_switched(sub: str) -> None:
    """Record that the transaction already runs as ``sub`` with their claims (switched
    by accounts.authentication in the statement that read the caller's row)."""
    connection.velro_rls_active = True
    connection.velro_rls_sub = sub


def reset(*, commit_follows: bool = False) -> None:
    """Undo :func:`switch`. ``commit_follows``: the caller knows the transaction commits
    right after (the request's own, outermost transaction), which ends the
    transaction-local settings anyway."""
    connection.velro_rls_sub = None
    if not getattr(connection, "velro_rls_active", False):
        return
    if connection.needs_rollback or connection.connection is None:
        # The transaction is doomed; its rollback discards the local settings.
        connection.velro_rls_active = False
        return
    if commit_follows:
        # A persistent connection starts its next use as the owner without this round
        # trip: the commit discards what SET LOCAL set.
        connection.velro_rls_active = False
        return
    with connection.cursor() as cursor:
        cursor.execute(_RESET)
    connection.velro_rls_active = False


class RLSViewMixin:
    """Base of every API view: run the view under the caller's database role."""

    def perform_authentication(self, request):
        super().perform_authentication(request)
        if settings.BENCH_DISABLE_ROLE_SWITCH:  # only ever set by `make bench` (settings)
            return
        user = request.user
        switched = getattr(connection, "velro_rls_sub", None)
        if switched is None or user is None or not user.is_authenticated or switched != str(user.pk):
            switch(claims_for(request))

    def dispatch(self, request, *args, **kwargs):
        # The request's own atomic block (velro.db.translating_db_errors needs no
        # savepoint directly inside it: an error there ends the request).
        depth = connection.velro_request_depth = len(connection.atomic_blocks) if connection.in_atomic_block else None
        try:
            response = super().dispatch(request, *args, **kwargs)
            # Depth 1: the request's own transaction (ATOMIC_REQUESTS) is the outermost,
            # committed as soon as the view returns. Nested (tests, callers in a
            # transaction of their own): reset, or the role would outlive the request.
            reset(commit_follows=depth == 1)
            return response
        finally:
            connection.velro_rls_sub = None  # whatever happened, acting_as() must not trust it
            connection.velro_request_depth = None


@contextlib.contextmanager
def transaction_role(role: str, claims: str):
    """Run the block with ``role`` and ``claims`` (a JSON string, or '' for none) in a
    savepoint, then put back the role and claims the transaction had.

    The one place that switches temporarily: services acting as a person, the health
    report stepping out of the caller's role ("none" is the connection's own role), and
    the tests' ``as_role``. Yields the cursor. If the block fails, rolling back the
    savepoint undoes the switch.
    """
    previous_sub = getattr(connection, "velro_rls_sub", None)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_READ)
        previous_role, previous_claims = cursor.fetchone()
        cursor.execute(_SWITCH, [role, claims])
        connection.velro_rls_sub = None  # not the request's person any more
        try:
            yield cursor
        finally:
            connection.velro_rls_sub = previous_sub
        cursor.execute(_SWITCH, [previous_role, previous_claims])


@contextlib.contextmanager
def acting_as(user):
    """Run the block as ``user`` under RLS, whatever the connection was doing.

    For services the API and the owner side share (the admin, commands and demo data
    create generations through the same database function as the API, which takes the
    caller from auth.uid()). Restores the previous role and claims afterwards.
    """
    if connection.in_atomic_block and getattr(connection, "velro_rls_sub", None) == str(user.pk):
        # An API request of this very person: the transaction already runs as them
        # (saves a savepoint and three statements on every POST generations).
        yield
        return
    with transaction_role(ROLE_AUTHENTICATED, json.dumps(user_claims(user))):
        yield
