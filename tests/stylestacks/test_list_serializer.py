"""StyleStackListSerializer builds its rows directly (explore and the list serve 50 a
page); here it is held to exactly what DRF's declared fields make of the same stacks."""

import datetime
import zoneinfo

import pytest
from django.utils import timezone
from rest_framework import serializers as drf_serializers
from rest_framework.renderers import JSONRenderer
from rest_framework.test import APIRequestFactory

from stylestacks.models import StylePreset, StyleStack
from stylestacks.serializers import StyleStackListSerializer
from tests.stylestacks.test_stylestacks_api import make_stack


def rendered(data) -> bytes:
    return JSONRenderer().render(data)


@pytest.mark.parametrize("zone", ["UTC", "Asia/Kolkata"])
def test_the_direct_row_equals_the_declared_fields(alice, bob, zone):
    preset = StylePreset.objects.filter(is_active=True).first()
    own = make_stack(alice, "Own noir", tags=["noir", "rain"], visibility="public")
    fork = make_stack(bob, "A fork", visibility="public", parent=own)
    StyleStack.objects.filter(pk=fork.pk).update(
        usage_count=7,
        fork_count=2,
        is_featured=True,
        last_used_at=timezone.now() - datetime.timedelta(hours=3),
        created_from="preset",
        created_from_preset=preset,
        compatible_models=["fal-ai/flux/dev", "fal-ai/veo3"],
    )
    request = APIRequestFactory().get("/api/v1/style-stacks/explore")
    request.user = alice
    # Both rows were made in this test's transaction: the same created_at (now() is the
    # transaction's time), so no ORDER BY can tell them apart. Alice's own stack first.
    stacks = [StyleStack.objects.get(pk=own.pk), StyleStack.objects.get(pk=fork.pk)]
    stacks[1].caller_role = "viewer"  # what the list annotates for a shared stack
    with timezone.override(zoneinfo.ZoneInfo(zone)):
        for stack in stacks:
            serializer = StyleStackListSerializer(context={"request": request})
            direct = serializer.to_representation(stack)
            generic = drf_serializers.ModelSerializer.to_representation(serializer, stack)
            assert list(direct) == list(generic) == StyleStackListSerializer.Meta.fields
            assert rendered(direct) == rendered(generic)
    assert StyleStackListSerializer(stacks[0], context={"request": request}).data["role"] == "owner"
    assert StyleStackListSerializer(stacks[1], context={"request": request}).data["role"] == "viewer"


def test_explore_rows_render_like_the_stacks_they_are(alice, bob, api_as):
    """Explore hands the serializer plain rows (stylestacks.selectors), not model
    instances: the page must be what the declared fields make of the stacks themselves."""
    preset = StylePreset.objects.filter(is_active=True).first()
    own = make_stack(alice, "Harbour noir", tags=["noir"], visibility="public")
    other = make_stack(bob, "Harbour fork", visibility="public", parent=own)
    StyleStack.objects.filter(pk=other.pk).update(
        usage_count=3,
        last_used_at=timezone.now() - datetime.timedelta(minutes=5),
        created_from="preset",
        created_from_preset=preset,
        compatible_models=["fal-ai/flux/dev"],
    )
    page = api_as(alice).get("/api/v1/style-stacks/explore?q=harbour").json()
    assert page["count"] == 2
    request = APIRequestFactory().get("/api/v1/style-stacks/explore")
    request.user = alice
    for row in page["results"]:
        stack = StyleStack.objects.get(pk=row["id"])
        serializer = StyleStackListSerializer(context={"request": request})
        generic = drf_serializers.ModelSerializer.to_representation(serializer, stack)
        assert rendered(row) == rendered(generic)
    assert {row["id"]: row["role"] for row in page["results"]} == {str(own.pk): "owner", str(other.pk): None}
