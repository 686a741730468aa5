from datetime import timedelta

from django.db.models import Count, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from billing.models import Order


def revenue_by_day(*, days: int = 30) -> list[dict]:
    """Checkout payments of the last ``days`` days, per day and currency, newest first:
    ``{"day", "currency", "orders", "amount"}`` (amount in minor units, gross: refunds
    are not subtracted). A plan's renewals are invoices, not orders: Stripe's
    dashboard has them."""
    since = timezone.now() - timedelta(days=days)
    rows = (
        Order.objects.filter(paid_at__gte=since)
        .annotate(day=TruncDate("paid_at"))
        .values("day", "currency")
        .annotate(orders=Count("id"), amount=Sum("amount"))
        .order_by("-day", "currency")
    )
    return list(rows)
