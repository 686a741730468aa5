"""Explore search is served by the GIN indexes, not by reading every public stack.

A few thousand public stacks are inserted in one statement (the search trigger fills
their vectors) and the table is analysed. Under RLS the planner cannot use a GIN index
for ``@@`` / ``@>`` (they are not LEAKPROOF), which is why explore runs in the SECURITY
DEFINER function public.style_stacks_explore(); these tests call the real endpoint as a
signed-in person and read PostgreSQL's own per-transaction index scan counters, and show
the function's query plan uses the indexes.
"""

import json

import pytest
from django.db import connection

from tests.helpers import scans

EXPLORE = "/api/v1/style-stacks/explore"
STACKS = 4000
RARE_WORD = "zanzibar"  # in the names of 4 stacks out of thousands
RARE_TAG = "heliograph"  # on 4 stacks


@pytest.fixture
def crowd(alice, sql):
    """``STACKS`` public stacks of alice's with common words and tags, three with the rare
    word and three with the rare tag; plus statistics for the planner."""
    sql(
        """
        INSERT INTO public.style_stacks (user_id, name, description, tags, category, visibility, style,
                                         compatible_models, created_from)
        SELECT %(owner)s,
               CASE WHEN i %% 1000 = 7 THEN 'Sunset over ' || %(word)s ELSE 'Moody street ' || i END,
               'A common description of stack ' || i,
               CASE WHEN i %% 1000 = 11 THEN ARRAY['noir', %(tag)s] ELSE ARRAY['noir', 'tag' || (i %% 40)] END,
               'general', 'public', '{"schema_version": 2}', '{}', 'manual'
        FROM generate_series(1, %(n)s) AS i
        """,
        {"owner": alice.pk, "word": RARE_WORD, "tag": RARE_TAG, "n": STACKS},
    )
    # What (auto)vacuum does in production: move the bulk insert's GIN entries out of the
    # pending list, whose size the planner otherwise charges to every index scan.
    for index in ("style_stacks_search_gin", "style_stacks_tags_gin"):
        sql("SELECT gin_clean_pending_list(%s::regclass)", [f"public.{index}"])
    sql("ANALYZE public.style_stacks")
    assert sql("SELECT count(*) FROM public.style_stacks WHERE search_vector IS NULL") == [(0,)]


def plan_nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from plan_nodes(child)


def index_scans(statement: str, params) -> dict[str, str]:
    """{index name: node type} of ``statement``'s plan as the owner connection, which is
    what the SECURITY DEFINER function runs as."""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (FORMAT JSON) " + statement, params)
        (plan,) = cursor.fetchone()
    if isinstance(plan, str):
        plan = json.loads(plan)
    return {n["Index Name"]: n["Node Type"] for n in plan_nodes(plan[0]["Plan"]) if "Index Name" in n}


@pytest.mark.parametrize(
    ("query", "index"),
    [(f"?q={RARE_WORD}", "style_stacks_search_gin"), (f"?tags={RARE_TAG}", "style_stacks_tags_gin")],
)
def test_explore_through_the_api_scans_the_gin_index(crowd, bob, api_as, query, index):
    before = scans(index)
    response = api_as(bob).get(EXPLORE + query)
    assert response.status_code == 200, response.content
    assert response.json()["count"] == 4
    assert scans(index) > before


def test_the_search_plan_is_a_bitmap_index_scan(crowd):
    statement = (
        "SELECT s.id FROM public.style_stacks AS s WHERE s.visibility = 'public' "
        "AND s.search_vector @@ pg_catalog.websearch_to_tsquery('english', %s)"
    )
    assert index_scans(statement, [RARE_WORD]).get("style_stacks_search_gin") == "Bitmap Index Scan"
    statement = (
        "SELECT s.id FROM public.style_stacks AS s WHERE s.visibility = 'public' AND s.tags @> %s::character varying[]"
    )
    assert index_scans(statement, [[RARE_TAG]]).get("style_stacks_tags_gin") == "Bitmap Index Scan"


def test_a_plain_explore_lists_the_public_crowd_without_the_text_index(crowd, bob, api_as):
    before = scans("style_stacks_search_gin")
    body = api_as(bob).get(EXPLORE + "?page_size=5&sort=newest").json()
    assert body["count"] == STACKS
    assert len(body["results"]) == 5
    assert scans("style_stacks_search_gin") == before
