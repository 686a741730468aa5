"""velro.rows.fetch_instance makes the instance model.objects.raw() makes (the hot
statements of every API request use it: the caller's row, the created generation)."""

import pytest

from accounts.models import User
from generations.models import Generation
from velro.rows import fetch_instance


def same_fields(one, other, model) -> None:
    for field in model._meta.concrete_fields:
        assert getattr(one, field.attname) == getattr(other, field.attname), field.attname


@pytest.fixture
def generation(alice):
    return Generation.objects.create(
        user=alice,
        ai_model_id="fal-ai/flux/dev",
        prompt="a heron at dawn",
        parameters={"seed": 7, "nested": {"list": [1, "two", None]}},
        outputs=[{"url": "/media/outputs/heron.png", "width": 512}],
        adaptation={"source": "preset", "id": "noir"},
    )


def test_a_row_with_json_columns_and_an_extra_column(generation):
    query = "SELECT *, 41 + 1 AS answer FROM public.generations WHERE id = %s"
    fetched = fetch_instance(Generation, query, [generation.pk])
    raw = next(iter(Generation.objects.raw(query, [generation.pk])))
    same_fields(fetched, raw, Generation)
    assert fetched.parameters == {"seed": 7, "nested": {"list": [1, "two", None]}}  # decoded, not text
    assert fetched.outputs[0]["width"] == 512
    assert fetched.answer == raw.answer == 42
    assert (fetched._state.adding, fetched._state.db) == (raw._state.adding, raw._state.db) == (False, "default")


def test_the_columns_may_come_in_any_order(generation):
    columns = ", ".join(f'"{f.column}"' for f in reversed(Generation._meta.concrete_fields))
    fetched = fetch_instance(Generation, f"SELECT {columns} FROM public.generations WHERE id = %s", [generation.pk])
    same_fields(fetched, Generation.objects.get(pk=generation.pk), Generation)


def test_a_user_row_is_the_user(alice):
    fetched = fetch_instance(User, "SELECT * FROM auth.users WHERE id = %s", [alice.pk])
    same_fields(fetched, User.objects.get(pk=alice.pk), User)
    assert fetched.raw_user_meta_data == {"full_name": "Alice Owner"}


def test_no_row_is_none(db):
    assert fetch_instance(User, "SELECT * FROM auth.users WHERE false", []) is None


def test_a_missing_column_is_refused(alice):
    with pytest.raises(ValueError, match="missing: email"):
        fetch_instance(User, "SELECT id FROM auth.users WHERE id = %s", [alice.pk])
