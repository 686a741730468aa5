"""The admin index's dashboard (health/dashboard.py): 30 UTC days of sign-ups,
generations by status, failures by model and credits, and the queue now — zero-filled,
from indexed range scans, cached for a minute, shown to staff who may view the models."""

import re
from datetime import UTC, datetime, time, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from credits.models import CreditTransaction
from generations.models import Generation
from health import dashboard
from tests.factories import UserFactory

FLUX = "fal-ai/flux/dev"
VEO = "fal-ai/veo3"


@pytest.fixture(autouse=True)
def _fresh_cache(db):
    cache.clear()


def today() -> datetime.date:
    return timezone.now().astimezone(UTC).date()


def noon(days_ago: int) -> datetime:
    """Noon of that UTC day; for today, its first second (noon may be still to come)."""
    return datetime.combine(today() - timedelta(days=days_ago), time(12) if days_ago else time(0, 0, 1), tzinfo=UTC)


def by_day(rows) -> dict:
    return {(today() - row["day"]).days: row for row in rows}


def signed_up(days_ago: int, email: str) -> User:
    user = UserFactory(email=email)
    User.objects.filter(pk=user.pk).update(created_at=noon(days_ago))
    return user


def generation(user, *, status, days_ago, model=FLUX, **extra):
    return Generation.objects.create(
        user=user, ai_model_id=model, prompt="a fox", status=status, created_at=noon(days_ago), **extra
    )


def test_sign_ups_per_day_are_counted_per_utc_day_and_zero_filled(staff):
    signed_up(3, "three-a@example.com")
    signed_up(3, "three-b@example.com")
    signed_up(29, "first-day@example.com")
    signed_up(30, "too-old@example.com")
    rows = dashboard.signups_per_day()
    assert len(rows) == 30
    assert rows[0]["day"] == today() - timedelta(days=29) and rows[-1]["day"] == today()
    counts = {days_ago: row["count"] for days_ago, row in by_day(rows).items()}
    assert counts[3] == 2 and counts[29] == 1
    assert counts[0] == 1  # staff, signed up now
    assert sum(counts.values()) == 4
    assert counts[1] == counts[2] == counts[28] == 0


def test_generations_per_day_by_status_failures_by_model_and_the_queue(alice):
    for _ in range(2):
        generation(alice, status="completed", days_ago=1)
    generation(alice, status="failed", days_ago=1)
    generation(alice, status="failed", days_ago=5, model=VEO)
    generation(alice, status="failed", days_ago=5, model=VEO)
    generation(alice, status="failed", days_ago=40, model=VEO)  # outside the window
    oldest = generation(alice, status="pending", days_ago=0)
    Generation.objects.create(user=alice, ai_model_id=FLUX, prompt="newer", status="pending")
    generation(alice, status="processing", days_ago=0, started_at=timezone.now())

    rows = by_day(dashboard.generations_per_day())
    assert len(rows) == 30
    assert rows[1] | {"day": None} == {
        "day": None,
        "total": 3,
        "pending": 0,
        "processing": 0,
        "completed": 2,
        "failed": 1,
        "cancelled": 0,
    }
    assert (rows[5]["failed"], rows[5]["total"]) == (2, 2)
    assert (rows[0]["pending"], rows[0]["processing"], rows[0]["total"]) == (2, 1, 3)
    assert all(rows[n]["total"] == 0 for n in (2, 3, 4, 6, 29))

    assert dashboard.failures_by_model() == [{"model": VEO, "count": 2}, {"model": FLUX, "count": 1}]

    queue = dashboard.queue_now()
    assert (queue["pending"], queue["processing"]) == (2, 1)
    assert queue["oldest_pending_at"] == oldest.created_at


def test_credits_spent_and_granted_per_day_come_from_the_ledger(alice, bob):
    # Back-dated rows that keep the books right: +50 then -50, before the sign-up bonus.
    CreditTransaction.objects.create(user=alice, type="grant", amount=50, balance_after=150, created_at=noon(3))
    CreditTransaction.objects.create(user=alice, type="usage", amount=-50, balance_after=100, created_at=noon(2))
    CreditTransaction.objects.create(user=bob, type="purchase", amount=20, balance_after=20, created_at=noon(10))
    CreditTransaction.objects.create(user=bob, type="usage", amount=-20, balance_after=0, created_at=noon(9))
    rows = by_day(dashboard.credits_per_day())
    assert len(rows) == 30
    assert (rows[3]["granted"], rows[3]["spent"], rows[3]["grant"]) == (50, 0, 50)
    assert (rows[2]["granted"], rows[2]["spent"], rows[2]["usage"]) == (0, 50, -50)
    assert (rows[10]["purchase"], rows[10]["granted"]) == (20, 0)
    assert rows[9]["spent"] == 20
    assert (rows[0]["granted"], rows[0]["signup_bonus"]) == (200, 200)  # alice's and bob's bonus
    assert rows[1] | {"day": None} == {
        "day": None,
        "spent": 0,
        "granted": 0,
        **{kind: 0 for kind in dashboard.CREDIT_TYPES},
    }


def explain(run, without=()) -> list[str]:
    """The plan of each query ``run`` makes, with sequential (and plain index) scans priced out: on a test
    table of a few rows the planner prefers reading the table, whatever indexes exist.
    The b-tree indexes in ``without`` are dropped for this test's transaction (rolled
    back after it): on a few rows of one person the planner takes the (user_id,
    created_at) index for the range, which on millions of rows of many people it won't."""
    with CaptureQueriesContext(connection) as captured:
        run()
    plans = []
    with connection.cursor() as cursor:
        for index in without:
            cursor.execute(f"DROP INDEX public.{index}")
        # Plain index scans priced out too: on a few rows the planner may walk another
        # index in its order (ai_model_id, for failures by model) and filter every row.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_indexscan = off")
        for query in captured.captured_queries:
            cursor.execute(f"EXPLAIN {query['sql']}")
            plans.append("\n".join(row[0] for row in cursor.fetchall()))
        cursor.execute("RESET enable_seqscan")
        cursor.execute("RESET enable_indexscan")
    return plans


@pytest.mark.parametrize(
    ("figure", "indexes"),
    [
        (dashboard.signups_per_day, ["users_created_at_idx"]),
        (dashboard.generations_per_day, ["generations_created_brin"]),
        (dashboard.failures_by_model, ["generations_created_brin"]),
        (dashboard.credits_per_day, ["credit_tx_created_brin"]),
        # Two partial indexes cover processing rows (the worker's poll schedule's too).
        (dashboard.queue_now, ["generations_pending_idx", "(?:generations_processing_idx|generations_due_idx)"]),
    ],
)
def test_each_figure_is_an_index_scan_grouped_in_the_database(alice, figure, indexes):
    # The owner-led b-trees that also hold created_at (after the owner and a filter).
    competing = {
        "generations_created_brin": [
            "generations_user_created_idx",
            "generations_user_status_idx",
            "generations_user_project_idx",
            "generations_user_model_idx",
            "generations_user_favorite_idx",
            # The failed and cancelled rows of all time (the admin's failed list,
            # generations 0020): for failures by model the planner may rightly take it
            # on a few rows; the question here is whether the period's range can be read.
            "generations_admin_ended_idx",
        ],
        "credit_tx_created_brin": ["credit_tx_user_created_idx", "credit_tx_user_type_idx"],
    }
    plans = explain(figure, without={name for i in indexes for name in competing.get(i, [])})
    assert len(plans) == len(indexes)
    for plan, index in zip(plans, indexes, strict=True):
        assert re.search(rf"(Bitmap Index Scan on|Index (Only )?Scan using) {index} ", plan), plan
        if figure is not dashboard.queue_now:
            # A range on created_at (not a read of the whole index), grouped by day in SQL.
            assert re.search(r"Index Cond: \(created_at >= ", plan), plan
            assert "Aggregate" in plan


def test_the_index_shows_the_dashboard_and_keeps_the_app_list(staff, client):
    client.force_login(staff)
    response = client.get("/admin/")
    assert response.status_code == 200
    content = response.content.decode()
    for part in ("velro-dashboard", "dashboard-signups-chart", "dashboard-generations-chart", "dashboard-credits"):
        assert f'id="{part}' in content
    assert 'id="dashboard-failures-none"' in content  # no failures yet: a sentence, not an empty chart
    assert re.search(r'id="dashboard-queue-pending">0<', content)
    assert "UTC" in content
    assert '<title id="dashboard-signups-title">Sign-ups per day</title>' in content
    assert 'role="img" aria-labelledby="dashboard-signups-title dashboard-signups-desc"' in content
    # The app list and health's Operations module are still there.
    assert 'id="operations-module"' in content
    assert "/admin/accounts/user/" in content and "/admin/generations/generation/" in content
    assert "<script" not in content.split('id="velro-dashboard"')[1].split('id="operations-module"')[0]


def test_the_charts_draw_the_seeded_figures(staff, alice, client):
    generation(alice, status="failed", days_ago=2, model=VEO)
    generation(alice, status="completed", days_ago=2)
    client.force_login(staff)
    content = client.get("/admin/").content.decode()
    day = (today() - timedelta(days=2)).isoformat()
    assert f"<title>{day}: 1 failed</title>" in content
    assert f"<title>{day}: 1 completed</title>" in content
    assert f"<title>{VEO}: 1 failed</title>" in content
    signups_table = re.search(r'id="dashboard-signups-table">(.*?)</table>', content, re.S).group(1)
    assert signups_table.count("<tr>") == 31  # the header and 30 days
    assert f"<td>{today().isoformat()}</td><td>2</td>" in signups_table  # staff and alice


def test_a_second_render_reads_the_cache_and_queries_no_dashboard_table(staff, client):
    client.force_login(staff)

    def dashboard_queries() -> list[str]:
        with CaptureQueriesContext(connection) as captured:
            assert client.get("/admin/").status_code == 200
        return [
            q["sql"] for q in captured.captured_queries if "DATE_TRUNC" in q["sql"] or 'FROM "generations"' in q["sql"]
        ]

    assert len(dashboard_queries()) == 6  # four per-day figures, pending and processing
    UserFactory(email="late@example.com")
    assert dashboard_queries() == []
    content = client.get("/admin/").content.decode()
    assert f"<td>{today().isoformat()}</td><td>1</td>" in content  # still the cached count
    cache.clear()
    content = client.get("/admin/").content.decode()
    assert f"<td>{today().isoformat()}</td><td>2</td>" in content


def test_staff_see_only_the_figures_of_models_they_may_view(alice, client):
    helper = UserFactory(email="helper@example.com", is_staff=True, raw_user_meta_data={})
    helper.user_permissions.add(Permission.objects.get(codename="view_generation"))
    client.force_login(helper)
    content = client.get("/admin/").content.decode()
    assert 'id="dashboard-generations"' in content and 'id="dashboard-queue"' in content
    assert 'id="dashboard-signups"' not in content and 'id="dashboard-credits"' not in content

    nobody = UserFactory(email="nobody@example.com", is_staff=True, raw_user_meta_data={})
    client.force_login(nobody)
    response = client.get("/admin/")
    assert response.status_code == 200
    assert 'id="velro-dashboard"' not in response.content.decode()
