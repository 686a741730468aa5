from django.db import connection
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


_SAMPLED_VIOLATIONS = """
WITH who AS (SELECT id FROM auth.users ORDER BY random() LIMIT %(sample)s)
SELECT count(*) FILTER (WHERE p.credits_balance <> coalesce(l.total, 0)
                           OR p.credits_balance <> coalesce(l.newest, 0)),
       count(*)
  FROM who
  JOIN public.users AS p ON p.id = who.id
  CROSS JOIN LATERAL (
    SELECT (SELECT sum(t.amount) FROM public.credit_transactions AS t WHERE t.user_id = p.id) AS total,
           (SELECT t.balance_after FROM public.credit_transactions AS t WHERE t.user_id = p.id
             ORDER BY t.created_at DESC, t.id DESC LIMIT 1) AS newest
  ) AS l
"""


def credits_invariant_sample(*, sample: int) -> tuple[int, int]:
    """The credit invariant for ``sample`` people picked at random: ``(violations,
    checked)``. Each person costs two range scans of credit_tx_user_created_idx, so the
    cost follows the sample, not the ledger (the metrics' "ledger invariant" gauge; the
    full check is credits_invariant_violations, run by dbhealth)."""
    with connection.cursor() as cursor:
        cursor.execute(_SAMPLED_VIOLATIONS, {"sample": sample})
        violations, checked = cursor.fetchone()
    return violations, checked
