"""Read-side queries of generations that are not a view's queryset."""

from django.db import connection

_DRIFT = """
WITH who AS ({people}),
truth AS (
  SELECT g.user_id, g.status, g.ai_model_id, count(*) AS n, coalesce(sum(g.credits_charged), 0) AS credits
    FROM public.generations AS g JOIN who ON who.id = g.user_id
   GROUP BY g.user_id, g.status, g.ai_model_id
),
kept AS (
  SELECT s.user_id, s.status, s.ai_model_id, s.count AS n, s.credits_charged AS credits
    FROM public.generation_stats AS s JOIN who ON who.id = s.user_id
   WHERE s.count <> 0 OR s.credits_charged <> 0
)
SELECT coalesce(t.user_id, k.user_id), u.email, coalesce(t.status, k.status), coalesce(t.ai_model_id, k.ai_model_id),
       coalesce(t.n, 0), coalesce(t.credits, 0), coalesce(k.n, 0), coalesce(k.credits, 0)
  FROM truth AS t
  FULL JOIN kept AS k ON k.user_id = t.user_id AND k.status = t.status AND k.ai_model_id = t.ai_model_id
  LEFT JOIN auth.users AS u ON u.id = coalesce(t.user_id, k.user_id)
 WHERE t.n IS DISTINCT FROM k.n OR t.credits IS DISTINCT FROM k.credits
 ORDER BY 2, 3, 4
"""

_COLUMNS = ("user_id", "email", "status", "ai_model_id", "count", "credits_charged", "kept_count", "kept_credits")


def generation_stats_drift(*, sample: int | None = None) -> tuple[int, list[dict]]:
    """Where ``generation_stats`` (kept by triggers, generations 0015) disagrees with the
    generations themselves: ``(people checked, differences)``, one difference per person,
    status and model, with the true figures and the kept ones.

    ``sample``: check that many people picked at random (each costs one index range scan
    of their generations); None checks everyone (a full grouping: tests, small data).
    """
    people = "SELECT id FROM auth.users" + (" ORDER BY random() LIMIT %(sample)s" if sample is not None else "")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM auth.users")
        everyone = cursor.fetchone()[0]
        checked = everyone if sample is None else min(sample, everyone)
        cursor.execute(_DRIFT.format(people=people), {"sample": sample})
        rows = [dict(zip(_COLUMNS, row, strict=True)) for row in cursor.fetchall()]
    return checked, rows
