"""The hot paths `make bench` measures, kept equal to the plain ones they replace.

GET generations builds its rows without DRF's per-field machinery, skips django-filter
when no filter is sent, and leaves the role reset to the commit; POST generations does
not switch roles again for the person the request already runs as. Each shortcut is
checked here against what it replaces.
"""

import datetime
import json
import zoneinfo
from unittest import mock

import pytest
from django.db import connection
from django.utils import timezone
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import serializers as drf_serializers
from rest_framework.test import APIRequestFactory

from generations.models import Generation
from generations.serializers import GenerationSerializer
from projects.models import Project
from stylestacks.models import StylePreset
from tests.generations.conftest import FLUX
from velro import rls


def bulk(user, n, **extra):
    """n generations straight into the table (the owner; no ledger rows needed)."""
    start = timezone.now()
    rows = [
        Generation(
            user=user,
            ai_model_id=FLUX,
            prompt=f"p{i}",
            parameters={"seed": i},
            created_at=start - datetime.timedelta(minutes=i),
            **extra,
        )
        for i in range(n)
    ]
    return Generation.objects.bulk_create(rows)


def generic(generation, request):
    """What DRF's ModelSerializer machinery makes of the row (the reference)."""
    serializer = GenerationSerializer(context={"request": request})
    return drf_serializers.ModelSerializer.to_representation(serializer, generation)


def rendered(data) -> str:
    from rest_framework.renderers import JSONRenderer

    return JSONRenderer().render(data).decode()


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/St_Johns"])
def test_the_fast_row_is_exactly_what_the_declared_fields_make(alice, flux, zone):
    project = Project.objects.create(user=alice, name="P")
    preset = StylePreset.objects.filter(is_active=True).first()
    parent = bulk(alice, 1)[0]
    now = timezone.now().replace(microsecond=123456)
    rows = [
        parent,
        Generation.objects.create(user=alice, ai_model=flux, prompt="plain", parameters={}),
        Generation.objects.create(
            user=alice,
            ai_model=flux,
            prompt="everything",
            negative_prompt="blur",
            adapted_prompt="(everything:1.2)",
            parameters={"width": 1024, "nested": {"a": [1, 2]}},
            project=project,
            parent=parent,
            preset=preset,
            reference_image="references/x/ref.png",
            status=Generation.Status.COMPLETED,
            credits_charged=25,
            outputs=[
                {"url": "/media/generations/x/0.png", "width": 1, "height": 1},
                {"url": "https://cdn.example.com/1.png", "mime_type": "image/png"},
                {"mime_type": "image/png"},
            ],
            error_message="",
            attempts=2,
            is_favorite=True,
            started_at=now,
            completed_at=now + datetime.timedelta(seconds=3),
        ),
    ]
    request = APIRequestFactory().get("/api/v1/generations", HTTP_HOST="testserver")
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        for row in Generation.objects.filter(pk__in=[r.pk for r in rows]):
            fast = GenerationSerializer(row, context={"request": request}).data
            reference = generic(row, request)
            assert list(fast) == list(reference) == GenerationSerializer.Meta.fields
            assert rendered(fast) == rendered(reference)
            # A list page's row: a dict of the serializer's columns, same output.
            as_dict = Generation.objects.values(*GenerationSerializer.columns).get(pk=row.pk)
            assert rendered(GenerationSerializer(as_dict, context={"request": request}).data) == rendered(reference)
            # Both paths share the link helper: a signed link to what the file field says.
            if row.reference_image:
                assert fast["reference_image"].startswith(request.build_absolute_uri(row.reference_image.url) + "?")
            else:
                assert fast["reference_image"] is None
    # Without a request (services, the admin) URLs stay relative, as before.
    row = Generation.objects.get(pk=rows[2].pk)
    assert rendered(GenerationSerializer(row).data) == rendered(generic(row, None))


def test_value_rows_are_what_djangos_values_makes(alice, flux):
    """velro.rows.ValueRows (the list page's rows) against Django's own values(): JSON
    objects, lists, scalars, JSON null and SQL NULL, UUIDs and datetimes alike; with an
    annotation it takes Django's path."""
    from django.db.models import F, JSONField, Value

    from generations.views import GenerationViewSet
    from velro.rows import ValueRows

    def fast(queryset):
        queryset._iterable_class = ValueRows
        return queryset

    bulk(alice, 2)
    json_null = Value(None, JSONField())
    Generation.objects.create(user=alice, ai_model=flux, prompt="x", parameters={"a": [1, {"b": None}]}, outputs=[])
    Generation.objects.create(
        user=alice, ai_model=flux, prompt="y", parameters=json_null, progress="a string", provider_result={"k": 1}
    )
    Generation.objects.create(
        user=alice, ai_model=flux, prompt="z", parameters=7, progress=[1.5, True], provider_result=json_null
    )
    columns = GenerationSerializer.columns
    assert GenerationViewSet.list_rows._iterable_class is ValueRows
    other = ("provider_result", "id", "parameters", "created_at")
    for names, rows in [(columns, GenerationViewSet.list_rows), (other, fast(Generation.objects.values(*other)))]:
        plain = list(Generation.objects.values(*names).order_by("created_at", "id"))
        made = list(rows.order_by("created_at", "id"))
        assert len(made) == 5 and made == plain
        assert [list(row) for row in made] == [list(row) for row in plain]  # the same key order
        assert [type(v) for row in made for v in row.values()] == [type(v) for row in plain for v in row.values()]
    assert {row["provider_result"] is None for row in made} == {True, False}
    # Filters, ordering and slices as the paginator applies them: the same rows.
    last = plain[-1]["created_at"]
    page = GenerationViewSet.list_rows.filter(user=alice, created_at__lt=last).order_by("-created_at", "-id")[1:3]
    reference = Generation.objects.values(*columns).filter(created_at__lt=last).order_by("-created_at", "-id")[1:3]
    assert list(page) == list(reference) and len(page) == 2
    annotated = GenerationViewSet.list_rows.annotate(double=F("attempts") * 2, tag=Value("t")).order_by("created_at")
    assert [(row["double"], row["tag"]) for row in annotated] == [(0, "t")] * 5


def test_list_statements_are_the_same_for_every_page_size(alice, api_as, django_assert_num_queries):
    bulk(alice, 120)
    api = api_as(alice)
    counts = {}
    for size in (1, 20, 100):
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            body = api.get(f"/api/v1/generations?page_size={size}").json()
        assert len(body["results"]) == size
        counts[size] = len(captured.captured_queries)
    # Savepoint, the caller's row read with the role switch (accounts.authentication), the
    # page, reset, release (inside the test's transaction the reset stays: see
    # test_reset_is_left_to_the_commit_…).
    assert counts == {1: 5, 20: 5, 100: 5}


def test_a_list_without_filters_does_not_build_the_filterset(alice, api_as):
    bulk(alice, 3)
    api = api_as(alice)
    with mock.patch.object(DjangoFilterBackend, "filter_queryset", side_effect=AssertionError("filterset built")):
        assert len(api.get("/api/v1/generations?page_size=2").json()["results"]) == 2
    # Any other parameter runs the filters as before: bad values are still a 400.
    assert api.get("/api/v1/generations?status=bogus").status_code == 400
    assert api.get("/api/v1/generations?status=pending&page_size=1").json()["results"][0]["status"] == "pending"
    assert len(api.get("/api/v1/generations?unknown=1").json()["results"]) == 3


@pytest.mark.django_db(transaction=True)
def test_reset_is_left_to_the_commit_and_nothing_leaks_into_the_next_use(api_as):
    from tests.factories import UserFactory

    carol = UserFactory(email="carol@example.com")
    api = api_as(carol)
    assert api.get("/api/v1/generations").status_code == 200
    # The request's transaction committed; the same (persistent) connection is the owner
    # again, with no claims, although no reset statement ran.
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user, coalesce(current_setting('request.jwt.claims', true), '')")
        assert cursor.fetchone() == (True, "")
    assert getattr(connection, "velro_rls_sub", None) is None


def test_acting_as_the_request_person_skips_the_switch_but_not_for_anyone_else(alice, bob, sql):
    def uid():
        return sql("SELECT auth.uid()::text")[0][0]

    rls.switch(rls.claims_for(mock.Mock(user=alice, auth=None)))
    try:
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as same, rls.acting_as(alice):
            assert uid() == str(alice.pk)
        assert len(same.captured_queries) == 1  # only the uid() query itself
        with rls.acting_as(bob):
            assert uid() == str(bob.pk)
        assert uid() == str(alice.pk)
        # Stepping out to the owner and acting for alice again must switch for real.
        with rls.transaction_role("none", ""), rls.acting_as(alice):
            assert uid() == str(alice.pk)
    finally:
        rls.reset()
    assert sql("SELECT current_setting('request.jwt.claims', true)")[0][0] == ""


def test_a_failed_request_leaves_no_person_behind_for_acting_as(alice, api_as):
    api = api_as(alice)
    with mock.patch("generations.views.GenerationViewSet.list", side_effect=RuntimeError("boom")):
        with pytest.raises(RuntimeError):
            api.get("/api/v1/generations")
    assert getattr(connection, "velro_rls_sub", None) is None


def test_post_statements(alice, api_as, flux):
    from django.test.utils import CaptureQueriesContext

    from credits.services import credits_grant

    credits_grant(user=alice, amount=100, reason="statements")
    api = api_as(alice)
    with CaptureQueriesContext(connection) as captured:
        response = api.post("/api/v1/generations", {"ai_model": FLUX, "prompt": "a cat"}, format="json")
    assert response.status_code == 201, response.content
    statements = [q["sql"] for q in captured.captured_queries]
    # One role switch for the request; the create itself does not switch again.
    assert sum("set_config('role'" in s for s in statements) == 2  # switch + reset (test transaction)
    assert sum("generation_create" in s for s in statements) == 1
    # The request's own savepoint (the test's transaction around it) and no other: the
    # function call needs none directly in the request's transaction.
    assert sum(s.startswith("SAVEPOINT") for s in statements) == 1
    body = json.loads(response.content)
    assert body["credits_charged"] == flux.credits_cost


def test_generations_of_a_retired_model_stay_in_the_list_and_open(alice, api_as, flux):
    """The list used to join the catalog under RLS, whose policy shows active models only:
    deactivating a model hid its generations from their owner. No join, no hiding."""
    made = bulk(alice, 2)
    flux.is_active = False
    flux.save(update_fields=["is_active"])
    api = api_as(alice)
    listed = [row["id"] for row in api.get("/api/v1/generations").json()["results"]]
    assert listed == [str(made[0].pk), str(made[1].pk)]
    assert api.get(f"/api/v1/generations/{made[0].pk}").json()["ai_model"] == FLUX


def test_a_refused_create_in_a_request_leaves_nothing_and_the_next_request_works(alice, api_as, flux):
    """Without the savepoint, the database error ends the request's transaction: the 402
    still answers, nothing is written, and the connection serves the next request."""
    api = api_as(alice)
    before = Generation.objects.filter(user=alice).count()
    response = api.post("/api/v1/generations", {"ai_model": "fal-ai/veo3", "prompt": "too dear"}, format="json")
    assert response.status_code == 402, response.content
    assert Generation.objects.filter(user=alice).count() == before
    assert api.get("/api/v1/generations").status_code == 200
    assert api.post("/api/v1/generations", {"ai_model": FLUX, "prompt": "fits"}, format="json").status_code == 201


def test_the_input_fields_share_their_declared_querysets_and_evaluate_clones(alice, flux):
    from generations.serializers import GenerationCreateInputSerializer

    request = APIRequestFactory().post("/api/v1/generations")
    request.user = alice
    one, two = (GenerationCreateInputSerializer(context={"request": request}).fields for _ in range(2))
    for name in ("ai_model", "project", "parent", "style_stack", "preset"):
        assert one[name] is not two[name]
        assert one[name].queryset is two[name].queryset, name  # not deep-copied per instance
    preset = StylePreset.objects.filter(is_active=True).first()
    assert one["preset"].to_internal_value(preset.slug) == preset
    evaluated = one["preset"].get_queryset()
    assert evaluated is not one["preset"].queryset
    assert one["preset"].queryset._result_cache is None  # the shared one stays unevaluated
