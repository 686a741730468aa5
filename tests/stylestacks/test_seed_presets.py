"""The seeded preset library (stylestacks/migrations/0004_seed_presets.py and its
presets_v1.json): every preset is a complete v2 style document that composes for the
models it recommends, and the migration's reverse is safe."""

import importlib
import json
import re
from decimal import Decimal

import pytest
from django.apps import apps as global_apps
from django.core.exceptions import ValidationError

from generations.models import AIModel, Generation
from generations.schemas import validate_parameters
from stylestacks.compose import compose
from stylestacks.models import Category, StylePreset
from stylestacks.schema import LIST_BLOCKS, SCHEMA_VERSION, TEXT_BLOCKS, upgrade, validate_document

MIGRATION = importlib.import_module("stylestacks.migrations.0004_seed_presets")
SEEDED = MIGRATION.load_presets()
SEEDED_SLUGS = [preset["slug"] for preset in SEEDED]

LEGACY = [
    "Quentin Tarantino Style",
    "Martin Scorsese Style",
    "Christopher Nolan Style",
    "Wes Anderson Style",
    "Denis Villeneuve Style",
    "Film Noir Classic",
    "Cyberpunk Neon",
    "Golden Hour Portrait",
    "Natural Documentary",
    "Vintage Film",
    "Cinematic Epic",
    "Anime Style",
]
AREAS = ["photography", "illustration", "anime", "3d", "painting", "product", "architecture", "video-motion"]
KINDS = ("image", "video")
PROMPT = "a test prompt"
# A realistic prompt of 250 characters: the styles leave room for it on every model they
# recommend, so nothing of the style is trimmed (the model guide's own keywords may be).
LONG_PROMPT = ("an old fisherman mends a bright orange net on a weathered wooden pier at dawn, " * 4)[:250]
SLUG = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


@pytest.fixture
def presets(db) -> list[StylePreset]:
    return list(StylePreset.objects.filter(slug__in=SEEDED_SLUGS, is_active=True).order_by("sort_order"))


@pytest.fixture
def catalog(db) -> dict[str, AIModel]:
    return {model.id: model for model in AIModel.objects.all()}


def recommended_pairs(presets, catalog):
    for preset in presets:
        for model_id in preset.recommended_models:
            yield preset, catalog[model_id]


# --- the rows ---------------------------------------------------------------------------


def test_the_library_is_seeded_with_at_least_24_active_presets(presets):
    assert len(SEEDED) >= 24
    assert len(presets) == len(SEEDED)
    assert StylePreset.objects.filter(is_active=True).count() >= 24


def test_slugs_are_unique_kebab_case_and_names_unique():
    assert len(set(SEEDED_SLUGS)) == len(SEEDED_SLUGS)
    assert all(SLUG.match(slug) for slug in SEEDED_SLUGS), SEEDED_SLUGS
    names = [preset["name"] for preset in SEEDED]
    assert len(set(names)) == len(names)


def test_the_old_library_and_system_stacks_are_present(presets):
    names = {preset.name for preset in presets}
    assert set(LEGACY) <= names, set(LEGACY) - names


def test_the_rows_match_the_frozen_json(presets):
    by_slug = {preset.slug: preset for preset in presets}
    for data in SEEDED:
        row = by_slug[data["slug"]]
        for field in MIGRATION.FIELDS:
            assert getattr(row, field) == data[field], (data["slug"], field)
        assert row.rating == Decimal(str(data["rating"]))


def test_categories_cover_the_old_library_and_the_new_areas(presets):
    categories = {preset.category for preset in presets}
    assert {"director", "genre", "cinematic", "artistic"} <= categories
    assert categories & {"technique", "photographic"}
    assert categories <= set(Category.values)
    by_name = {preset.name: preset for preset in presets}
    assert {by_name[name].category for name in LEGACY[:5]} == {"director"}
    assert by_name["Film Noir Classic"].category == by_name["Cyberpunk Neon"].category == "genre"
    assert (by_name["Golden Hour Portrait"].category, by_name["Golden Hour Portrait"].subcategory) == (
        "technique",
        "lighting",
    )
    for area in AREAS:
        covering = [p.slug for p in presets if p.subcategory == area or area in p.tags]
        assert covering, f"no preset covers {area}"


def test_the_catalogue_fields_are_well_formed(presets):
    for preset in presets:
        assert preset.creator == "Velro"
        assert preset.complexity_level in StylePreset.Complexity.values
        assert 0 < len(preset.tags) <= 20
        assert all(tag == tag.lower() and tag.strip() == tag and 0 < len(tag) <= 40 for tag in preset.tags)
        assert len(set(preset.tags)) == len(preset.tags)
        assert preset.description and len(preset.description) <= 1000
        assert Decimal("4") <= preset.rating <= Decimal("5")
        assert preset.preview_image_url == ""
        assert len(preset.recommended_models) >= 2
    featured = [preset for preset in presets if preset.is_featured]
    assert 3 <= len(featured) <= len(presets) // 2
    orders = [preset.sort_order for preset in presets]
    assert len(set(orders)) == len(orders)


def test_recommended_models_exist_are_active_and_fit_the_purpose(presets, catalog):
    for preset, model in recommended_pairs(presets, catalog):
        assert model.is_active, (preset.slug, model.id)
    for preset in presets:
        kinds = {catalog[model_id].kind for model_id in preset.recommended_models}
        if preset.subcategory == "video-motion":
            assert kinds == {"video"}, preset.slug
        if preset.subcategory in {"photography", "illustration", "painting", "3d", "architecture", "product"}:
            assert "image" in kinds, preset.slug


# --- the style documents ----------------------------------------------------------------


def test_every_style_is_a_v2_document_that_validates_unchanged(presets):
    for preset in presets:
        style = preset.style
        assert style["schema_version"] == SCHEMA_VERSION == 2
        assert upgrade(style) == style  # already the v2 shape: nothing to convert
        validated = validate_document(style)
        assert validated["schema_version"] == 2
        # Validation only fills defaults: no block, adaptation or parameter changes.
        for name, block in style["prompt_blocks"].items():
            assert validated["prompt_blocks"][name] == {"weight": 1.0, "enabled": True, **block}, (preset.slug, name)
        for key in ("base_json", "model_adaptations", "parameters"):
            assert validated.get(key) == style.get(key), (preset.slug, key)


def test_every_style_is_complete(presets):
    for preset in presets:
        style, blocks = preset.style, preset.style["prompt_blocks"]
        assert len(style["base_json"]) >= 3, preset.slug
        required = {"description", "style", "camera", "lighting", "setting", "elements", "keywords", "negative"}
        assert required <= set(blocks), (preset.slug, required - set(blocks))
        for name, block in blocks.items():
            if name in TEXT_BLOCKS:
                assert len(block["text"].strip()) >= 10, (preset.slug, name)
            if name in LIST_BLOCKS:
                assert len(block["items"]) >= 3, (preset.slug, name)
        if preset.category == "cinematic" or preset.subcategory == "video-motion":
            assert {"motion", "ending"} <= set(blocks), preset.slug


def test_adaptations_are_keyed_by_catalog_ids_or_kinds_with_valid_parameters(presets, catalog):
    for preset in presets:
        adaptations = preset.style["model_adaptations"]
        assert len(adaptations) >= 2, preset.slug
        for key, adaptation in adaptations.items():
            assert key in catalog or key in KINDS, (preset.slug, key)
            assert adaptation, (preset.slug, key)
            models = [catalog[key]] if key in catalog else [m for m in catalog.values() if m.kind == key]
            for model in models:
                declared = set(model.parameter_schema["properties"])
                parameters = {k: v for k, v in adaptation.get("parameters", {}).items() if k in declared}
                validate_parameters(model.parameter_schema, parameters)  # raises on a bad value
            if key in catalog:
                # An exact adaptation targets that model: every key it sets is declared.
                assert set(adaptation.get("parameters", {})) <= set(catalog[key].parameter_schema["properties"])


def test_default_parameters_suit_every_recommended_model(presets, catalog):
    for preset in presets:
        defaults = preset.style.get("parameters", {})
        for model_id in preset.recommended_models:
            assert set(defaults) <= set(catalog[model_id].parameter_schema["properties"]), (preset.slug, model_id)


def test_loras_only_target_lora_capable_models(presets, catalog):
    with_loras = [preset for preset in presets if preset.style.get("lora_configs")]
    assert with_loras
    for preset in with_loras:
        for lora in preset.style["lora_configs"].values():
            assert catalog[lora["model_id"]].supports_lora, preset.slug
            assert lora["trigger_words"]


def test_film_noir_classic_carries_the_domain_example(presets):
    noir = next(preset for preset in presets if preset.name == "Film Noir Classic").style
    assert {"genre": "film_noir", "lighting": "high_contrast"}.items() <= noir["base_json"].items()
    texts = {name: block["text"] for name, block in noir["prompt_blocks"].items() if "text" in block}
    assert {
        "description": "detective waits in a rain-soaked alley",
        "style": "high-contrast black and white",
        "camera": "low angle, dutch tilt",
        "lighting": "venetian-blind shadows",
        "setting": "1940s city at night",
        "motion": "slow push-in",
        "ending": "his face revealed",
    }.items() <= texts.items()
    assert noir["prompt_blocks"]["elements"]["items"][:2] == ["fedora", "cigarette smoke"]
    assert noir["prompt_blocks"]["keywords"]["items"][:2] == ["noir", "shadows"]
    assert noir["model_adaptations"]["fal-ai/veo3"]["prompt_blocks"]["motion"]["text"] == "slow dolly through rain"
    [lora] = noir["lora_configs"].values()
    assert (lora["model_id"], lora["weight"], lora["trigger_words"]) == ("fal-ai/flux/dev", 0.8, ["noirstyle"])
    assert noir["persistent_elements"] == [
        {"type": "character", "description": "tall man, grey trench coat", "weight": 1.5}
    ]


# --- composing ----------------------------------------------------------------------------


def test_every_preset_composes_for_every_recommended_model(presets, catalog):
    checked = 0
    for preset, model in recommended_pairs(presets, catalog):
        result = compose(preset.style, model, PROMPT, {})
        where = (preset.slug, model.id)
        assert result.prompt.startswith(PROMPT), where
        assert len(result.prompt) <= model.max_prompt_length, where
        assert result.metadata["blocks_trimmed"] == [], where
        assert result.metadata["prompt_truncated"] is False, where
        assert result.metadata["parameters_dropped"] == [], where
        assert validate_parameters(model.parameter_schema, result.parameters) == result.parameters, where
        assert len(result.prompt) > len(PROMPT) + 200, where  # the style really contributed
        if model.supports_negative_prompt:
            assert "negative" in result.metadata["blocks_used"], where
        else:
            assert result.negative_prompt == "", where
        if model.kind == "video":
            assert result.metadata["motion_source"] == "block", where
        checked += 1
    assert checked >= 2 * len(presets)


def test_styles_leave_room_for_a_realistic_prompt_on_recommended_models(presets, catalog):
    for preset, model in recommended_pairs(presets, catalog):
        result = compose(preset.style, model, LONG_PROMPT, {})
        assert set(result.metadata["blocks_trimmed"]) <= {"guide_keywords"}, (preset.slug, model.id)
        assert len(result.prompt) <= model.max_prompt_length


def test_stills_do_not_get_camera_moves_and_videos_do(presets, catalog):
    """Image adaptations switch motion and ending off where a preset has them."""
    flux = catalog["fal-ai/flux/dev"]
    for preset in presets:
        motion = preset.style["prompt_blocks"].get("motion")
        if motion and flux.id in preset.recommended_models:
            result = compose(preset.style, flux, PROMPT, {})
            assert motion["text"] not in result.prompt, preset.slug
            assert "motion" not in result.metadata["blocks_used"], preset.slug


def test_every_preset_composes_for_every_active_model(presets, catalog):
    """People may pick any model for a preset: the style must never make compose fail."""
    for preset in presets:
        for model in catalog.values():
            if not model.is_active:
                continue
            try:
                result = compose(preset.style, model, PROMPT, {})
            except ValidationError as exc:
                pytest.fail(f"{preset.slug} on {model.id}: {exc.messages}")
            assert result.prompt.startswith(PROMPT)
            assert len(result.prompt) <= model.max_prompt_length


def test_the_noir_lora_trigger_reaches_flux_dev_only(presets, catalog):
    noir = next(preset for preset in presets if preset.slug == "film-noir-classic")
    dev = compose(noir.style, catalog["fal-ai/flux/dev"], PROMPT, {})
    assert "noirstyle" in dev.prompt
    assert [lora["key"] for lora in dev.metadata["loras_applied"]] == ["noir"]
    for model_id in ("fal-ai/stable-diffusion-v35-large", "fal-ai/veo3"):
        other = compose(noir.style, catalog[model_id], PROMPT, {})
        assert "noirstyle" not in other.prompt
    veo = compose(noir.style, catalog["fal-ai/veo3"], PROMPT, {})
    assert "Slow dolly through rain." in veo.prompt and veo.parameters["duration"] == 8


# --- the migration ------------------------------------------------------------------------


def test_the_json_file_is_the_migrations_only_data():
    source = MIGRATION.__file__
    with open(source, encoding="utf-8") as handle:
        code = handle.read()
    assert "stylestacks.schema" not in code and "from stylestacks" not in code
    assert MIGRATION.PRESETS_PATH.name == "presets_v1.json"
    assert json.loads(MIGRATION.PRESETS_PATH.read_text(encoding="utf-8")) == SEEDED
    dependencies = set(MIGRATION.Migration.dependencies)
    assert {("stylestacks", "0003_contributor_add"), ("generations", "0003_seed_catalog")} <= dependencies


def test_seeding_again_is_idempotent_and_restores_edits(presets):
    first = presets[0]
    StylePreset.objects.filter(pk=first.pk).update(name="Edited", is_active=False)
    MIGRATION.seed(global_apps, None)
    assert StylePreset.objects.filter(slug__in=SEEDED_SLUGS).count() == len(SEEDED)
    first.refresh_from_db()
    assert (first.name, first.is_active) == (SEEDED[0]["name"], True)


def test_the_reverse_keeps_referenced_and_other_presets(presets, catalog, alice):
    used, unused = presets[0], presets[1]
    other = StylePreset.objects.create(slug="staff-made", name="Staff made", style={"schema_version": 2})
    model = catalog["fal-ai/flux/dev"]
    Generation.objects.create(user=alice, ai_model=model, prompt="with a preset", preset=used)
    Generation.objects.create(user=alice, ai_model=model, prompt="without a preset")  # preset_id NULL

    MIGRATION.unseed(global_apps, None)

    remaining = set(StylePreset.objects.values_list("slug", flat=True))
    assert used.slug in remaining  # referenced by a generation
    assert other.slug in remaining  # not seeded by this migration
    assert unused.slug not in remaining
    assert remaining & set(SEEDED_SLUGS) == {used.slug}
