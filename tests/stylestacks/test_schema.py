"""The style document v2: its schema, the upgrade from the old shape, and validation
messages that name the path at fault. Pure Python: no database."""

import copy
import json

import pytest
from django.core.exceptions import ValidationError

from stylestacks.schema import (
    BLOCK_NAMES,
    DEFAULT_WEIGHT,
    MAX_DOCUMENT_BYTES,
    SCHEMA_PATH,
    SCHEMA_VERSION,
    STYLE_SCHEMA,
    render_path,
    upgrade,
    validate_document,
)

# The film-noir genre stack from DOMAIN.md, in the v2 shape (defaults left out).
NOIR_V2 = {
    "schema_version": 2,
    "base_json": {"genre": "film_noir", "lighting": "high_contrast"},
    "prompt_blocks": {
        "description": {"text": "detective waits in a rain-soaked alley"},
        "style": {"text": "high-contrast black and white"},
        "camera": {"text": "low angle, dutch tilt"},
        "lighting": {"text": "venetian-blind shadows"},
        "setting": {"text": "1940s city at night"},
        "elements": {"items": ["fedora", "cigarette smoke"]},
        "motion": {"text": "slow push-in"},
        "ending": {"text": "his face revealed"},
        "keywords": {"items": ["noir", "shadows"]},
    },
    "model_adaptations": {"fal-ai/veo3": {"prompt_blocks": {"motion": {"text": "slow dolly through rain"}}}},
    "lora_configs": {
        "noir": {
            "model_id": "fal-ai/flux/dev",
            "lora_path": "https://example.com/loras/noir.safetensors",
            "weight": 0.8,
            "trigger_words": ["noirstyle"],
        }
    },
    "persistent_elements": [{"type": "character", "description": "tall man, grey trench coat", "weight": 1.5}],
}

# The same document as old clients store it.
NOIR_OLD = {
    "base_json": {"genre": "film_noir", "lighting": "high_contrast"},
    "prompt_blocks": {
        "description": "detective waits in a rain-soaked alley",
        "style": "high-contrast black and white",
        "camera": "low angle, dutch tilt",
        "lighting": "venetian-blind shadows",
        "setting": "1940s city at night",
        "elements": ["fedora", "cigarette smoke"],
        "motion": "slow push-in",
        "ending": "his face revealed",
        "keywords": ["noir", "shadows"],
    },
    "model_adaptations": {"fal-ai/veo3": {"motion": "slow dolly through rain"}},
    "lora_configs": {
        "noir": {
            "model_id": "fal-ai/flux/dev",
            "lora_path": "https://example.com/loras/noir.safetensors",
            "weight": 0.8,
            "trigger_words": ["noirstyle"],
        }
    },
    "persistent_elements": [{"type": "character", "description": "tall man, grey trench coat", "weight": 1.5}],
}


def messages_of(document) -> list[str]:
    with pytest.raises(ValidationError) as caught:
        validate_document(document)
    return caught.value.messages


def noir(**changes):
    """A deep copy of NOIR_V2 with top-level keys replaced."""
    document = copy.deepcopy(NOIR_V2)
    document.update(changes)
    return document


# --- the schema itself ----------------------------------------------------------------


def test_the_schema_is_the_json_file_served_as_is():
    assert STYLE_SCHEMA == json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    assert STYLE_SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert STYLE_SCHEMA["properties"]["schema_version"] == {"const": SCHEMA_VERSION}


def test_the_schema_declares_every_block_and_the_defaults_the_code_fills():
    assert set(STYLE_SCHEMA["$defs"]["prompt_blocks"]["properties"]) == set(BLOCK_NAMES)
    assert set(STYLE_SCHEMA["$defs"]["partial_prompt_blocks"]["properties"]) == set(BLOCK_NAMES)
    assert STYLE_SCHEMA["$defs"]["weight"]["default"] == DEFAULT_WEIGHT
    assert STYLE_SCHEMA["$defs"]["enabled"]["default"] is True
    assert len(BLOCK_NAMES) == 11


# --- valid documents ------------------------------------------------------------------


def test_the_noir_document_is_valid_and_gets_its_defaults():
    result = validate_document(NOIR_V2)

    assert result["schema_version"] == 2
    assert result["prompt_blocks"]["style"] == {"text": "high-contrast black and white", "weight": 1.0, "enabled": True}
    assert result["prompt_blocks"]["keywords"] == {"items": ["noir", "shadows"], "weight": 1.0, "enabled": True}
    assert result["lora_configs"]["noir"]["weight"] == 0.8
    assert result["persistent_elements"][0]["weight"] == 1.5
    assert result["base_json"] == {"genre": "film_noir", "lighting": "high_contrast"}
    # Adaptation blocks get no defaults: they would override the block they adapt.
    assert result["model_adaptations"]["fal-ai/veo3"]["prompt_blocks"]["motion"] == {"text": "slow dolly through rain"}


def test_validation_never_changes_its_input():
    before = copy.deepcopy(NOIR_V2)
    validate_document(NOIR_V2)
    assert NOIR_V2 == before


def test_missing_lora_and_element_weights_default_to_one():
    document = noir(
        lora_configs={"any": {"lora_path": "https://example.com/a.safetensors"}},
        persistent_elements=[{"type": "object", "description": "red umbrella"}],
    )
    result = validate_document(document)
    assert result["lora_configs"]["any"]["weight"] == 1.0
    assert result["persistent_elements"][0]["weight"] == 1.0


def test_an_empty_document_is_a_valid_empty_v2_document():
    assert validate_document({}) == {"schema_version": 2}
    assert upgrade({}) == {"schema_version": 2}


def test_base_json_and_parameters_are_free_form():
    document = noir(base_json={"palette": ["#000"], "nested": {"any": 1}}, parameters={"anything": [1, 2]})
    result = validate_document(document)
    assert result["base_json"]["nested"] == {"any": 1}
    assert result["parameters"] == {"anything": [1, 2]}


# --- the upgrade ----------------------------------------------------------------------


def test_the_old_shape_upgrades_to_the_same_v2_document():
    assert upgrade(NOIR_OLD) == NOIR_V2
    assert validate_document(NOIR_OLD) == validate_document(NOIR_V2)


def test_the_upgrade_never_changes_its_input():
    before = copy.deepcopy(NOIR_OLD)
    upgrade(NOIR_OLD)
    validate_document(NOIR_OLD)
    assert NOIR_OLD == before


def test_a_v2_document_passes_through_as_a_deep_copy():
    result = upgrade(NOIR_V2)
    assert result == NOIR_V2
    assert result is not NOIR_V2
    assert result["prompt_blocks"]["style"] is not NOIR_V2["prompt_blocks"]["style"]


def test_old_adaptations_keep_their_parameters_and_null_blocks_are_dropped():
    old = {
        "prompt_blocks": {"style": "sepia", "ending": None},
        "model_adaptations": {"video": {"motion": "drift", "keywords": ["slow"], "parameters": {"duration": 8}}},
    }
    assert upgrade(old) == {
        "schema_version": 2,
        "prompt_blocks": {"style": {"text": "sepia"}},
        "model_adaptations": {
            "video": {
                "prompt_blocks": {"motion": {"text": "drift"}, "keywords": {"items": ["slow"]}},
                "parameters": {"duration": 8},
            }
        },
    }


def test_a_wrong_type_in_an_old_block_is_reported_at_its_v2_path():
    messages = messages_of({"prompt_blocks": {"keywords": "noir, shadows"}})
    assert messages == ["prompt_blocks.keywords.items: 'noir, shadows' is not of type 'array'"]


def test_a_document_that_is_not_an_object_is_refused():
    with pytest.raises(ValidationError, match="must be a JSON object"):
        validate_document(["not", "a", "document"])


# --- invalid documents: the message names the path -------------------------------------


def with_block(name, block):
    document = noir()
    document["prompt_blocks"][name] = block
    return document


def with_element(index, **changes):
    document = noir(persistent_elements=[{"type": "object", "description": f"thing {i}"} for i in range(5)])
    document["persistent_elements"][index].update(changes)
    return document


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        pytest.param(
            with_block("style", {"text": "x" * 2001}),
            "prompt_blocks.style.text: 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx…' is too long",
            id="text-too-long",
        ),
        pytest.param(
            with_block("style", {"text": "sepia", "weight": 3}),
            "prompt_blocks.style.weight: 3 is greater than the maximum of 2",
            id="weight-3",
        ),
        pytest.param(
            with_block("style", {"text": "sepia", "weight": True}),
            "prompt_blocks.style.weight: True is not of type 'number'",
            id="weight-boolean",
        ),
        pytest.param(
            with_block("style", {"text": "sepia", "enabled": "yes"}),
            "prompt_blocks.style.enabled: 'yes' is not of type 'boolean'",
            id="enabled-not-boolean",
        ),
        pytest.param(
            noir(persistent_elements=[{"type": "object", "description": f"thing {i}"} for i in range(11)]),
            "persistent_elements: [...] is too long",
            id="eleven-persistent-elements",
        ),
        pytest.param(
            with_element(3, weight=2.5),
            "persistent_elements[3].weight: 2.5 is greater than the maximum of 2",
            id="persistent-element-weight",
        ),
        pytest.param(
            with_element(1, type="vehicle"),
            "persistent_elements[1].type: 'vehicle' is not one of",
            id="persistent-element-type",
        ),
        pytest.param(
            with_element(0, ref_url="not a url"),
            "persistent_elements[0].ref_url: 'not a url' does not match",
            id="persistent-element-ref-url",
        ),
        pytest.param(
            with_element(2, description="d" * 501),
            "persistent_elements[2].description:",
            id="persistent-element-description-too-long",
        ),
        pytest.param(
            noir(persistent_elements=[{"type": "character"}]),
            "persistent_elements[0]: 'description' is a required property",
            id="persistent-element-without-description",
        ),
        pytest.param(
            with_block("mood", {"text": "gloomy"}),
            "prompt_blocks: Additional properties are not allowed ('mood' was unexpected)",
            id="unknown-block-name",
        ),
        pytest.param(
            noir(tags=["noir"]),
            "Additional properties are not allowed ('tags' was unexpected)",
            id="unknown-top-level-key",
        ),
        pytest.param(
            noir(lora_configs={"noir": {"lora_path": "https://example.com/a.safetensors", "weight": -1}}),
            "lora_configs.noir.weight: -1 is less than the minimum of 0",
            id="lora-weight-negative",
        ),
        pytest.param(
            noir(lora_configs={"noir": {"lora_path": "x", "trigger_words": ["w"] * 21}}),
            "lora_configs.noir.trigger_words: [...] is too long",
            id="too-many-trigger-words",
        ),
        pytest.param(
            with_block("keywords", {"items": ["noir", 3]}),
            "prompt_blocks.keywords.items[1]: 3 is not of type 'string'",
            id="keyword-not-a-string",
        ),
        pytest.param(
            with_block("elements", {"items": ["thing"] * 51}),
            "prompt_blocks.elements.items: [...] is too long",
            id="too-many-elements",
        ),
        pytest.param(
            noir(model_adaptations={"fal-ai/veo3": {"prompt_blocks": {"motion": {"speed": "slow"}}}}),
            'model_adaptations["fal-ai/veo3"].prompt_blocks.motion: Additional properties are not allowed',
            id="adaptation-unknown-field",
        ),
        pytest.param(
            noir(model_adaptations={"video": {"negative_prompt": "blur"}}),
            "model_adaptations.video: Additional properties are not allowed ('negative_prompt' was unexpected)",
            id="adaptation-unknown-key",
        ),
        pytest.param(noir(schema_version=3), "schema_version: 2 was expected", id="wrong-version"),
    ],
)
def test_invalid_documents_are_refused_with_the_path_in_the_message(document, expected):
    messages = messages_of(document)
    assert any(message.startswith(expected) for message in messages), messages


def test_the_size_limit_is_on_the_serialized_document():
    overhead = len(json.dumps({"schema_version": 2, "base_json": {"notes": ""}}, separators=(",", ":")))
    fits = {"schema_version": 2, "base_json": {"notes": "n" * (MAX_DOCUMENT_BYTES - overhead)}}
    assert validate_document(fits) == fits

    too_large = {"schema_version": 2, "base_json": {"notes": "n" * (MAX_DOCUMENT_BYTES - overhead + 1)}}
    assert messages_of(too_large) == [
        f"The style document is {MAX_DOCUMENT_BYTES + 1} bytes; the limit is {MAX_DOCUMENT_BYTES} bytes."
    ]


def test_the_size_counts_bytes_not_characters():
    overhead = len(json.dumps({"schema_version": 2, "base_json": {"notes": ""}}, separators=(",", ":")))
    # "é" is two bytes in UTF-8.
    document = {"schema_version": 2, "base_json": {"notes": "é" * ((MAX_DOCUMENT_BYTES - overhead) // 2 + 1)}}
    with pytest.raises(ValidationError, match="the limit is"):
        validate_document(document)


def test_a_text_block_needs_its_text():
    assert messages_of(with_block("style", {"weight": 1})) == ["prompt_blocks.style: 'text' is a required property"]


def test_at_most_ten_errors_are_reported_sorted_by_path():
    document = noir(persistent_elements=[{"type": "object", "description": "x", "weight": 9} for _ in range(10)])
    document["prompt_blocks"]["style"]["weight"] = 9
    document["prompt_blocks"]["camera"]["weight"] = 9

    messages = messages_of(document)

    assert len(messages) == 10
    paths = [message.split(":", 1)[0] for message in messages]
    # Twelve errors; the first ten by path are the elements' ("persistent_elements" <
    # "prompt_blocks"), in index order.
    assert paths == [f"persistent_elements[{i}].weight" for i in range(10)]


def test_indices_sort_numerically_not_as_text():
    document = noir(persistent_elements=[{"type": "object", "description": "x"} for _ in range(11)])
    document["persistent_elements"][2]["weight"] = 5
    document["persistent_elements"][10]["weight"] = 5
    messages = messages_of(document)
    assert [m.split(":", 1)[0] for m in messages] == [
        "persistent_elements",  # too many
        "persistent_elements[2].weight",
        "persistent_elements[10].weight",
    ]


def test_a_document_that_is_not_json_is_refused():
    with pytest.raises(ValidationError, match="not valid JSON"):
        validate_document(noir(base_json={"ratio": float("nan")}))


@pytest.mark.parametrize(
    ("path", "rendered"),
    [
        ([], ""),
        (["persistent_elements", 3, "weight"], "persistent_elements[3].weight"),
        (["model_adaptations", "fal-ai/veo3", "parameters"], 'model_adaptations["fal-ai/veo3"].parameters'),
        (["prompt_blocks", "keywords", "items", 0], "prompt_blocks.keywords.items[0]"),
    ],
)
def test_render_path(path, rendered):
    assert render_path(path) == rendered
