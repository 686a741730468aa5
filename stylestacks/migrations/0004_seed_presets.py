"""Seed the preset library: the old library's eight presets, the four old system stacks
and new presets for photography, illustration, anime, 3D, painting, product,
architecture and video motion.

The data lives in ``presets_v1.json`` next to this file and is frozen with the
migration: later changes to the library belong in a new migration (and a new file), not
in edits to this one. Staff curate the presets in the admin afterwards. The reverse
removes exactly these slugs, except presets that generations reference (their history
keeps pointing at them).
"""

import json
from decimal import Decimal
from pathlib import Path

from django.db import migrations

PRESETS_PATH = Path(__file__).with_name("presets_v1.json")

FIELDS = (
    "name",
    "category",
    "subcategory",
    "description",
    "creator",
    "tags",
    "complexity_level",
    "recommended_models",
    "preview_image_url",
    "is_featured",
    "sort_order",
    "style",
)


def load_presets() -> list[dict]:
    return json.loads(PRESETS_PATH.read_text(encoding="utf-8"))


def seed(apps, schema_editor):
    StylePreset = apps.get_model("stylestacks", "StylePreset")
    for preset in load_presets():
        defaults = {field: preset[field] for field in FIELDS}
        defaults["rating"] = Decimal(str(preset["rating"]))
        defaults["is_active"] = True
        StylePreset.objects.update_or_create(slug=preset["slug"], defaults=defaults)


def unseed(apps, schema_editor):
    StylePreset = apps.get_model("stylestacks", "StylePreset")
    Generation = apps.get_model("generations", "Generation")
    slugs = [preset["slug"] for preset in load_presets()]
    # preset_id is nullable: without the IS NOT NULL filter, NOT IN over a set holding a
    # NULL matches nothing and the reverse would silently delete nothing.
    referenced = Generation.objects.filter(preset__isnull=False).values("preset_id")
    StylePreset.objects.filter(slug__in=slugs).exclude(id__in=referenced).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("stylestacks", "0003_contributor_add"),
        ("generations", "0003_seed_catalog"),
        # generations.preset (read by the reverse) is added here.
        ("generations", "0005_style_references"),
    ]

    operations = [migrations.RunPython(seed, unseed)]
