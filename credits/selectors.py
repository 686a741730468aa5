from django.db.models import F, IntegerField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce

from accounts.models import Profile
from credits.models import CreditTransaction


def credits_invariant_violations() -> list[dict]:
    """People whose balance disagrees with their ledger: balance != sum(amount), or the
    newest row's balance_after != balance. Empty when the books are right."""
    ledger = CreditTransaction.objects.filter(user_id=OuterRef("pk"))
    rows = (
        Profile.objects.annotate(
            ledger_sum=Coalesce(
                Subquery(ledger.order_by().values("user_id").annotate(s=Sum("amount")).values("s")[:1]),
                Value(0),
                output_field=IntegerField(),
            ),
            latest_balance_after=Subquery(ledger.order_by("-created_at", "-id").values("balance_after")[:1]),
        )
        .filter(
            ~Q(ledger_sum=F("credits_balance"))
            | ~Q(latest_balance_after=F("credits_balance"))
            | Q(latest_balance_after__isnull=True, credits_balance__gt=0)
        )
        .values("user_id", "email", "credits_balance", "ledger_sum", "latest_balance_after")
    )
    return list(rows)
