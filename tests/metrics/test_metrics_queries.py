"""The database gauges stay cheap at a million generations: no query of /metrics reads
generations or the ledger from end to end. As in tests/velro/test_admin_big_tables.py,
reading a table is priced out (on a test table of a few rows the planner rightly reads
it, whatever indexes exist): what is asked is whether an index can serve each query."""

import pytest
from django.db import connection

from credits.selectors import _SAMPLED_VIOLATIONS
from health import metrics
from tests.generations.conftest import make

BIG_TABLES = ("generations", "credit_transactions")


def plan(statement: str, params=None) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute(f"EXPLAIN {statement}", params)
        found = "\n".join(row[0] for row in cursor.fetchall())
        cursor.execute("RESET enable_seqscan")
    return found


@pytest.fixture
def rows(alice, bob):
    for user in (alice, bob):
        for _ in range(3):
            make(user)


@pytest.mark.parametrize(
    "name",
    ["_GENERATIONS", "_OLDEST_PENDING", "_WORKERS", "_TASK_WORKERS", "_CONNECTIONS", "_MEDIA_BYTES"],
)
def test_no_gauge_reads_a_big_table_from_end_to_end(rows, name):
    found = plan(getattr(metrics, name))
    for table in BIG_TABLES:
        assert f"Seq Scan on {table}" not in found, found


def test_the_oldest_pending_generation_is_the_first_entry_of_the_queue_index(rows):
    found = plan(metrics._OLDEST_PENDING)
    assert "generations_pending_idx" in found, found


def test_generations_by_status_are_read_from_the_kept_counts(rows):
    found = plan(metrics._GENERATIONS)
    assert "generation_stats" in found and " generations " not in found, found


def test_the_ledger_sample_reads_each_persons_rows_by_index(rows):
    found = plan(_SAMPLED_VIOLATIONS, {"sample": 200})
    assert "credit_tx_user_created_idx" in found, found
    assert "Seq Scan on credit_transactions" not in found, found


def test_the_ledger_sample_finds_a_corrupted_balance(alice, bob, sql):
    from credits.selectors import credits_invariant_sample

    assert credits_invariant_sample(sample=200) == (0, 2)
    # A balance changed behind the ledger's back (as dbhealth's own test does) …
    sql("UPDATE public.users SET credits_balance = credits_balance + 1 WHERE id = %s", [alice.pk])
    assert credits_invariant_sample(sample=200) == (1, 2)
    assert credits_invariant_sample(sample=1)[1] == 1  # … and the sample is the size asked for
    sql("UPDATE public.users SET credits_balance = credits_balance - 1 WHERE id = %s", [alice.pk])
