"""Presets as JSON files: presets_export / presets_import and the export_presets /
import_presets commands."""

import copy
import io
import json
from decimal import Decimal
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError

from stylestacks.management.commands.import_presets import Command as ImportCommand
from stylestacks.models import StylePreset
from stylestacks.presets_io import EXPORT_FIELDS, presets_dumps, presets_export, presets_import, presets_load

FLUX = "fal-ai/flux/dev"
VEO = "fal-ai/veo3"
NOIR = {
    "schema_version": 2,
    "prompt_blocks": {
        "style": {"text": "high-contrast black and white", "weight": 1.2, "enabled": True},
        "lighting": {"text": "venetian-blind shadows", "weight": 1.0, "enabled": True},
    },
}


def make_preset(slug="test-noir", **fields) -> StylePreset:
    values = {"name": "Test Noir", "category": "genre", "style": NOIR, "recommended_models": [FLUX]} | fields
    return StylePreset.objects.create(slug=slug, **values)


def entry(slug="test-noir", **fields) -> dict:
    return {"slug": slug, "name": "Test Noir", "style": NOIR, "recommended_models": [FLUX]} | fields


def bad_style() -> dict:
    style = copy.deepcopy(NOIR)
    style["prompt_blocks"]["style"]["weight"] = 3
    return style


def run(command, *args, **options) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(command, *args, stdout=out, stderr=err, **options)
    return out.getvalue(), err.getvalue()


def snapshot() -> dict:
    """Every preset's exported fields plus updated_at, by slug: what 'nothing written' compares."""
    rows = StylePreset.objects.values("slug", "updated_at", *[f for f in EXPORT_FIELDS if f != "slug"])
    return {row["slug"]: row for row in rows}


# --- export -------------------------------------------------------------------------


def test_export_lists_every_editable_field_in_a_stable_order_without_ids_or_counters(db):
    make_preset(tags=["noir", "shadows"], rating=Decimal("4.50"), usage_count=9)
    [exported] = presets_export(StylePreset.objects.filter(slug="test-noir"))
    assert tuple(exported) == EXPORT_FIELDS
    assert exported["rating"] == 4.5 and exported["tags"] == ["noir", "shadows"]
    assert exported["style"] == NOIR
    text = presets_dumps(presets_export(StylePreset.objects.all()))
    assert text == presets_dumps(presets_export(StylePreset.objects.order_by("-name")))  # same file either way
    assert text.startswith('[\n  {\n    "slug": ') and text.endswith("]\n")
    assert '"usage_count"' not in text and '"id"' not in text and '"created_at"' not in text


def test_the_export_command_writes_a_file_or_stdout_and_filters_by_slug(db, tmp_path):
    make_preset()
    make_preset("test-sepia", name="Test Sepia")
    target = tmp_path / "presets.json"
    out, _ = run("export_presets", output=str(target))
    everything = json.loads(target.read_text())
    assert {"test-noir", "test-sepia"} <= {e["slug"] for e in everything}
    assert out.strip() == f"Exported {len(everything)} preset(s) to {target}."

    out, err = run("export_presets", "--slug", "test-sepia", "--slug", "test-noir")
    assert [e["slug"] for e in json.loads(out)] == ["test-noir", "test-sepia"]
    assert "Exported 2 preset(s)." in err

    with pytest.raises(CommandError, match="No preset with slug\\(s\\): nope"):
        run("export_presets", "--slug", "nope", "--slug", "test-noir")


# --- round trip ---------------------------------------------------------------------


def test_export_then_import_round_trip_dry_run_first(db, tmp_path):
    make_preset()
    make_preset("test-sepia", name="Test Sepia")
    target = tmp_path / "presets.json"
    run("export_presets", output=str(target))

    # An untouched export imports as "unchanged" throughout (seeded presets included).
    out, _ = run("import_presets", str(target), dry_run=True)
    entries = json.loads(target.read_text())
    assert out.count("unchanged (would)") == len(entries)

    for item in entries:
        if item["slug"] == "test-noir":
            item["name"] = "Test Noir (edited)"
            item["style"]["prompt_blocks"]["style"]["text"] = "sepia-toned"
    target.write_text(json.dumps(entries))
    before = snapshot()

    out, _ = run("import_presets", str(target), dry_run=True)
    position = [e["slug"] for e in entries].index("test-noir") + 1
    assert f"[{position}/{len(entries)}] test-noir: update: name, style (would)" in out.splitlines()
    assert "[" in out and out.count("unchanged (would)") == len(entries) - 1
    assert "Dry run: 0 to create, 1 to update" in out and "Nothing was written." in out
    assert snapshot() == before

    out, _ = run("import_presets", str(target))
    assert f"[{position}/{len(entries)}] test-noir: update: name, style (done)" in out.splitlines()
    assert "Imported: 0 created, 1 updated" in out
    noir = StylePreset.objects.get(slug="test-noir")
    assert noir.name == "Test Noir (edited)"
    assert noir.style["prompt_blocks"]["style"]["text"] == "sepia-toned"
    after = snapshot()
    assert {slug for slug in after if after[slug] != before[slug]} == {"test-noir"}


def test_import_creates_new_presets_with_normalised_fields(db):
    report = presets_import(
        [
            entry(
                "test-new",
                style={"prompt_blocks": {"style": "grainy"}},  # the old shape
                tags=["Grain", "grain ", "FILM"],
                recommended_models=[VEO, FLUX, VEO],
                rating="3.25",
            )
        ],
        dry_run=False,
    )
    assert [(i.slug, i.describe()) for i in report.items] == [("test-new", "create")]
    created = StylePreset.objects.get(slug="test-new")
    assert created.style == {
        "schema_version": 2,
        "prompt_blocks": {"style": {"text": "grainy", "weight": 1.0, "enabled": True}},
    }
    assert (created.tags, created.recommended_models, created.rating) == (
        ["grain", "film"],
        [VEO, FLUX],
        Decimal("3.25"),
    )
    assert (created.is_active, created.category, created.usage_count) == (True, "general", 0)  # defaults


def test_fields_an_entry_leaves_out_keep_their_values_and_counters_are_untouched(db):
    preset = make_preset(description="kept", is_featured=True)
    StylePreset.objects.filter(pk=preset.pk).update(usage_count=12)
    report = presets_import([{"slug": "test-noir", "name": "Renamed"}], dry_run=False)
    assert report.items[0].describe() == "update: name"
    preset.refresh_from_db()
    assert (preset.name, preset.description, preset.is_featured, preset.usage_count) == ("Renamed", "kept", True, 12)


def test_progress_is_reported_once_per_preset_in_file_order(db):
    make_preset()
    seen = []
    presets_import(
        [entry(), entry("test-b", name="B")],
        dry_run=True,
        progress=lambda position, total, item: seen.append((position, total, item.slug, item.action)),
    )
    assert seen == [(1, 2, "test-noir", "unchanged"), (2, 2, "test-b", "create")]


# --- failures write nothing ---------------------------------------------------------


def test_one_invalid_entry_stops_the_whole_import_and_names_slug_and_path(db):
    make_preset()
    before = snapshot()
    entries = [entry(name="Changed"), entry("test-broken", style=bad_style())]
    with pytest.raises(ValidationError) as caught:
        presets_import(entries, dry_run=False)
    assert caught.value.messages == [
        "test-broken: style: prompt_blocks.style.weight: 3 is greater than the maximum of 2"
    ]
    assert snapshot() == before
    assert not StylePreset.objects.filter(slug="test-broken").exists()


def test_a_duplicate_slug_in_the_file_is_an_error_and_nothing_is_written(db):
    before = snapshot()
    with pytest.raises(ValidationError) as caught:
        presets_import([entry("test-twice"), entry("test-other"), entry("test-twice", name="Again")], dry_run=False)
    assert caught.value.messages == ["test-twice: slug: appears more than once (first as entry 1)."]
    assert snapshot() == before


def test_every_problem_of_every_entry_is_reported_with_slug_and_field(db):
    entries = [
        entry("test-a", recommended_models=[FLUX, "fal-ai/nope"], rating=7, is_active="yes"),
        entry("test-b", category="poetry", tags="noir", colour="red"),
        {"name": "No slug"},
        {"slug": "test-c", "style": NOIR},  # a new preset needs a name
        "not an object",
        entry("test-d", style=bad_style(), sort_order=1.5, preview_image_url="javascript:alert(1)"),
    ]
    with pytest.raises(ValidationError) as caught:
        presets_import(entries, dry_run=True)
    messages = caught.value.messages
    expected = [
        "test-a: recommended_models: Unknown AI model(s): fal-ai/nope.",
        "test-a: is_active: must be true or false.",
        "test-b: unknown field(s): colour.",
        "test-b: tags: must be a list of strings.",
        "test-b: category: Value 'poetry' is not a valid choice.",
        "entry 3: slug: This field cannot be blank.",
        "test-c: name: This field cannot be blank.",
        "entry 5: must be a JSON object.",
        "test-d: sort_order: must be a whole number.",
        "test-d: style: prompt_blocks.style.weight: 3 is greater than the maximum of 2",
        "test-d: preview_image_url: Enter a valid URL.",
    ]
    for message in expected:
        assert message in messages
    assert any(m.startswith("test-a: ") and "presets_rating_range" in m for m in messages)
    assert not StylePreset.objects.filter(slug__startswith="test-").exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"{not json", "The file is not valid JSON"), (b'{"slug": "x"}', "must hold a JSON list"), (b"\xff", "UTF-8")],
)
def test_a_file_that_is_not_a_json_list_is_refused(content, message):
    with pytest.raises(ValidationError, match=message):
        presets_load(content)


def test_the_import_command_fails_with_every_error_and_a_non_zero_exit(db, tmp_path, capsys):
    make_preset()
    before = snapshot()
    target = tmp_path / "bad.json"
    target.write_text(json.dumps([entry(name="Changed"), entry("test-broken", style=bad_style())]))

    with pytest.raises(CommandError, match="1 error\\(s\\) in .*; nothing was imported."):
        run("import_presets", str(target))
    assert snapshot() == before

    # As from the shell: the message on stderr and exit status 1. (run_from_argv closes
    # every connection when it ends, which would end the test's transaction.)
    with mock.patch("django.core.management.base.connections.close_all"), pytest.raises(SystemExit) as exited:
        ImportCommand().run_from_argv(["manage.py", "import_presets", str(target)])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert "test-broken: style: prompt_blocks.style.weight: 3 is greater than the maximum of 2" in err
    assert snapshot() == before

    with pytest.raises(CommandError, match="Cannot read"):
        run("import_presets", str(tmp_path / "missing.json"))
