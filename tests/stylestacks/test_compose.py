"""compose(): one style document, composed for each kind of model in the catalog.
Models are SimpleNamespaces mirroring the seeded catalog; no database."""

import copy
import dataclasses
import importlib
import re
from types import SimpleNamespace

import pytest
from django.core.exceptions import ValidationError

from stylestacks.compose import DEFAULT_MOTION, ComposeResult, compose
from tests.stylestacks.test_schema import NOIR_OLD, NOIR_V2

PROMPT = "a man lights a match under a flickering streetlamp"

# The seeded guides and schemas (generations/migrations/0003_seed_catalog.py), copied.
FLUX_GUIDE = {
    "strategy": "keyword_weighted",
    "style": "comma-separated weighted keywords, e.g. (cinematic lighting:1.3)",
    "camera": "lens and framing as keywords: 35mm, shallow depth of field, low angle",
    "motion": "",
    "keywords": ["highly detailed", "sharp focus", "professional photography"],
    "negatives": ["blurry", "low quality", "distorted hands", "watermark", "text artifacts"],
    "optimal_length": {"min_words": 100, "max_words": 300},
}
IMAGEN_GUIDE = {
    "strategy": "natural_language",
    "style": "plain descriptive sentences; name the medium and mood",
    "camera": "describe the shot in words: close-up portrait, wide establishing shot",
    "motion": "",
    "keywords": ["photorealistic", "natural light"],
    "negatives": [],
    "optimal_length": {"min_words": 30, "max_words": 150},
}
VEO_GUIDE = {
    "strategy": "descriptive_flow",
    "style": "flowing descriptive prose, one scene told in order",
    "camera": "name camera moves explicitly: slow dolly in, tracking shot, crane up",
    "motion": "describe action over time: what moves, how fast, what changes",
    "keywords": ["cinematic", "smooth motion"],
    "negatives": [],
    "optimal_length": {"min_words": 200, "max_words": 500},
}
ACTION_GUIDE = {
    "strategy": "action_focused",
    "style": "short, concrete sentences led by the action",
    "camera": "one camera move per shot",
    "motion": "subject + verb + direction + speed",
    "keywords": ["dynamic", "fluid motion"],
    "negatives": ["jitter", "morphing", "extra limbs"],
    "optimal_length": {"min_words": 40, "max_words": 120},
}


def image_schema(*, guidance=True, safety=True, steps=True):
    properties = {
        "width": {"type": "integer", "minimum": 256, "maximum": 2048, "multipleOf": 8, "default": 1024},
        "height": {"type": "integer", "minimum": 256, "maximum": 2048, "multipleOf": 8, "default": 1024},
        "num_images": {"type": "integer", "minimum": 1, "maximum": 4, "default": 1},
        "seed": {"type": "integer", "minimum": 0, "maximum": 2_147_483_647},
    }
    if guidance:
        properties["guidance_scale"] = {"type": "number", "minimum": 1, "maximum": 20, "default": 3.5}
    if steps:
        properties["num_inference_steps"] = {"type": "integer", "minimum": 1, "maximum": 50, "default": 28}
    if safety:
        properties["safety_tolerance"] = {"type": "integer", "minimum": 1, "maximum": 6, "default": 2}
    return {"type": "object", "additionalProperties": False, "properties": properties}


def video_schema(low, high):
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "duration": {"type": "integer", "minimum": low, "maximum": high, "default": 5},
            "aspect_ratio": {"type": "string", "enum": ["16:9", "9:16", "1:1"], "default": "16:9"},
            "seed": {"type": "integer", "minimum": 0, "maximum": 2_147_483_647},
        },
    }


def model(model_id, kind, max_len, guide, schema, *, lora, negative):
    return SimpleNamespace(
        id=model_id,
        kind=kind,
        max_prompt_length=max_len,
        prompt_guide=guide,
        parameter_schema=schema,
        supports_lora=lora,
        supports_negative_prompt=negative,
    )


FLUX_DEV = model("fal-ai/flux/dev", "image", 1000, FLUX_GUIDE, image_schema(), lora=True, negative=True)
SCHNELL_SCHEMA = image_schema(guidance=False, safety=False)
FLUX_SCHNELL = model("fal-ai/flux/schnell", "image", 1000, FLUX_GUIDE, SCHNELL_SCHEMA, lora=True, negative=False)
IMAGEN = model(
    "fal-ai/imagen4/preview/ultra",
    "image",
    2000,
    IMAGEN_GUIDE,
    image_schema(guidance=False, steps=False, safety=False),
    lora=False,
    negative=True,
)
VEO3 = model("fal-ai/veo3", "video", 2000, VEO_GUIDE, video_schema(5, 8), lora=False, negative=True)
KLING_ID = "fal-ai/kling-video/v2.1/master/text-to-video"
KLING = model(KLING_ID, "video", 1500, ACTION_GUIDE, video_schema(5, 10), lora=False, negative=True)

# A LoRA with no model_id: it applies to every model that supports LoRAs.
GRAIN_LORA = {"lora_path": "https://example.com/grain.safetensors", "trigger_words": ["grainy"]}

WEIGHT_MARK = re.compile(r"\([^()]*:\d+(\.\d+)?\)")


def noir(**block_changes) -> dict:
    """The noir document (v2) with some blocks' fields changed; None removes a block."""
    document = copy.deepcopy(NOIR_V2)
    for name, changes in block_changes.items():
        if changes is None:
            document["prompt_blocks"].pop(name, None)
        else:
            document["prompt_blocks"].setdefault(name, {}).update(changes)
    return document


def with_model(base, **changes):
    return SimpleNamespace(**{**vars(base), **changes})


# --- keyword_weighted (Flux) -------------------------------------------------------------


def test_flux_gets_weighted_keywords_in_order_with_the_lora_trigger():
    result = compose(noir(lighting={"weight": 1.2}), FLUX_DEV, PROMPT)

    assert result.prompt.startswith(PROMPT + ", detective waits in a rain-soaked alley, ")
    assert "(venetian-blind shadows:1.2)" in result.prompt
    assert "(tall man, grey trench coat:1.5)" in result.prompt
    assert "noirstyle" in result.prompt
    assert result.metadata["strategy"] == "keyword_weighted"
    assert result.metadata["loras_applied"] == [
        {
            "key": "noir",
            "lora_path": "https://example.com/loras/noir.safetensors",
            "weight": 0.8,
            "trigger_words": ["noirstyle"],
        }
    ]
    fragments = [
        "detective waits",
        "high-contrast black and white",
        "1940s city at night",
        "(venetian-blind shadows:1.2)",
        "low angle, dutch tilt",
        "fedora, cigarette smoke",
        "(tall man, grey trench coat:1.5)",
        "his face revealed",
        "noir, shadows",
        "noirstyle",
        "highly detailed, sharp focus, professional photography",
    ]
    positions = [result.prompt.index(fragment) for fragment in fragments]
    assert "slow push-in" not in result.prompt  # a still image has no motion
    assert positions == sorted(positions)


def test_a_weight_of_one_is_not_written():
    result = compose(noir(), FLUX_DEV, PROMPT)
    assert "venetian-blind shadows" in result.prompt
    assert "(venetian-blind shadows" not in result.prompt


@pytest.mark.parametrize(
    ("weight", "written"),
    [(0.8, "(noir:0.8), (shadows:0.8)"), (1.25, "(noir:1.25), (shadows:1.25)"), (2, "(noir:2), (shadows:2)")],
)
def test_list_items_carry_their_blocks_weight(weight, written):
    assert written in compose(noir(keywords={"weight": weight}), FLUX_DEV, PROMPT).prompt


def test_a_weight_that_rounds_to_one_is_not_written():
    assert "(noir" not in compose(noir(keywords={"weight": 1.001}), FLUX_DEV, PROMPT).prompt


def test_guide_keywords_already_in_the_prompt_are_not_repeated():
    result = compose(noir(), FLUX_DEV, "a portrait in Sharp Focus")
    assert result.prompt.lower().count("sharp focus") == 1
    assert result.prompt.endswith("highly detailed, professional photography")


def test_flux_negative_prompt_joins_block_guide_and_request_without_duplicates():
    document = noir(negative={"text": "colour, Blurry"})
    result = compose(document, FLUX_DEV, PROMPT, {"negative_prompt": "WATERMARK, lens flare"})
    assert result.negative_prompt == (
        "colour, Blurry, low quality, distorted hands, watermark, text artifacts, lens flare"
    )
    assert "negative" in result.metadata["blocks_used"]
    assert "colour" not in result.prompt  # the negative block never enters the prompt


def test_a_disabled_negative_block_is_left_out():
    result = compose(noir(negative={"text": "colour", "enabled": False}), FLUX_DEV, PROMPT)
    assert "colour" not in result.negative_prompt
    assert result.negative_prompt.startswith("blurry")


def test_schnell_has_no_negative_prompt_and_only_unbound_loras():
    document = noir(negative={"text": "colour"})
    document["lora_configs"]["grain"] = GRAIN_LORA

    result = compose(document, FLUX_SCHNELL, PROMPT, {"negative_prompt": "blurry"})

    assert result.negative_prompt == ""
    assert "noirstyle" not in result.prompt  # bound to fal-ai/flux/dev
    assert "grainy" in result.prompt  # no model_id: every LoRA-capable model
    assert [lora["key"] for lora in result.metadata["loras_applied"]] == ["grain"]
    assert "negative" not in result.metadata["blocks_used"]


# --- prose strategies ------------------------------------------------------------------


def test_imagen_gets_natural_language_without_lora_or_weights():
    document = noir(lighting={"weight": 1.7})
    document["lora_configs"]["grain"] = GRAIN_LORA

    result = compose(document, IMAGEN, PROMPT)

    assert result.metadata["strategy"] == "natural_language"
    assert "noirstyle" not in result.prompt and "grainy" not in result.prompt
    assert result.metadata["loras_applied"] == []
    assert not WEIGHT_MARK.search(result.prompt)
    assert "Lighting: venetian-blind shadows." in result.prompt
    # Images get no motion in short prose, and the keyword list is for keyword models.
    assert "push-in" not in result.prompt and "noir, shadows" not in result.prompt
    assert result.metadata["motion_source"] is None


def test_veo3_uses_its_adaptation_in_prose_without_weights():
    document = noir(lighting={"weight": 1.2}, style={"weight": 0.6})

    result = compose(document, VEO3, PROMPT)

    assert result.metadata["strategy"] == "descriptive_flow"
    assert result.metadata["adaptations_applied"] == ["fal-ai/veo3"]
    assert "Slow dolly through rain." in result.prompt
    assert "push-in" not in result.prompt
    assert not WEIGHT_MARK.search(result.prompt)
    assert result.prompt.startswith(PROMPT + ". Detective waits in a rain-soaked alley.")
    assert "Featuring tall man, grey trench coat." in result.prompt
    assert result.prompt.endswith("noir, shadows.")
    sentences = ["Detective waits", "Setting:", "Featuring", "Style:", "Lighting:", "Camera:", "Slow dolly", "Ending:"]
    positions = [result.prompt.index(sentence) for sentence in sentences]
    assert positions == sorted(positions)


def test_kling_leads_with_the_motion():
    result = compose(noir(), KLING, PROMPT)
    assert result.metadata["strategy"] == "action_focused"
    assert result.prompt.startswith(PROMPT + ". Slow push-in. Detective waits")
    assert result.negative_prompt == "jitter, morphing, extra limbs"


@pytest.mark.parametrize("video", [VEO3, KLING], ids=["veo3", "kling"])
def test_a_video_without_a_motion_block_still_gets_a_motion_sentence(video):
    document = noir(motion=None)
    document["model_adaptations"] = {}

    result = compose(document, video, PROMPT)

    assert DEFAULT_MOTION in result.prompt
    assert result.metadata["motion_source"] == "default"
    # The guide's motion tip is advice for writers, not prompt text.
    assert video.prompt_guide["motion"] not in result.prompt


def test_a_disabled_motion_block_on_video_falls_back_to_the_default_motion():
    document = noir(motion={"enabled": False})
    document["model_adaptations"] = {}
    result = compose(document, KLING, PROMPT)
    assert "push-in" not in result.prompt
    assert DEFAULT_MOTION in result.prompt
    assert "motion" not in result.metadata["blocks_used"]


def test_an_unknown_strategy_falls_back_to_the_kinds_default():
    odd_video = with_model(VEO3, id="fal-ai/other-video", prompt_guide={"strategy": "haiku"})
    odd_image = with_model(FLUX_DEV, prompt_guide={})
    assert compose(noir(), odd_video, PROMPT).metadata["strategy"] == "descriptive_flow"
    assert compose(noir(), odd_image, PROMPT).metadata["strategy"] == "keyword_weighted"


# --- adaptations and blocks ------------------------------------------------------------


def test_the_kind_adaptation_applies_when_there_is_no_exact_one():
    document = noir()
    document["model_adaptations"]["video"] = {"prompt_blocks": {"motion": {"text": "handheld drift"}}}

    kling = compose(document, KLING, PROMPT)
    veo = compose(document, VEO3, PROMPT)
    flux = compose(document, FLUX_DEV, PROMPT)

    assert "Handheld drift." in kling.prompt and kling.metadata["adaptations_applied"] == ["video"]
    assert "Slow dolly through rain." in veo.prompt and veo.metadata["adaptations_applied"] == ["fal-ai/veo3"]
    assert "handheld" not in veo.prompt.lower()
    assert "handheld" not in flux.prompt and flux.metadata["adaptations_applied"] == []


def test_an_adaptation_block_overrides_only_its_own_fields():
    document = noir()
    document["model_adaptations"]["fal-ai/flux/dev"] = {"prompt_blocks": {"style": {"weight": 1.5}}}
    result = compose(document, FLUX_DEV, PROMPT)
    assert "(high-contrast black and white:1.5)" in result.prompt


def test_an_adaptation_may_add_a_block_the_document_lacks():
    document = noir(text=None)
    document["model_adaptations"]["image"] = {"prompt_blocks": {"text": {"text": "neon sign reads OPEN"}}}
    assert "neon sign reads OPEN" in compose(document, FLUX_DEV, PROMPT).prompt


def test_disabled_and_empty_blocks_are_omitted():
    document = noir(lighting={"enabled": False}, camera={"text": "   "}, elements={"items": []})
    document["model_adaptations"]["fal-ai/veo3"]["prompt_blocks"]["style"] = {"enabled": False}

    flux = compose(document, FLUX_DEV, PROMPT)
    veo = compose(document, VEO3, PROMPT)

    assert "venetian" not in flux.prompt and "venetian" not in veo.prompt
    assert "fedora" not in flux.prompt
    assert "Camera:" not in veo.prompt
    assert "high-contrast" in flux.prompt and "high-contrast" not in veo.prompt
    assert {"lighting", "camera", "elements"}.isdisjoint(flux.metadata["blocks_used"])


def test_the_old_shape_composes_like_the_v2_shape():
    assert compose(NOIR_OLD, VEO3, PROMPT) == compose(NOIR_V2, VEO3, PROMPT)


def test_an_empty_document_gives_the_prompt_and_the_guides_extras():
    flux = compose({}, FLUX_DEV, PROMPT)
    assert flux.prompt == PROMPT + ", highly detailed, sharp focus, professional photography"
    imagen = compose({}, IMAGEN, PROMPT)
    assert imagen.prompt == PROMPT


def test_an_invalid_document_is_refused():
    with pytest.raises(ValidationError, match="prompt_blocks.style.weight"):
        compose(noir(style={"weight": 3}), FLUX_DEV, PROMPT)


# --- length ----------------------------------------------------------------------------


def test_trimming_drops_guide_keywords_then_the_lowest_weight_blocks_first():
    document = noir(setting={"weight": 0.5}, description={"weight": 0.7})
    small = with_model(FLUX_DEV, max_prompt_length=260)

    result = compose(document, small, PROMPT)

    assert len(result.prompt) <= 260
    assert result.prompt.startswith(PROMPT)
    trimmed = result.metadata["blocks_trimmed"]
    assert trimmed[:3] == ["guide_keywords", "setting", "description"]
    assert "1940s" not in result.prompt and "detective" not in result.prompt
    assert result.metadata["final_length"] == len(result.prompt)
    assert set(trimmed).isdisjoint(result.metadata["blocks_used"])


def test_equal_weights_are_trimmed_least_important_first():
    small = with_model(FLUX_DEV, max_prompt_length=len(PROMPT) + 60)

    result = compose(noir(), small, PROMPT)

    assert result.metadata["blocks_trimmed"][:7] == [
        "guide_keywords",
        "keywords",
        "ending",
        "lighting",
        "setting",
        "camera",
        "style",
    ]
    # The LoRA trigger outlives every block.
    assert "lora_trigger_words" not in result.metadata["blocks_trimmed"]
    assert result.prompt.endswith("noirstyle")
    assert len(result.prompt) <= small.max_prompt_length


def test_a_videos_motion_is_trimmed_last():
    small = with_model(VEO3, max_prompt_length=len(PROMPT) + 30)

    result = compose(noir(description={"weight": 2}), small, PROMPT)

    assert result.prompt == PROMPT + ". Slow dolly through rain."
    assert "motion" not in result.metadata["blocks_trimmed"]
    assert result.metadata["blocks_trimmed"][-1] == "description"  # the heaviest block went last
    assert result.metadata["persistent_elements_used"] == []


def test_a_prompt_too_long_alone_is_cut_at_a_word_boundary():
    tiny = with_model(VEO3, max_prompt_length=30)

    result = compose(noir(), tiny, PROMPT)

    assert result.prompt == "a man lights a match under a"
    assert len(result.prompt) <= 30
    assert result.metadata["prompt_truncated"] is True
    assert "motion" in result.metadata["blocks_trimmed"]
    # A limit that ends exactly at a word keeps that word.
    assert compose(noir(), with_model(VEO3, max_prompt_length=28), PROMPT).prompt == "a man lights a match under a"
    # A single word longer than the limit is cut inside the word: never over the maximum.
    assert compose({}, with_model(VEO3, max_prompt_length=4), "unbreakable").prompt == "unbr"


@pytest.mark.parametrize("limit", [1, 5, 20, 51, 52, 80, 120, 200, 333, 500])
@pytest.mark.parametrize("base", [FLUX_DEV, FLUX_SCHNELL, IMAGEN, VEO3, KLING], ids=lambda m: m.id)
def test_the_result_never_exceeds_the_maximum_and_keeps_the_prompt(base, limit):
    result = compose(noir(), with_model(base, max_prompt_length=limit), PROMPT)
    assert len(result.prompt) <= limit
    if limit >= len(PROMPT):
        assert result.prompt.startswith(PROMPT)
        assert result.metadata["prompt_truncated"] is False
    else:
        assert PROMPT.startswith(result.prompt)


def test_every_seeded_model_composes_within_its_limits():
    seeded = importlib.import_module("generations.migrations.0003_seed_catalog").MODELS
    for model_id, _name, kind, _cost, max_len, schema, guide, lora, negative, _ref in seeded:
        catalog_model = model(model_id, kind, max_len, guide, schema, lora=lora, negative=negative)
        result = compose(NOIR_OLD, catalog_model, PROMPT)
        assert result.prompt.startswith(PROMPT), model_id
        assert len(result.prompt) <= max_len, model_id
        if kind == "video":
            assert result.metadata["motion_source"] in ("block", "default"), model_id
        if not negative:
            assert result.negative_prompt == "", model_id


def test_a_long_negative_prompt_keeps_the_requests_terms():
    document = noir(negative={"text": ", ".join(f"artifact number {i}" for i in range(80))})
    result = compose(document, FLUX_DEV, PROMPT, {"negative_prompt": "lens flare"})
    assert len(result.negative_prompt) <= 1000
    assert result.negative_prompt.startswith("artifact number 0, ")
    assert result.negative_prompt.endswith("lens flare")


# --- parameters ------------------------------------------------------------------------


def test_parameters_merge_request_over_adaptation_over_style_over_schema_default():
    document = noir()
    document["parameters"] = {"width": 512, "num_images": 2, "guidance_scale": 5}
    document["model_adaptations"]["fal-ai/flux/dev"] = {"parameters": {"width": 768, "num_images": 3}}

    result = compose(document, FLUX_DEV, PROMPT, {"parameters": {"num_images": 4}})

    assert result.parameters == {
        "width": 768,  # adaptation beats style
        "height": 1024,  # schema default
        "num_images": 4,  # request beats adaptation
        "guidance_scale": 5,  # style beats schema default
        "num_inference_steps": 28,
        "safety_tolerance": 2,
    }


def test_an_invalid_request_parameter_is_refused():
    with pytest.raises(ValidationError) as caught:
        compose(noir(), FLUX_DEV, PROMPT, {"parameters": {"num_images": 9}})
    assert "num_images: 9 is greater than the maximum of 4" in caught.value.message_dict["parameters"]


def test_parameters_must_be_an_object():
    with pytest.raises(ValidationError, match="JSON object"):
        compose(noir(), FLUX_DEV, PROMPT, {"parameters": ["num_images", 2]})


def test_a_style_parameter_unknown_to_a_strict_schema_is_dropped():
    document = noir()
    document["parameters"] = {"duration": 8, "width": 640}
    document["model_adaptations"]["image"] = {"parameters": {"aspect_ratio": "1:1"}}

    result = compose(document, FLUX_DEV, PROMPT)

    assert "duration" not in result.parameters and "aspect_ratio" not in result.parameters
    assert result.parameters["width"] == 640
    assert result.metadata["parameters_dropped"] == ["aspect_ratio", "duration"]


def test_a_request_parameter_unknown_to_the_model_is_refused():
    with pytest.raises(ValidationError, match="duration"):
        compose(noir(), FLUX_DEV, PROMPT, {"parameters": {"duration": 8}})


def test_an_open_schema_keeps_the_styles_extra_parameters():
    open_model = with_model(FLUX_DEV, parameter_schema={"type": "object", "properties": {}})
    document = noir()
    document["parameters"] = {"loras_scale": 0.5}
    assert compose(document, open_model, PROMPT).parameters == {"loras_scale": 0.5}


def test_a_bad_style_value_for_a_declared_parameter_is_refused():
    document = noir()
    document["parameters"] = {"duration": 10}
    with pytest.raises(ValidationError, match="duration: 10 is greater than the maximum of 8"):
        compose(document, VEO3, PROMPT)
    # The request can put it right.
    assert compose(document, VEO3, PROMPT, {"parameters": {"duration": 8}}).parameters["duration"] == 8


# --- purity ----------------------------------------------------------------------------


def test_compose_is_deterministic_and_ignores_lora_key_order():
    document = noir()
    document["lora_configs"]["grain"] = GRAIN_LORA
    reordered = copy.deepcopy(document)
    reordered["lora_configs"] = dict(reversed(list(document["lora_configs"].items())))

    first = compose(document, FLUX_DEV, PROMPT, {"parameters": {"seed": 7}})
    second = compose(copy.deepcopy(document), FLUX_DEV, PROMPT, {"parameters": {"seed": 7}})
    third = compose(reordered, FLUX_DEV, PROMPT, {"parameters": {"seed": 7}})

    assert first == second == third
    assert first.prompt.index("grainy") < first.prompt.index("noirstyle")  # sorted by key: grain, noir


def test_compose_never_changes_its_inputs():
    document = noir()
    overrides = {"parameters": {"num_images": 2}, "negative_prompt": "blurry"}
    before = (copy.deepcopy(document), copy.deepcopy(overrides), copy.deepcopy(FLUX_GUIDE))
    compose(document, FLUX_DEV, PROMPT, overrides)
    assert (document, overrides, FLUX_DEV.prompt_guide) == before


def test_the_result_is_frozen():
    result = compose(noir(), FLUX_DEV, PROMPT)
    assert isinstance(result, ComposeResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.prompt = "other"


def test_a_real_catalog_model_instance_works_without_the_database():
    from generations.models import AIModel

    flux = AIModel(
        id="fal-ai/flux/dev",
        kind="image",
        credits_cost=25,
        max_prompt_length=1000,
        parameter_schema=image_schema(),
        prompt_guide=FLUX_GUIDE,
        supports_lora=True,
        supports_negative_prompt=True,
    )
    assert compose(noir(), flux, PROMPT) == compose(noir(), FLUX_DEV, PROMPT)
