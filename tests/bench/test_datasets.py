"""The benchmark data loader (bench/datasets.py) on a tiny spec, against the test
database, through its own psycopg connection as the owner (as ``make bench`` runs it)."""

import os
import subprocess
import sys

import psycopg
import pytest
from django.db import connection
from psycopg import sql

from bench import datasets
from credits.selectors import credits_invariant_violations
from generations.models import AIModel
from stylestacks.models import StyleStack
from stylestacks.schema import validate_document
from tests.helpers import ROOT

SPEC = datasets.DatasetSpec(
    "test", users=13, heavy_users=2, per_heavy=50, generations=200, public_stacks=40, whale=40, ledger=True
)
OWNED = SPEC.heavy_users * SPEC.per_heavy + SPEC.whale  # rows of the people with projects and a ledger
SEARCH_VECTOR = """
    setweight(to_tsvector('english', coalesce(name, '')), 'A')
    || setweight(to_tsvector('english', coalesce(array_to_string(tags, ' '), '')), 'B')
    || setweight(to_tsvector('english', coalesce(description, '')), 'C')
"""


def owner_connection() -> psycopg.Connection:
    """A plain psycopg connection to the test database with Django's parameters."""
    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context"):
        params.pop(django_only, None)
    return psycopg.connect(**params)


def rows(statement, params=None):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def value(statement, params=None):
    return rows(statement, params)[0][0]


def clear_marker(conn):
    name = conn.execute("SELECT current_database()").fetchone()[0]
    conn.execute(sql.SQL("COMMENT ON DATABASE {} IS NULL").format(sql.Identifier(name)))
    conn.commit()


@pytest.fixture
def loaded(transactional_db):
    """Load SPEC once; the transactional test's flush removes it afterwards. A flush also
    removes the seeded catalog, so the test brings two models of its own."""
    AIModel.objects.get_or_create(
        id="test/bench-ds-image",
        defaults={"display_name": "Image", "kind": "image", "credits_cost": 25, "supports_negative_prompt": True},
    )
    AIModel.objects.get_or_create(
        id="test/bench-ds-video", defaults={"display_name": "Video", "kind": "video", "credits_cost": 500}
    )
    lines = []
    with owner_connection() as conn:
        clear_marker(conn)  # a reused test database may carry one
        try:
            loaded_before = datasets.is_loaded(conn, SPEC)
            datasets.load(conn, SPEC, progress=lines.append)
            loaded_after = datasets.is_loaded(conn, SPEC)
            with pytest.raises(RuntimeError, match="already exist"):
                datasets.load(conn, SPEC, progress=lines.append)
            conn.rollback()
        finally:
            clear_marker(conn)
    return {"before": loaded_before, "after": loaded_after, "lines": lines}


def test_marker_and_progress(loaded):
    assert loaded["before"] is False
    assert loaded["after"] is True
    assert any(line.startswith("generations 200/200") for line in loaded["lines"])
    assert any(line.startswith(f"ledger {OWNED}/{OWNED}") for line in loaded["lines"])
    assert any(line.startswith("style stacks 44/44") for line in loaded["lines"])


def test_people_profiles_and_credits(loaded):
    light = datasets.light_user_emails(SPEC, SPEC.users - SPEC.heavy_users - 1)
    emails = datasets.heavy_user_emails(SPEC) + light + [datasets.whale_email(SPEC)]
    assert emails[0] == "bench-heavy-0000@bench.velro.local"
    assert emails[SPEC.heavy_users] == "bench-user-00000@bench.velro.local"
    assert emails[-1] == "bench-whale@bench.velro.local"
    assert sorted(emails) == [r[0] for r in rows("SELECT email FROM auth.users ORDER BY email")]
    assert value("SELECT count(*) FROM public.users") == SPEC.users
    assert value("SELECT count(*) FROM auth.users WHERE encrypted_password NOT LIKE '!%%'") == 0
    # The sign-up trigger gave everyone the bonus through the ledger, dated at the sign-up;
    # the light people have nothing else.
    assert not value(
        "SELECT count(*) FROM public.credit_transactions AS t JOIN auth.users AS u ON u.id = t.user_id"
        " WHERE t.type = 'signup_bonus' AND t.created_at <> u.created_at"
    )
    assert rows("SELECT DISTINCT credits_balance FROM public.users WHERE email = ANY(%s)", [light]) == [(100,)]
    # One ledger row per generation of the heavy people and the whale, the balance their sum.
    ledger = dict(
        rows(
            "SELECT u.email, count(*) FROM public.credit_transactions AS t JOIN auth.users AS u ON u.id = t.user_id"
            " WHERE t.type <> 'signup_bonus' GROUP BY u.email"
        )
    )
    assert ledger == {**{e: SPEC.per_heavy for e in datasets.heavy_user_emails(SPEC)}, emails[-1]: SPEC.whale}
    types = dict(rows("SELECT type, count(*) FROM public.credit_transactions GROUP BY type"))
    assert types["purchase"] > 0 and types["usage"] > 8 * types["purchase"]
    assert not value(
        "SELECT count(*) FROM public.credit_transactions AS t JOIN public.generations AS g ON g.id = t.generation_id"
        " WHERE t.type <> 'usage' OR t.amount <> -g.credits_charged OR g.user_id <> t.user_id"
    )
    assert credits_invariant_violations() == []


def test_generations_shape(loaded):
    per_user = dict(
        rows(
            "SELECT u.email, count(*) FROM public.generations AS g JOIN auth.users AS u ON u.id = g.user_id"
            " GROUP BY u.email"
        )
    )
    assert sum(per_user.values()) == SPEC.generations
    for email in datasets.heavy_user_emails(SPEC):
        assert per_user[email] == SPEC.per_heavy
    assert per_user[datasets.whale_email(SPEC)] == SPEC.whale
    light = datasets.light_user_emails(SPEC, SPEC.users - SPEC.heavy_users - 1)
    assert sorted(per_user[email] for email in light) == [6] * 10  # 60 rows round robin over 10 people
    # created_at: distinct per person, within the last year.
    assert value("SELECT count(DISTINCT (user_id, created_at)) FROM public.generations") == SPEC.generations
    assert value(
        "SELECT bool_and(created_at > now() - interval '366 days' AND created_at <= now()) FROM public.generations"
    )
    # A heavy person's rows are spread over the year, not bunched.
    months = value(
        "SELECT count(DISTINCT date_trunc('month', g.created_at)) FROM public.generations AS g"
        " JOIN auth.users AS u ON u.id = g.user_id WHERE u.email = %s",
        [datasets.heavy_user_emails(SPEC)[0]],
    )
    assert months >= 11
    # Cost of its model, every status present, outputs name the row's own id.
    assert not value(
        "SELECT count(*) FROM public.generations AS g JOIN public.ai_models AS m ON m.id = g.ai_model_id"
        " WHERE g.credits_charged <> m.credits_cost OR NOT m.is_active"
    )
    statuses = dict(rows("SELECT status, count(*) FROM public.generations GROUP BY status"))
    assert set(statuses) == {"completed", "failed", "cancelled", "pending"}
    assert statuses["completed"] > 0.8 * SPEC.generations
    assert not value(
        "SELECT count(*) FROM public.generations WHERE status = 'completed' AND (jsonb_array_length(outputs) <> 1"
        " OR outputs -> 0 ->> 'url' NOT LIKE '/media/generations/' || id::text || '/0.%%'"
        " OR started_at IS NULL OR completed_at <= started_at OR attempts <> 1)"
    )
    assert not value(
        "SELECT count(*) FROM public.generations"
        " WHERE status = 'failed' AND (error_message = '' OR completed_at IS NULL)"
    )
    assert not value(
        "SELECT count(*) FROM public.generations WHERE status IN ('pending', 'cancelled')"
        " AND (outputs <> '[]' OR started_at IS NOT NULL)"
    )
    lengths = rows("SELECT min(length(prompt)), max(length(prompt)) FROM public.generations")[0]
    assert 60 <= lengths[0] and lengths[1] <= 160
    assert value("SELECT count(*) FROM public.generations WHERE (adapted_prompt = '') <> (adaptation = '{}')") == 0
    assert value("SELECT count(*) FROM public.generations WHERE adapted_prompt <> ''") > 0
    assert value("SELECT count(*) FROM public.generations WHERE idempotency_key IS NOT NULL") == 0
    # A year of loaded history is no status event, and the trigger is on again afterwards.
    assert value("SELECT count(*) FROM public.generation_events") == 0
    trigger = "SELECT tgenabled FROM pg_trigger WHERE tgname = 'status_events_insert'"
    assert value(trigger + " AND tgrelid = 'public.generations'::regclass") == "O"


def test_projects_counts_match(loaded):
    owners = SPEC.heavy_users + 1  # and the whale
    # And one empty project for every tenth light person (numbered heavy_users … users − 2).
    light = sum(1 for h in range(SPEC.heavy_users, SPEC.users - 1) if h % 10 == 0)
    assert value("SELECT count(*) FROM public.projects") == owners * datasets.PROJECTS_PER_HEAVY_USER + light
    assert value("SELECT count(*) FROM public.projects WHERE generation_count = 0") >= light
    counts = rows(
        "SELECT p.generation_count, (SELECT count(*) FROM public.generations AS g WHERE g.project_id = p.id)"
        " FROM public.projects AS p"
    )
    assert all(kept == real for kept, real in counts)
    in_projects = sum(real for _, real in counts)
    assert 0.15 * OWNED < in_projects < 0.45 * OWNED
    # Only the heavy people's own projects.
    assert not value(
        "SELECT count(*) FROM public.generations AS g JOIN public.projects AS p ON p.id = g.project_id"
        " WHERE p.user_id <> g.user_id"
    )


def test_style_stacks(loaded):
    visibility = dict(rows("SELECT visibility, count(*) FROM public.style_stacks GROUP BY visibility"))
    assert visibility == {"public": SPEC.public_stacks, "private": 4}
    assert not value(f"SELECT count(*) FROM public.style_stacks WHERE search_vector IS DISTINCT FROM ({SEARCH_VECTOR})")
    assert value("SELECT count(DISTINCT created_at) FROM public.style_stacks") == 44
    # Every person has their devices signed in: the table the access-token check reads.
    assert value("SELECT count(*) FROM auth.sessions") == SPEC.users * datasets.SESSIONS_PER_USER
    assert not value("SELECT count(*) FROM public.style_stacks WHERE version <> 1 OR parent_id IS NOT NULL")
    for document in StyleStack.objects.values_list("style", flat=True):
        validate_document(document)  # raises if invalid
    # Search finds a vocabulary word through the explore function's index condition.
    word = rows("SELECT tags[1] FROM public.style_stacks WHERE visibility = 'public' LIMIT 1")[0][0]
    assert word in datasets.STYLE_WORDS
    assert value("SELECT count(*) FROM public.style_stacks_explore(%s)", [word]) > 0


def test_specs_and_signature():
    assert datasets.signature(datasets.SPECS["1m"]) == (
        "velro-bench v4 1m users=10000 heavy=60x10000 whale=100000 ledger=yes generations=1000000 stacks=100000"
    )
    for spec in datasets.SPECS.values():
        assert spec.heavy_users * spec.per_heavy + spec.whale <= spec.generations
    assert datasets.light_user_emails(SPEC, 2) == [
        "bench-user-00000@bench.velro.local",
        "bench-user-00001@bench.velro.local",
    ]
    with pytest.raises(ValueError):
        datasets.light_user_emails(SPEC, 11)  # 10: the whale is not a light person


def test_importable_without_django():
    env = {key: val for key, val in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    code = "import sys, bench.datasets; assert 'django' not in sys.modules, sorted(sys.modules)"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True)
