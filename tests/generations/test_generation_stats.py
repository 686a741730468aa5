"""The per-person generation counts (generation_stats, generations 0015): kept right by
triggers through every way a generation changes, read by its owner alone, served by
``GET generations/stats``, and checked by ``dbhealth``.

Every test in the suite also ends with the drift check over everyone (tests/conftest.py),
so any code path that moved a generation without moving its counts fails there."""

import pytest
from django.db import DatabaseError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from generations import services
from generations.models import Generation, GenerationStat
from generations.selectors import generation_stats_drift
from health.base import Level
from health.services import health_report
from projects.models import Project
from tests.conftest import as_role
from tests.generations.conftest import FLUX, make

SCHNELL = "fal-ai/flux/schnell"  # 10 credits


def kept(user) -> dict:
    """The user's non-zero counts as {(status, model): (count, credits)}."""
    rows = GenerationStat.objects.filter(user=user).exclude(count=0, credits_charged=0)
    return {(row.status, row.ai_model_id): (row.count, row.credits_charged) for row in rows}


def test_creating_counts_each_generation_with_its_charge(alice, bob):
    make(alice), make(alice), make(alice, SCHNELL), make(bob)

    assert kept(alice) == {("pending", FLUX): (2, 50), ("pending", SCHNELL): (1, 10)}
    assert kept(bob) == {("pending", FLUX): (1, 25)}


def test_the_lifecycle_moves_the_counts_between_statuses(alice):
    done, failed, cancelled = make(alice), make(alice), make(alice)
    services.generation_cancel(user=alice, generation_id=cancelled.pk)
    claimed = [services.generation_claim_next(), services.generation_claim_next()]
    assert {g.pk for g in claimed} == {done.pk, failed.pk}
    services.generation_complete(generation=done, outputs=[])
    services.generation_fail(generation=failed, error="provider said no")

    assert kept(alice) == {
        ("completed", FLUX): (1, 25),
        ("failed", FLUX): (1, 25),
        ("cancelled", FLUX): (1, 25),
    }
    assert generation_stats_drift()[1] == []


def test_an_update_that_changes_no_counted_column_writes_nothing(alice, sql):
    generation = make(alice)
    before = sql("SELECT xmin::text FROM public.generation_stats WHERE user_id = %s", [alice.pk])

    services.generation_set_favorite(generation=generation, is_favorite=True)
    Generation.objects.filter(pk=generation.pk).update(progress={"stage": "queued"}, prompt="another prompt")

    # The row was not rewritten (same xmin), so the favourite and progress paths take no
    # lock on the person's counts.
    assert sql("SELECT xmin::text FROM public.generation_stats WHERE user_id = %s", [alice.pk]) == before
    assert kept(alice) == {("pending", FLUX): (1, 25)}


def test_a_statement_over_many_rows_is_counted_once_per_group(alice, bob, sql):
    """The benchmark loads and a project's cascade write many rows in one statement: the
    statement-level trigger folds them into one upsert per person, status and model."""
    sql(
        """
        INSERT INTO public.generations (user_id, ai_model_id, prompt, status, credits_charged, parameters)
        SELECT CASE WHEN mod(n, 3) = 0 THEN %s::uuid ELSE %s::uuid END,
               CASE WHEN mod(n, 2) = 0 THEN %s ELSE %s END,
               'bulk ' || n,
               CASE WHEN mod(n, 5) = 0 THEN 'failed' ELSE 'completed' END,
               7, '{}'
          FROM generate_series(1, 300) AS n
        """,
        [bob.pk, alice.pk, FLUX, SCHNELL],
    )
    assert sum(count for count, _ in kept(alice).values()) == 200
    assert sum(count for count, _ in kept(bob).values()) == 100
    assert generation_stats_drift()[1] == []

    sql("UPDATE public.generations SET status = 'cancelled', credits_charged = 0 WHERE prompt LIKE 'bulk %%'")
    assert kept(alice) == {("cancelled", FLUX): (100, 0), ("cancelled", SCHNELL): (100, 0)}

    sql("UPDATE public.generations SET ai_model_id = %s, user_id = %s WHERE user_id = %s", [SCHNELL, bob.pk, alice.pk])
    assert kept(alice) == {}
    assert kept(bob) == {("cancelled", FLUX): (50, 0), ("cancelled", SCHNELL): (250, 0)}

    sql("DELETE FROM public.generations WHERE prompt LIKE 'bulk %%' AND ai_model_id = %s", [FLUX])
    assert kept(bob) == {("cancelled", SCHNELL): (250, 0)}
    assert generation_stats_drift()[1] == []


def test_deleting_a_person_takes_their_counts_with_their_generations(alice, bob):
    make(alice), make(bob)

    User.objects.filter(pk=alice.pk).delete()

    assert not GenerationStat.objects.filter(user_id=alice.pk).exists()
    assert not Generation.objects.filter(user_id=alice.pk).exists()
    assert kept(bob) == {("pending", FLUX): (1, 25)}


class Abandoned(Exception):
    pass


def test_a_rolled_back_transaction_leaves_the_counts_as_they_were(alice):
    make(alice)
    with pytest.raises(Abandoned), transaction.atomic():
        make(alice, SCHNELL)
        assert ("pending", SCHNELL) in kept(alice)  # counted inside the transaction …
        raise Abandoned

    assert kept(alice) == {("pending", FLUX): (1, 25)}  # … and not after its rollback


# --- who may read and write them -----------------------------------------------------


def test_people_read_only_their_own_counts(alice, bob):
    make(alice), make(bob, SCHNELL)

    with as_role("authenticated", alice) as cursor:
        cursor.execute("SELECT user_id, status, ai_model_id, count FROM public.generation_stats")
        assert cursor.fetchall() == [(alice.pk, "pending", FLUX, 1)]
    with as_role("authenticated", bob) as cursor:
        cursor.execute("SELECT ai_model_id FROM public.generation_stats")
        assert cursor.fetchall() == [(SCHNELL,)]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE public.generation_stats SET count = count + 100",
        "INSERT INTO public.generation_stats VALUES ('{me}', 'completed', 'fal-ai/flux/dev', 100, 0)",
        "DELETE FROM public.generation_stats",
    ],
)
def test_nobody_but_the_triggers_writes_them(alice, statement):
    make(alice)
    with pytest.raises(DatabaseError, match="permission denied"), as_role("authenticated", alice) as cursor:
        cursor.execute(statement.format(me=alice.pk))
    with pytest.raises(DatabaseError, match="permission denied"), as_role("service_role") as cursor:
        cursor.execute(statement.format(me=alice.pk))

    assert kept(alice) == {("pending", FLUX): (1, 25)}


def test_anon_cannot_read_them(alice):
    make(alice)
    with pytest.raises(DatabaseError, match="permission denied"), as_role("anon") as cursor:
        cursor.execute("SELECT * FROM public.generation_stats")


def test_the_owner_marking_a_favourite_under_rls_keeps_the_counts(alice):
    generation = make(alice)
    with as_role("authenticated", alice) as cursor:
        cursor.execute("UPDATE public.generations SET is_favorite = true WHERE id = %s", [generation.pk])
        assert cursor.rowcount == 1

    assert kept(alice) == {("pending", FLUX): (1, 25)}


# --- the API -------------------------------------------------------------------------


def test_stats_come_from_the_counts_and_only_the_callers(alice, bob, api_as):
    make(alice), make(alice, SCHNELL), make(bob), make(bob)
    project = Project.objects.create(user=alice, name="Moodboard")
    make(alice, project=project)

    body = api_as(alice).get("/api/v1/generations/stats").json()

    assert body == {
        "total": 3,
        "credits_charged": 60,
        "by_status": {"pending": {"count": 3, "credits_charged": 60}},
        "by_model": {FLUX: {"count": 2, "credits_charged": 50}, SCHNELL: {"count": 1, "credits_charged": 10}},
    }


def test_stats_read_the_summary_rows_not_the_generations(alice, api_as):
    for _ in range(3):
        make(alice)
    with CaptureQueriesContext(connection) as captured:
        response = api_as(alice).get("/api/v1/generations/stats")

    assert response.status_code == 200
    reads = [q["sql"] for q in captured.captured_queries if "generation" in q["sql"]]
    assert reads and all('FROM "generation_stats"' in sql for sql in reads), reads


def test_a_status_back_to_zero_is_not_shown(alice, api_as):
    generation = make(alice)
    Generation.objects.filter(pk=generation.pk).delete()

    body = api_as(alice).get("/api/v1/generations/stats").json()

    assert body == {"total": 0, "credits_charged": 0, "by_status": {}, "by_model": {}}
    assert GenerationStat.objects.filter(user=alice, status="pending", count=0).exists()


# --- dbhealth ------------------------------------------------------------------------


@pytest.mark.breaks_ledger
def test_dbhealth_reports_drift_as_an_error_naming_the_person(alice, bob, sql):
    make(alice), make(bob)
    sql("UPDATE public.generation_stats SET count = count + 2 WHERE user_id = %s", [alice.pk])
    sql(
        "INSERT INTO public.generation_stats VALUES (%s, 'completed', %s, 1, 25)",
        [bob.pk, SCHNELL],
    )

    check = health_report().check("generation counts")

    assert check.level == Level.ERROR
    assert check.summary.startswith("the generation counts of 2 of ")
    assert "alice@" in check.summary and "bob@" in check.summary
    by_person = {(row["email"].split("@")[0], row["status"]): row for row in check.details}
    assert by_person["alice", "pending"]["count"] == 1 and by_person["alice", "pending"]["kept_count"] == 3
    assert by_person["bob", "completed"]["count"] == 0 and by_person["bob", "completed"]["kept_count"] == 1


def test_dbhealth_is_ok_when_the_counts_are_right(alice):
    make(alice)

    check = health_report().check("generation counts")

    assert check.level == Level.OK
    assert "match their generations" in check.summary


def test_the_drift_check_samples_people_at_random(alice, bob, staff):
    checked, drift = generation_stats_drift(sample=2)

    assert checked == 2
    assert drift == []
