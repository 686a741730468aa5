"""The admin's changelists of tables that grow without bound (velro.admin.BigTableAdminMixin):
the estimated total, the search by the shape of the term, and plans on indexes for the
default order, the person's list and each kind of search, with the API's per-person page
still on its own index."""

import re
from datetime import timedelta

import pytest
from django.contrib import admin
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from billing.models import StripeEvent
from credits.services import credits_charge, credits_grant
from generations.models import Generation
from stylestacks.models import StyleStack, StyleStackVersion
from stylestacks.schema import validate_document
from tests.conftest import as_role
from tests.factories import UserFactory
from tests.stylestacks.test_schema import NOIR_V2
from velro import admin as velro_admin
from velro.admin import EstimatedCount, EstimatedCountPaginator

FLUX = "fal-ai/flux/dev"
GENERATIONS = reverse("admin:generations_generation_changelist")
LEDGER = reverse("admin:credits_credittransaction_changelist")


@pytest.fixture
def staff_client(client, staff):
    client.force_login(staff)
    return client


def listed(response) -> list:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def generation(user, prompt="a cat", **fields) -> Generation:
    return Generation.objects.create(user=user, ai_model_id=FLUX, prompt=prompt, **fields)


def plan(sql: str, params=(), *, priced_out=()) -> str:
    """EXPLAIN of one statement, with the scans in ``priced_out`` ("seqscan",
    "indexscan") priced out: on a test table of a few rows the planner rightly reads the
    table, whatever indexes exist, and the question is whether an index can serve the
    query at all."""
    with connection.cursor() as cursor:
        for scan in priced_out:
            cursor.execute(f"SET LOCAL enable_{scan} = off")
        cursor.execute(f"EXPLAIN {sql}", params)
        found = "\n".join(row[0] for row in cursor.fetchall())
        for scan in priced_out:
            cursor.execute(f"RESET enable_{scan}")
    return found


# Reading the table and sorting priced out: is there an index that gives the page in order?
IN_ORDER = ("seqscan", "sort")


def page_plan(response, priced_out=("seqscan",)) -> str:
    """The plan of the changelist's query for a page of 2 rows: a page smaller than the
    table, as in production (the test tables are smaller than the admin's 100 a page)."""
    queryset = response.context["cl"].queryset
    with connection.cursor() as cursor:
        # The table's statistics as it is now: an earlier test's ANALYZE of a bulk load
        # leaves its size in pg_class (written in place, past that test's rollback).
        cursor.execute(f'ANALYZE "{queryset.model._meta.db_table}"')
    statement, params = queryset[:2].query.sql_with_params()
    return plan(statement, params, priced_out=priced_out)


# --- the total ------------------------------------------------------------------------


def test_below_the_threshold_the_total_is_counted(alice, staff_client):
    for _ in range(3):
        generation(alice)
    response = staff_client.get(GENERATIONS)
    assert response.context["cl"].result_count == 3
    assert type(response.context["cl"].result_count) is int


def test_above_the_threshold_the_total_is_the_planners_estimate_shown_as_about(alice, staff_client, monkeypatch, sql):
    monkeypatch.setattr(EstimatedCountPaginator, "exact_up_to", 5)
    monkeypatch.setattr(admin.site.get_model_admin(Generation), "list_per_page", 4)
    Generation.objects.bulk_create([Generation(user=alice, ai_model_id=FLUX, prompt=f"cat {i}") for i in range(9)])
    sql("ANALYZE public.generations")

    with CaptureQueriesContext(connection) as captured:
        response = staff_client.get(GENERATIONS)
    total = response.context["cl"].result_count
    assert isinstance(total, EstimatedCount) and total >= 6  # never below the rows counted
    # The planner's estimate (9, above the threshold) is the total: nothing is counted,
    # and no COUNT ever reads past the threshold.
    counts = [q["sql"] for q in captured if "COUNT(" in q["sql"].upper() and '"generations"' in q["sql"]]
    assert all(re.search(r"LIMIT 6\b", statement) for statement in counts), counts
    assert any(q["sql"].startswith("EXPLAIN (FORMAT JSON)") for q in captured)
    content = response.content.decode()
    assert f"about {int(total):,} generations" in content

    # The page links work, and a page past the real end (the estimate was high) is empty.
    pages = int(response.context["cl"].paginator.num_pages)
    assert len(listed(staff_client.get(GENERATIONS, {"p": 2}))) == 4
    assert staff_client.get(GENERATIONS, {"p": pages}).status_code == 200


# --- search by the shape of the term ----------------------------------------------------


def test_generations_are_searched_by_owner_email_prefix_id_or_prompt_words(alice, bob, staff_client):
    fox = generation(alice, "A red fox in the snow")
    owl = generation(bob, "an owl at dusk, red sky")

    def found(term):
        return {g.pk for g in listed(staff_client.get(GENERATIONS, {"q": term}))}

    assert found("ALICE@") == {fox.pk}  # the beginning of an email, any case
    assert found("bob@example.com") == {owl.pk}
    assert found(str(owl.pk)) == {owl.pk}
    assert found("red") == {fox.pk, owl.pk}
    assert found("re fo") == {fox.pk}  # each word a prefix, all of them
    assert found("snowy") == set()
    assert found("nobody@") == set()
    assert found("(!) &") == set()  # no word at all: nothing, not a tsquery error


def test_the_ledger_is_searched_by_a_generations_id_and_description_words(alice, staff_client):
    credits_grant(user=alice, amount=5, reason="Apology for the outage")
    charged = generation(alice)
    credits_charge(user=alice, amount=2, description="Render", generation=charged)

    def found(term):
        return sorted(row.description for row in listed(staff_client.get(LEDGER, {"q": term})))

    assert found(str(charged.pk)) == ["Render"]
    assert found("apolog") == ["Apology for the outage"]
    assert len(found("alice@")) == 3  # the sign-up bonus too


def test_people_are_searched_by_the_beginning_of_their_email_or_id(alice, bob, staff_client):
    url = reverse("admin:accounts_user_changelist")

    def found(term):
        return {user.email for user in listed(staff_client.get(url, {"q": term}))}

    assert found("ALI") == {"alice@example.com"}
    assert found("bob@example.com") == {"bob@example.com"}
    assert found(str(bob.pk)) == {"bob@example.com"}
    assert found("example.com") == set()  # a beginning, not a part


def test_an_email_prefix_matching_too_many_people_is_cut_with_a_warning(alice, staff_client, monkeypatch):
    monkeypatch.setattr(velro_admin, "MAX_OWNERS", 1)
    UserFactory(email="alice@example.org")
    response = staff_client.get(LEDGER, {"q": "alice@example.com"})  # one person: no warning
    assert not list(get_messages(response.wsgi_request))
    response = staff_client.get(LEDGER, {"q": "alice@"})
    assert len({row.user_id for row in listed(response)}) == 1
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    assert messages == [
        "More than 1 people have an email starting with 'alice@': only 1 of them are searched. "
        "Type more of the address."
    ]


def test_stacks_are_searched_on_their_search_vector_as_word_prefixes(alice, staff_client):
    rain = StyleStack.objects.create(
        user=alice, name="Rainy noir", description="A detective story", style=validate_document(NOIR_V2)
    )
    StyleStack.objects.create(user=alice, name="Sunny beach", style=validate_document(NOIR_V2))
    url = reverse("admin:stylestacks_stylestack_changelist")
    assert [s.pk for s in listed(staff_client.get(url, {"q": "detect"}))] == [rain.pk]
    assert [s.pk for s in listed(staff_client.get(url, {"q": "rain noi"}))] == [rain.pk]


def test_stripe_events_are_searched_by_id_or_words_of_the_detail(staff_client):
    StripeEvent.objects.create(id="evt_1", type="charge.refunded", outcome="applied", detail="took back 50 credits")
    StripeEvent.objects.create(id="evt_2", type="invoice.paid", outcome="ignored", detail="no such order")
    url = reverse("admin:billing_stripeevent_changelist")
    assert [e.pk for e in listed(staff_client.get(url, {"q": "evt_2"}))] == ["evt_2"]
    assert [e.pk for e in listed(staff_client.get(url, {"q": "credit"}))] == ["evt_1"]
    assert [e.pk for e in listed(staff_client.get(url, {"type": "other"}))] == []
    assert [e.pk for e in listed(staff_client.get(url, {"type": "invoice.paid"}))] == ["evt_2"]


# --- plans ------------------------------------------------------------------------------


BIG_CHANGELISTS = [
    ("generations", "generation", "generations_admin_order_idx"),
    ("credits", "credittransaction", "credit_tx_admin_order_idx"),
    ("projects", "project", "projects_admin_order_idx"),
    ("stylestacks", "stylestack", "style_stacks_admin_order_idx"),
    ("billing", "order", "billing_order_admin_order_idx"),
    ("billing", "stripeevent", "stripe_event_received_idx"),
    ("accounts", "user", "users_created_at_idx"),
]


@pytest.mark.parametrize(("app", "model", "index"), BIG_CHANGELISTS)
def test_the_default_order_of_each_big_changelist_is_read_from_an_index(app, model, index, alice, staff_client):
    # Sorting priced out too: on a table of a few rows, which index the planner walks
    # to avoid reading the table is a coin toss; the question is whether one gives the
    # page in its order.
    found = page_plan(staff_client.get(reverse(f"admin:{app}_{model}_changelist")), priced_out=IN_ORDER)
    assert re.search(rf"Index Scan( Backward)? using {index} ", found), found
    # Newest first straight from the index: no sort of the table (an incremental sort of
    # rows with the same created_at, on auth.users, is a sort of a handful).
    assert not re.search(r"(^|->\s+)Sort\s+\(cost", found, re.M), found


@pytest.mark.parametrize("status", ["failed", "cancelled"])
def test_the_generations_that_ended_badly_are_listed_from_their_own_index(status, alice, staff_client):
    # The order index would serve the filter only by skipping every row of another status:
    # with a table of mostly finished work (as in production), that is the cost the planner
    # weighs. (On an empty table the two indexes cost the same, and stock PostgreSQL 15
    # took the order index once in CI.)
    Generation.objects.bulk_create(
        [Generation(user=alice, ai_model_id=FLUX, prompt=f"cat {i}", status="completed") for i in range(300)]
        + [Generation(user=alice, ai_model_id=FLUX, prompt=f"dog {i}", status=status) for i in range(2)]
    )
    found = page_plan(staff_client.get(GENERATIONS, {"status__exact": status}), priced_out=IN_ORDER)
    assert "Index Scan using generations_admin_ended_idx " in found, found
    assert f"Index Cond: ((status)::text = '{status}'::text)" in found, found
    assert not re.search(r"(^|->\s+)Sort\s+\(cost", found, re.M), found
    # Statuses a generation passes through on its way are not in it.
    found = page_plan(staff_client.get(GENERATIONS, {"status__exact": "completed"}), priced_out=IN_ORDER)
    assert "generations_admin_ended_idx" not in found, found


@pytest.mark.parametrize(
    ("app", "model", "index"),
    [
        ("generations", "generation", "generations_user_created_idx"),
        ("credits", "credittransaction", "credit_tx_user_created_idx"),
        ("billing", "order", "billing_order_user_created_idx"),
    ],
)
def test_a_persons_list_from_their_page_is_read_from_their_index(app, model, index, alice, staff_client):
    url = reverse(f"admin:{app}_{model}_changelist")
    found = page_plan(staff_client.get(url, {"user__id__exact": alice.pk}), priced_out=IN_ORDER)
    assert f"Index Scan using {index} " in found, found
    assert "Sort" not in found, found
    found = page_plan(staff_client.get(url, {"q": "alice@example.com"}), priced_out=IN_ORDER)
    assert f"Index Scan using {index} " in found, found


@pytest.mark.parametrize(
    ("app", "model", "index"),
    [
        ("generations", "generation", "generations_prompt_words_idx"),
        ("credits", "credittransaction", "credit_tx_desc_words_idx"),
        ("projects", "project", "projects_name_words_idx"),
        ("stylestacks", "stylestack", "style_stacks_search_gin"),
        ("billing", "stripeevent", "stripe_event_detail_words_idx"),
    ],
)
def test_a_search_by_words_is_read_from_a_word_index(app, model, index, staff_client):
    response = staff_client.get(reverse(f"admin:{app}_{model}_changelist"), {"q": "red fo"})
    found = page_plan(response, priced_out=("seqscan", "indexscan"))
    assert f"Bitmap Index Scan on {index}" in found, found


def test_the_email_prefix_is_read_from_its_index(alice, staff_client):
    with CaptureQueriesContext(connection) as captured:
        staff_client.get(GENERATIONS, {"q": "Alice@"})
    [lookup] = [q["sql"] for q in captured if 'FROM "auth"."users"' in q["sql"] and "LIKE" in q["sql"]]
    assert 'UPPER("auth"."users"."email"::text) LIKE UPPER(\'Alice@%\')' in lookup
    statement, params = User.objects.filter(email__istartswith="Alice@").values("pk").query.sql_with_params()
    found = plan(statement, params, priced_out=("seqscan",))
    assert "Index Scan using users_email_upper_prefix_idx" in found, found
    assert "Index Cond: ((upper((email)::text) ~>=~ 'ALICE@'::text)" in found, found


def test_the_api_page_keeps_its_own_index_where_a_btree_on_created_at_would_win(alice, api_as, sql):
    """The bench's small data set: one person owns nearly half the rows, in created_at
    order. A plain b-tree on (created_at DESC, id DESC) wins the person's newest-first
    page there (it reads the table in order and skips the others' rows); the admin's
    index on timezone('UTC', created_at) cannot be taken for it at all."""
    others = [UserFactory(email=f"other{i}@example.com") for i in range(40)]
    start = timezone.now() - timedelta(days=30)
    rows = []
    for i in range(4000):
        owner = alice if i % 9 < 4 else others[i % len(others)]
        rows.append(
            Generation(user=owner, ai_model_id=FLUX, prompt=f"a cat {i}", created_at=start + timedelta(minutes=i))
        )
    Generation.objects.bulk_create(rows, batch_size=500)
    sql("ANALYZE public.generations")

    with CaptureQueriesContext(connection) as captured:
        assert api_as(alice).get("/api/v1/generations").status_code == 200
    page = next(q["sql"] for q in captured if 'FROM "generations"' in q["sql"] and "LIMIT" in q["sql"])

    def api_plan():
        with as_role("authenticated", alice) as cursor:
            cursor.execute(f"EXPLAIN {page}")
            return "\n".join(row[0] for row in cursor.fetchall())

    found = api_plan()
    assert "Index Scan using generations_user_created_idx" in found, found
    assert "admin_order_idx" not in found and "Sort" not in found, found

    # The control: what the admin's index would have done on the bare column.
    sql("SET CONSTRAINTS ALL IMMEDIATE")  # the deferred foreign key checks of the rows above
    sql("CREATE INDEX generations_created_plain_test ON public.generations (created_at DESC, id DESC)")
    sql("ANALYZE public.generations")
    assert "generations_created_plain_test" in api_plan()


# --- related rows on a change page --------------------------------------------------------


def test_a_generations_page_lists_its_newest_ledger_rows_and_links_to_all_of_them(alice, staff_client):
    credits_grant(user=alice, amount=12, reason="For the charges")
    charged = generation(alice)
    for i in range(12):
        credits_charge(user=alice, amount=1, description=f"Charge {i}", generation=charged)
    response = staff_client.get(reverse("admin:generations_generation_change", args=[charged.pk]))
    [ledger] = response.context["inline_admin_formsets"]
    assert [form.instance.description for form in ledger.formset.forms] == [f"Charge {i}" for i in range(11, 1, -1)]
    content = response.content.decode()
    link = re.search(r'<a href="([^"]+)" id="[^"]*-all">All credit ledger', content).group(1).replace("&amp;", "&")
    assert link == f"{LEDGER}?generation__id__exact={charged.pk}"
    assert len(listed(staff_client.get(link))) == 12


def test_a_stacks_page_lists_its_newest_versions_and_the_history_is_paged(alice, staff_client):
    stack = StyleStack.objects.create(user=alice, name="Noir", style=validate_document(NOIR_V2))
    StyleStackVersion.objects.bulk_create(
        [StyleStackVersion(stack=stack, version=i, style=stack.style) for i in range(1, 121)]
    )
    response = staff_client.get(reverse("admin:stylestacks_stylestack_change", args=[stack.pk]))
    versions = {f.formset.model: f.formset for f in response.context["inline_admin_formsets"]}[StyleStackVersion]
    assert [form.instance.version for form in versions.forms] == list(range(120, 110, -1))
    history = reverse("admin:stylestacks_stylestack_style_history", args=[stack.pk])
    assert f'href="{history}"' in response.content.decode()
    assert [v.version for v in staff_client.get(history).context["versions"]][:2] == [120, 119]
    assert len(staff_client.get(history).context["versions"]) == 50
    assert [v.version for v in staff_client.get(history, {"page": 3}).context["versions"]] == list(range(20, 0, -1))
