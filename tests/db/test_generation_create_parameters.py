"""public.generation_create() holds its caller to the model's parameter schema.

A Supabase-style client connects as ``authenticated`` and can call the function
directly, skipping the API's jsonschema check. Before generations.0008 these calls
stored 4096×4096 / 1000 images and charged for them; now the database refuses them
itself (VL422, hint "parameters") and nothing is written or charged.
"""

import json

import pytest
from django.db import DatabaseError

from accounts.models import Profile
from credits.services import credits_grant
from generations.models import AIModel, Generation
from generations.schemas import validate_parameters
from tests.conftest import as_role

FLUX = "fal-ai/flux/dev"  # width/height 256..2048 multiple of 8, num_images 1..4
VIDEO_SCHEMA_MODEL = "fal-ai/veo3"


def _create(user, model: str, parameters: dict):
    with as_role("authenticated", user) as cursor:
        cursor.execute(
            "SELECT id FROM public.generation_create(%s, 'a lighthouse', '', %s::jsonb)",
            [model, json.dumps(parameters)],
        )
        return cursor.fetchone()[0]


@pytest.mark.parametrize(
    ("model", "parameters", "message"),
    [
        (FLUX, {"width": 4096, "height": 1024}, "width: 4096 is greater than the maximum of 2048"),
        (FLUX, {"num_images": 1000}, "num_images: 1000 is greater than the maximum of 4"),
        (FLUX, {"num_images": 0}, "num_images: 0 is less than the minimum of 1"),
        (FLUX, {"width": 1001}, "width: 1001 is not a multiple of 8"),
        (FLUX, {"width": "1024"}, 'width: "1024" is not of type'),
        (FLUX, {"width": 1024.5}, "width: 1024.5 is not of type"),
        (FLUX, {"steps_per_second": 9}, "additional property 'steps_per_second' is not allowed"),
        (VIDEO_SCHEMA_MODEL, {"duration": 600}, "duration: 600 is greater than the maximum"),
        (VIDEO_SCHEMA_MODEL, {"aspect_ratio": "32:9"}, 'aspect_ratio: "32:9" is not one of'),
    ],
)
def test_parameters_outside_the_models_limits_are_refused_and_not_charged(alice, model, parameters, message):
    with pytest.raises(DatabaseError, match=message) as raised:
        _create(alice, model, parameters)
    diag = raised.value.__cause__.diag
    assert (diag.sqlstate, diag.message_hint) == ("VL422", "parameters")
    assert not Generation.objects.filter(user=alice).exists()
    assert Profile.objects.get(pk=alice.pk).credits_balance == 100


def test_parameters_must_be_an_object(alice):
    with pytest.raises(DatabaseError, match="Parameters must be a JSON object"), as_role("authenticated", alice) as c:
        c.execute("SELECT public.generation_create(%s, 'x', '', '[1, 2]'::jsonb)", [FLUX])


def test_parameters_within_the_limits_are_stored_as_given(alice):
    parameters = {"width": 2048, "height": 256, "num_images": 4, "guidance_scale": 3.5, "seed": 7}
    generation = Generation.objects.get(pk=_create(alice, FLUX, parameters))
    assert generation.parameters == parameters
    assert Profile.objects.get(pk=alice.pk).credits_balance == 100 - AIModel.objects.get(pk=FLUX).credits_cost


def test_what_the_api_accepts_the_database_accepts(alice):
    """The defaults the API fills in pass the database's check too, for every seeded
    model (the two checks must never disagree on a valid request)."""
    credits_grant(user=alice, amount=100_000, reason="test: every model once")
    models = list(AIModel.objects.filter(is_active=True))
    assert len(models) >= 3
    for ai_model in models:
        filled = validate_parameters(ai_model.parameter_schema, {})
        generation = Generation.objects.get(pk=_create(alice, ai_model.pk, filled))
        assert generation.parameters == filled


def test_every_seeded_model_refuses_an_unknown_parameter_in_the_database(alice):
    for ai_model in AIModel.objects.filter(is_active=True):
        if ai_model.parameter_schema.get("additionalProperties") is not False:
            continue
        with pytest.raises(DatabaseError, match="additional property"):
            _create(alice, ai_model.pk, {"not_a_parameter": 1})
    assert Profile.objects.get(pk=alice.pk).credits_balance == 100


def test_a_schema_whose_default_breaks_its_own_limits_is_refused():
    from django.core.exceptions import ValidationError

    from generations.schemas import check_parameter_schema

    schema = {"type": "object", "properties": {"duration": {"type": "integer", "minimum": 6, "default": 5}}}
    with pytest.raises(ValidationError, match="default of 'duration'"):
        check_parameter_schema(schema)
