"""The admin page "Provider cost" (issue 19): per model, what providers reported against
the credits charged, for generations a provider (fal) held in the last N days. A page of
the admin that is not a model's: generations/admin_urls.py wraps it in
``admin.site.admin_view`` (staff only); it also needs the view permission on generations.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import Avg, Count, Q, Sum
from django.template.response import TemplateResponse
from django.utils import timezone

from generations.models import Generation

PERIODS = (1, 7, 30, 90)
Status = Generation.Status


def provider_cost_rows(*, days: int) -> list[dict]:
    """One row per (provider, model) with provider-held generations since ``days`` ago:
    counts by outcome, credits kept (charged for completed ones: failed and cancelled are
    refunded), fal's reported inference seconds and cost, submit retries."""
    since = timezone.now() - timedelta(days=days)
    completed = Q(status=Status.COMPLETED)
    return list(
        Generation.objects.filter(created_at__gte=since)
        .exclude(provider="")
        .values("provider", "ai_model_id", "ai_model__credits_cost")
        .annotate(
            total=Count("id"),
            completed=Count("id", filter=completed),
            failed=Count("id", filter=Q(status=Status.FAILED)),
            cancelled=Count("id", filter=Q(status=Status.CANCELLED)),
            in_flight=Count("id", filter=Q(status=Status.PROCESSING)),
            credits_kept=Sum("credits_charged", filter=completed, default=0),
            inference_seconds=Sum("provider_inference_seconds", default=0.0),
            average_inference_seconds=Avg("provider_inference_seconds"),
            provider_cost=Sum("provider_cost"),
            retried=Count("id", filter=Q(attempts__gt=1)),
        )
        .order_by("provider", "ai_model_id")
    )


def provider_cost_view(request):
    if not request.user.has_perm("generations.view_generation"):
        raise PermissionDenied
    try:
        days = int(request.GET.get("days", 30))
    except ValueError:
        days = 30
    days = days if days in PERIODS else 30
    rows = provider_cost_rows(days=days)
    context = {
        **admin.site.each_context(request),
        "title": "Provider cost",
        "rows": rows,
        "days": days,
        "periods": PERIODS,
        "totals": {
            name: sum((row[name] or 0) for row in rows)
            for name in ("total", "completed", "failed", "cancelled", "in_flight", "credits_kept", "retried")
        },
    }
    return TemplateResponse(request, "admin/generations/provider_cost.html", context)
