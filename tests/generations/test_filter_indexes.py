"""A person's filtered lists are served by the indexes that lead with the owner
(generations 0016): the API's own query, run through the API, scans the filter's index,
so a filter with few matches reads only its matches instead of the whole history.

The data has the shape that made filters slow: two people with thousands of generations
each, almost all completed with one model, a rare status, model, project and favourites.
"""

import pytest

from generations.models import AIModel
from projects.models import Project
from tests.helpers import scans

COMMON, RARE = "fal-ai/flux/dev", "fal-ai/flux/schnell"
PER_PERSON = 4000


@pytest.fixture
def history(alice, bob, sql):
    """4,000 generations each. alice's: 1 in 200 failed, with the rare model or a
    favourite (20 of each), and half of them in one big project. bob's: the rare model
    for half of his, so the model is not rare in the table, only in alice's history."""
    project = Project.objects.create(user=alice, name="Big").pk
    assert AIModel.objects.filter(pk__in=[COMMON, RARE]).count() == 2
    for who, rare_every, in_project in ((alice, 200, project), (bob, 2, None)):
        sql(
            """
            INSERT INTO public.generations
              (user_id, ai_model_id, prompt, parameters, status, credits_charged, project_id, is_favorite, created_at)
            SELECT %(user)s, CASE WHEN mod(n, %(rare_every)s) = 1 THEN %(rare)s ELSE %(common)s END, 'p' || n, '{}',
                   CASE WHEN mod(n, 200) = 2 THEN 'failed' ELSE 'completed' END, 25,
                   CASE WHEN mod(n, 2) = 0 THEN %(project)s::uuid END,
                   mod(n, 200) = 4,
                   now() - make_interval(secs => n)
              FROM generate_series(1, %(rows)s) AS n
            """,
            {
                "user": who.pk,
                "rare": RARE,
                "common": COMMON,
                "rare_every": rare_every,
                "project": in_project,
                "rows": PER_PERSON,
            },
        )
    sql("ANALYZE public.generations")
    yield project
    # ANALYZE writes the table's size into pg_class in place, past the test's rollback:
    # leave it as small as the table is, or later tests' planners think it holds 8,000 rows.
    sql("DELETE FROM public.generations WHERE user_id IN (%s, %s)", [alice.pk, bob.pk])
    sql("ANALYZE public.generations")


@pytest.mark.parametrize(
    ("query", "index", "rows"),
    [
        # Few matches: read only them.
        ("status=failed", "generations_user_status_idx", 20),
        (f"ai_model={RARE}", "generations_user_model_idx", 20),
        ("is_favorite=true", "generations_user_favorite_idx", 20),
        # Many matches (2,000): the first page in the index's order, no sort of them all.
        ("project={project}", "generations_user_project_idx", 50),
    ],
)
def test_a_filter_scans_its_owner_index(alice, api_as, history, query, index, rows):
    before = scans(index)

    response = api_as(alice).get("/api/v1/generations?page_size=50&" + query.format(project=history))

    assert response.status_code == 200, response.content
    assert len(response.json()["results"]) == rows
    assert scans(index) > before


def test_a_date_range_uses_the_owner_and_date_index(alice, api_as, history):
    before = scans("generations_user_created_idx")

    response = api_as(alice).get("/api/v1/generations?created_after=2000-01-01T00:00:00Z&page_size=10")

    assert response.status_code == 200
    assert len(response.json()["results"]) == 10
    assert scans("generations_user_created_idx") > before
