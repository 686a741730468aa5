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


def test_named_columns_skip_the_description_and_must_match_the_row(generation):
    names = tuple(f.column for f in reversed(Generation._meta.concrete_fields))
    selected = ", ".join(f'"{name}"' for name in names)
    query = f"SELECT {selected}, 42 AS answer FROM public.generations WHERE id = %s"
    fetched = fetch_instance(Generation, query, [generation.pk], columns=(*names, "answer"))
    same_fields(fetched, fetch_instance(Generation, query, [generation.pk]), Generation)
    assert fetched.answer == 42
    with pytest.raises(ValueError, match="columns"):
        fetch_instance(Generation, query, [generation.pk], columns=names)


def test_the_callers_read_names_every_column_it_selects(alice):
    """accounts.authentication reads the caller by named columns (no u.*, no description
    read per request): the names it passes are the statement's."""
    from django.db import connection, transaction

    from accounts import authentication

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(authentication._READ_AND_SWITCH, ["{}", alice.pk, alice.pk])
        assert tuple(column.name for column in cursor.description) == authentication._READ_COLUMNS
        transaction.set_rollback(True)
