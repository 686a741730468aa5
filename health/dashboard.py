"""The admin index's dashboard: what happened in the last 30 days, and the queue now.

One function per figure, each a single query that the database answers from an index
(a range scan on created_at, grouped by day with date_trunc in the database: the rows
never come to Python): auth.users (users_created_at_idx), generations
(generations_created_brin, and the partial queue indexes) and credit_transactions
(credit_tx_created_brin). Days are UTC days, the last one today; a day without rows is a
zero. ``dashboard_figures`` keeps each figure in Django's cache for a minute, so a busy
admin index costs one cache read, and shows a figure only to staff who may view its model.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from django.core.cache import cache
from django.db.models import Count, Min, Sum
from django.db.models.functions import TruncDay
from django.utils import timezone

from accounts.models import User
from credits.models import CreditTransaction
from generations.models import Generation

DAYS = 30
CACHE_SECONDS = 60
STATUSES = [choice.value for choice in Generation.Status]
# How the ledger's types add up on the credits chart: what people spent (usage), and what
# they were given (the sign-up bonus and staff grants). Purchases, refunds and
# adjustments are shown in the table beside it.
CREDIT_TYPES = [choice.value for choice in CreditTransaction.Type]


def _window(days: int) -> tuple[list[date], datetime]:
    """The ``days`` UTC days ending today, and the instant the first one starts."""
    today = timezone.now().astimezone(UTC).date()
    first = today - timedelta(days=days - 1)
    return [first + timedelta(days=n) for n in range(days)], datetime.combine(first, time.min, tzinfo=UTC)


def _per_day(queryset, days: int, *, by: str | None = None, value=None):
    """Rows of ``queryset`` since the window's start, grouped by UTC day (and ``by``) in
    the database: ``{(day, by-value): value}``."""
    day_list, since = _window(days)
    grouping = ["day", by] if by else ["day"]
    rows = (
        queryset.filter(created_at__gte=since)
        .annotate(day=TruncDay("created_at", tzinfo=UTC))
        .values(*grouping)
        .annotate(value=value or Count("*"))
        .order_by()
    )
    found = {(row["day"].date(), row.get(by)): row["value"] for row in rows}
    return day_list, found


def signups_per_day(*, days: int = DAYS) -> list[dict]:
    """``[{"day", "count"}]``: accounts created per UTC day, oldest day first."""
    day_list, found = _per_day(User.objects.all(), days)
    return [{"day": day, "count": found.get((day, None), 0)} for day in day_list]


def generations_per_day(*, days: int = DAYS) -> list[dict]:
    """``[{"day", "total", <status>: count, …}]``: generations created per UTC day, by
    their status now, oldest day first."""
    day_list, found = _per_day(Generation.objects.all(), days, by="status")
    result = []
    for day in day_list:
        counts = {status: found.get((day, status), 0) for status in STATUSES}
        result.append({"day": day, "total": sum(counts.values()), **counts})
    return result


def failures_by_model(*, days: int = DAYS) -> list[dict]:
    """``[{"model", "count"}]``: failed generations of the window per AI model id, most
    failures first."""
    _, since = _window(days)
    rows = (
        Generation.objects.filter(created_at__gte=since, status=Generation.Status.FAILED)
        .values("ai_model_id")
        .annotate(count=Count("*"))
        .order_by("-count", "ai_model_id")
    )
    return [{"model": row["ai_model_id"], "count": row["count"]} for row in rows]


def credits_per_day(*, days: int = DAYS) -> list[dict]:
    """``[{"day", "spent", "granted", <type>: sum, …}]`` from the ledger, oldest day
    first: ``spent`` is usage as a positive number, ``granted`` the sign-up bonuses and
    staff grants; each type's signed sum is there too."""
    day_list, found = _per_day(CreditTransaction.objects.all(), days, by="type", value=Sum("amount"))
    result = []
    for day in day_list:
        sums = {kind: found.get((day, kind), 0) for kind in CREDIT_TYPES}
        result.append({"day": day, "spent": -sums["usage"], "granted": sums["signup_bonus"] + sums["grant"], **sums})
    return result


def queue_now() -> dict:
    """``{"pending", "processing", "oldest_pending_at"}``: the work queue at this moment
    (the partial indexes generations_pending_idx and generations_processing_idx)."""
    pending = Generation.objects.filter(status=Generation.Status.PENDING).aggregate(
        count=Count("*"), oldest=Min("created_at")
    )
    processing = Generation.objects.filter(status=Generation.Status.PROCESSING).count()
    return {"pending": pending["count"], "processing": processing, "oldest_pending_at": pending["oldest"]}


# name → (function, the permissions any one of which lets a staff member see it)
FIGURES = {
    "signups": (signups_per_day, ("accounts.view_user", "accounts.change_user")),
    "generations": (generations_per_day, ("generations.view_generation", "generations.change_generation")),
    "failures": (failures_by_model, ("generations.view_generation", "generations.change_generation")),
    "credits": (credits_per_day, ("credits.view_credittransaction", "credits.change_credittransaction")),
    "queue": (queue_now, ("generations.view_generation", "generations.change_generation")),
}


def dashboard_figures(user) -> dict:
    """The figures ``user`` may see, by name, each cached for ``CACHE_SECONDS``: one
    cache read for all of them, and a query only for those that had expired."""
    allowed = [name for name, (_, perms) in FIGURES.items() if any(user.has_perm(p) for p in perms)]
    keys = {name: f"velro:dashboard:{name}:{DAYS}" for name in allowed}
    cached = cache.get_many(list(keys.values())) if keys else {}
    figures, fresh = {}, {}
    for name in allowed:
        if keys[name] in cached:
            figures[name] = cached[keys[name]]
        else:
            figures[name] = fresh[keys[name]] = FIGURES[name][0]()
    if fresh:
        cache.set_many(fresh, CACHE_SECONDS)
    return figures
