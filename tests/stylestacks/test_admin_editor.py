"""The admin's structured style editor: fields per block and rows, errors on their field,
exact round trips with the JSON tab (every seeded preset included), which view a save
reads, and the change pages' layout."""

import copy
import difflib
import json
from html.parser import HTMLParser

import pytest
from django.contrib.admin.models import LogEntry

from stylestacks.editor import StyleEditor
from stylestacks.models import StylePreset, StylePresetVersion, StyleStack
from stylestacks.schema import validate_document
from stylestacks.services import stylestack_create

PRESETS = "/admin/stylestacks/stylepreset/"
STACKS = "/admin/stylestacks/stylestack/"
FLUX = "fal-ai/flux/dev"
VEO = "fal-ai/veo3"

RICH = validate_document(
    {
        "schema_version": 2,
        "base_json": {"genre": "noir", "year": 1947, "palette": ["black", "white"], "quoted": "42", "flag": True},
        "prompt_blocks": {
            "style": {"text": "high-contrast black and white", "weight": 1.2},
            "camera": {"text": "low angle", "weight": 1},
            "lighting": {"text": "venetian-blind shadows", "enabled": False},
            "negative": {"text": "colour"},
            "keywords": {"items": ["noir", "shadows"], "weight": 0.5},
            "ending": {"text": ""},
        },
        "model_adaptations": {
            VEO: {"prompt_blocks": {"motion": {"text": "slow dolly"}}, "parameters": {"duration": "8s"}},
            "image": {"parameters": {}},
        },
        "lora_configs": {
            "noir": {"model_id": FLUX, "lora_path": "loras/noir.safetensors", "weight": 0.8, "trigger_words": ["nr"]}
        },
        "persistent_elements": [
            {"type": "character", "description": "tall man, grey coat", "weight": 1.5, "color_match": False},
            {"type": "object", "description": "a red umbrella", "pose_weights": {"front": 0.5}},
        ],
        "parameters": {"guidance_scale": 4},
    }
)


class FormFields(HTMLParser):
    """What a browser would post for the change form, untouched: inputs (checked boxes
    only), textareas and selected options. The submit buttons are left out."""

    def __init__(self, form_id: str):
        super().__init__(convert_charrefs=True)
        self.form_id, self.inside, self.depth = form_id, False, 0
        self.data: list[tuple[str, str]] = []
        self._textarea = None
        self._select = None
        self._option = None
        self._template = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == self.form_id:
            self.inside = True
        if not self.inside:
            return
        if tag == "template":
            self._template += 1
        if self._template:
            return
        if tag == "input":
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "file") or "name" not in attrs:
                return
            if kind == "checkbox" and "checked" not in attrs:
                return
            self.data.append((attrs["name"], attrs.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "textarea":
            self._textarea = [attrs["name"], ""]
        elif tag == "select":
            self._select = [attrs["name"], None, None]  # name, selected, first
        elif tag == "option" and self._select is not None:
            value = attrs.get("value", "")
            if self._select[2] is None:
                self._select[2] = value
            if "selected" in attrs:
                self._select[1] = value

    def handle_endtag(self, tag):
        if not self.inside:
            return
        if tag == "template":
            self._template -= 1
        elif tag == "textarea" and self._textarea:
            name, text = self._textarea
            # A browser drops the newline that starts a textarea's content (Django writes one).
            self.data.append((name, text[1:] if text.startswith("\n") else text))
            self._textarea = None
        elif tag == "select" and self._select:
            name, selected, first = self._select
            self.data.append((name, selected if selected is not None else (first or "")))
            self._select = None
        elif tag == "form":
            self.inside = False

    def handle_data(self, data):
        if self._textarea is not None:
            self._textarea[1] += data


def page_data(response, form_id: str) -> dict:
    """The form's fields as posted by a browser (one value per name: no multi-selects here)."""
    parser = FormFields(form_id)
    parser.feed(response.content.decode())
    return dict(parser.data)


def pretty(document) -> str:
    return json.dumps(document, sort_keys=True, indent=1, ensure_ascii=False)


def diff(old, new) -> str:
    return "\n".join(difflib.unified_diff(pretty(old).splitlines(), pretty(new).splitlines(), lineterm=""))


def style_text(sql, table: str, pk) -> str:
    return sql(f"SELECT style::text FROM public.{table} WHERE id = %s", [pk])[0][0]


@pytest.fixture
def staff_client(staff, client):
    client.force_login(staff)
    return client


def make_preset(slug="test-noir", style=RICH, **fields) -> StylePreset:
    values = {"name": "Film Noir", "category": "genre", "style": style, "recommended_models": [FLUX]} | fields
    return StylePreset.objects.create(slug=slug, **values)


def open_preset(client, preset) -> dict:
    response = client.get(f"{PRESETS}{preset.pk}/change/")
    assert response.status_code == 200
    return page_data(response, "stylepreset_form")


# --- the structured view -------------------------------------------------------------


def test_the_editor_reads_a_document_into_fields_and_back_exactly(db):
    editor = StyleEditor(RICH)
    data = {}
    for form in [editor.blocks, editor.misc, *(f for fs in editor.formsets for f in [fs.management_form, *fs.forms])]:
        for field in form:
            value = field.value()
            if field.field.widget.input_type == "checkbox" if hasattr(field.field.widget, "input_type") else False:
                if value:
                    data[field.html_name] = "on"
                continue
            data[field.html_name] = "" if value is None else field.field.prepare_value(value)
    bound = StyleEditor(RICH, data=data)
    assert bound.is_valid(), bound.errors()
    assert json.dumps(bound.document, sort_keys=True) == json.dumps(RICH, sort_keys=True)
    assert bound.document["prompt_blocks"]["camera"]["weight"] == 1 and isinstance(
        bound.document["prompt_blocks"]["camera"]["weight"], int
    )
    assert bound.document["prompt_blocks"]["ending"] == {"text": "", "weight": 1.0, "enabled": True}


def test_the_change_page_shows_each_block_in_its_own_field(staff_client):
    preset = make_preset()
    data = open_preset(staff_client, preset)
    assert data["style_blocks-camera_text"] == "low angle"
    assert data["style_blocks-camera_weight"] == "1"
    assert data["style_blocks-style_weight"] == "1.2"
    assert "style_blocks-lighting_enabled" not in data  # unchecked
    assert data["style_blocks-keywords_items"] == "noir\nshadows"
    assert data["editor_mode"] == "structured"
    rows = {data[f"style_base-{i}-key"]: data[f"style_base-{i}-value"] for i in range(5)}
    assert rows == {"genre": "noir", "year": "1947", "palette": '["black", "white"]', "quoted": '"42"', "flag": "true"}
    assert data["style_loras-0-name"] == "noir" and data["style_loras-0-weight"] == "0.8"
    assert data["style_elements-0-type"] == "character" and data["style_elements-0-color_match"] == "false"
    assert json.loads(data["style"]) == RICH  # the JSON tab holds the same document


def test_saving_the_page_untouched_in_either_view_changes_nothing(staff_client, sql):
    preset = make_preset()
    before = sql("SELECT style::text, updated_at FROM public.style_stack_presets WHERE id = %s", [preset.pk])
    for mode in ("structured", "json"):
        data = open_preset(staff_client, preset) | {"editor_mode": mode}
        response = staff_client.post(f"{PRESETS}{preset.pk}/change/", data)
        assert response.status_code == 302, response.context["adminform"].form.errors
    after = sql("SELECT style::text, updated_at FROM public.style_stack_presets WHERE id = %s", [preset.pk])
    assert after == before
    assert not StylePresetVersion.objects.filter(preset=preset).exists()


def test_a_structured_save_of_one_block_changes_only_that_block(staff_client, sql):
    preset = make_preset()
    StylePreset.objects.filter(pk=preset.pk).update(usage_count=5)  # the trigger's, meanwhile
    data = open_preset(staff_client, preset)
    data["style_blocks-camera_text"] = "dutch angle, 35mm"
    response = staff_client.post(f"{PRESETS}{preset.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    preset.refresh_from_db()
    expected = copy.deepcopy(RICH)
    expected["prompt_blocks"]["camera"]["text"] = "dutch angle, 35mm"
    assert json.dumps(preset.style, sort_keys=True) == json.dumps(expected, sort_keys=True)
    assert preset.usage_count == 5
    version = StylePresetVersion.objects.get(preset=preset)
    assert (version.version, version.style) == (1, RICH)
    assert LogEntry.objects.filter(object_id=str(preset.pk), change_message__contains="Style").exists()


def test_a_json_save_shows_in_the_fields_and_saves_back_unchanged(staff_client, sql):
    preset = make_preset(style={"schema_version": 2})
    document = copy.deepcopy(RICH)
    document["prompt_blocks"]["motion"] = {"text": "slow pan", "weight": 0.25, "enabled": True}
    data = open_preset(staff_client, preset) | {"editor_mode": "json", "style": json.dumps(document)}
    assert staff_client.post(f"{PRESETS}{preset.pk}/change/", data).status_code == 302
    saved = style_text(sql, "style_stack_presets", preset.pk)

    data = open_preset(staff_client, preset)
    assert data["style_blocks-motion_text"] == "slow pan" and data["style_blocks-motion_weight"] == "0.25"
    assert staff_client.post(f"{PRESETS}{preset.pk}/change/", data).status_code == 302  # structured
    assert style_text(sql, "style_stack_presets", preset.pk) == saved


def test_a_structured_save_reads_back_identically_in_the_json_tab(staff_client):
    preset = make_preset(style={"schema_version": 2})
    data = open_preset(staff_client, preset)
    data |= {
        "style_blocks-lighting_text": "golden hour",
        "style_blocks-lighting_weight": "1.5",
        "style_blocks-elements_items": "a lighthouse\r\na gull\r\n",
        "style_base-0-key": "palette",
        "style_base-0-value": '["amber", "teal"]',
        "style_adaptations-0-model": VEO,
        "style_adaptations-0-parameters": '{"duration": "8s"}',
        "style_loras-0-name": "warm",
        "style_loras-0-lora_path": "loras/warm.safetensors",
        "style_loras-0-weight": "0.6",
        "style_elements-0-type": "location",
        "style_elements-0-description": "a rocky coast",
        "style_misc-parameters": '{"seed": 7}',
    }
    response = staff_client.post(f"{PRESETS}{preset.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    preset.refresh_from_db()
    assert preset.style == {
        "schema_version": 2,
        "base_json": {"palette": ["amber", "teal"]},
        "prompt_blocks": {
            "lighting": {"text": "golden hour", "weight": 1.5, "enabled": True},
            "elements": {"items": ["a lighthouse", "a gull"], "weight": 1.0, "enabled": True},
        },
        "model_adaptations": {VEO: {"parameters": {"duration": "8s"}}},
        "lora_configs": {"warm": {"lora_path": "loras/warm.safetensors", "weight": 0.6}},
        "persistent_elements": [{"type": "location", "description": "a rocky coast", "weight": 1.0}],
        "parameters": {"seed": 7},
    }
    shown = json.loads(open_preset(staff_client, preset)["style"])
    assert json.dumps(shown, sort_keys=True) == json.dumps(preset.style, sort_keys=True)


def test_every_seeded_preset_round_trips_through_the_structured_form(staff_client, sql):
    presets = list(StylePreset.objects.order_by("slug"))
    assert len(presets) >= 24
    for preset in presets:
        before = sql("SELECT style::text, updated_at, name FROM public.style_stack_presets WHERE id = %s", [preset.pk])
        data = open_preset(staff_client, preset)
        response = staff_client.post(f"{PRESETS}{preset.pk}/change/", data)  # structured, untouched
        assert response.status_code == 302, (preset.slug, response.context["adminform"].form.errors)
        # The fields alone rebuild the stored document, byte for byte in its normalised form.
        editor = StyleEditor(preset.style, data=data)
        assert editor.is_valid(), (preset.slug, editor.errors())
        normalised = validate_document(preset.style)
        assert pretty(editor.document) == pretty(normalised), diff(normalised, editor.document)
        after = sql("SELECT style::text, updated_at, name FROM public.style_stack_presets WHERE id = %s", [preset.pk])
        assert after == before, preset.slug
    assert not StylePresetVersion.objects.exists()


def test_the_tab_shown_when_saving_wins(staff_client):
    preset = make_preset()
    data = open_preset(staff_client, preset)
    from_json = copy.deepcopy(RICH)
    from_json["prompt_blocks"]["camera"]["text"] = "from the JSON tab"
    data |= {"style": json.dumps(from_json), "style_blocks-camera_text": "from the fields"}

    assert staff_client.post(f"{PRESETS}{preset.pk}/change/", data | {"editor_mode": "structured"}).status_code == 302
    preset.refresh_from_db()
    assert preset.style["prompt_blocks"]["camera"]["text"] == "from the fields"

    data = open_preset(staff_client, preset) | {"style": json.dumps(from_json), "editor_mode": "json"}
    data["style_blocks-camera_text"] = "ignored"
    assert staff_client.post(f"{PRESETS}{preset.pk}/change/", data).status_code == 302
    preset.refresh_from_db()
    assert preset.style["prompt_blocks"]["camera"]["text"] == "from the JSON tab"


def test_a_broken_json_tab_does_not_block_a_structured_save(staff_client):
    preset = make_preset()
    data = open_preset(staff_client, preset) | {"style": '{"schema_version": ', "style_blocks-camera_text": "wide"}
    assert staff_client.post(f"{PRESETS}{preset.pk}/change/", data).status_code == 302
    assert StylePreset.objects.get(pk=preset.pk).style["prompt_blocks"]["camera"]["text"] == "wide"


# --- errors on their fields ------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "form", "field", "message"),
    [
        ({"style_blocks-camera_text": "x" * 2001}, "blocks", "camera_text", "at most 2000 characters"),
        ({"style_blocks-style_weight": "3"}, "blocks", "style_weight", "from 0 to 2"),
        ({"style_blocks-style_weight": "heavy"}, "blocks", "style_weight", "Enter a number"),
        (
            {"style_blocks-keywords_items": "\n".join(f"k{i}" for i in range(51))},
            "blocks",
            "keywords_items",
            "At most 50",
        ),
        ({"style_blocks-keywords_items": "y" * 201}, "blocks", "keywords_items", "Line 1 has 201 characters"),
        ({"style_adaptations-0-model": "fal-ai/no-such-model"}, "adaptations", "model", "Select a valid choice"),
        ({"style_adaptations-0-parameters": "[1, 2]"}, "adaptations", "parameters", "JSON object"),
        ({"style_loras-0-weight": "-1"}, "loras", "weight", "from 0 to 2"),
        ({"style_loras-0-lora_path": ""}, "loras", "lora_path", "required"),
        ({"style_elements-1-weight": "2.5"}, "elements", "weight", "from 0 to 2"),
        ({"style_elements-0-ref_url": "not a url"}, "elements", "ref_url", "does not match"),
        ({"style_misc-parameters": "{oops"}, "misc", "parameters", "Not valid JSON"),
    ],
)
def test_each_error_lands_on_its_field_and_nothing_is_written(staff_client, sql, changes, form, field, message):
    preset = make_preset()
    before = style_text(sql, "style_stack_presets", preset.pk)
    data = open_preset(staff_client, preset) | changes
    response = staff_client.post(f"{PRESETS}{preset.pk}/change/", data)
    assert response.status_code == 200
    editor = response.context["adminform"].form.editor
    if form in ("blocks", "misc"):
        errors = getattr(editor, form).errors
    else:
        index = int(next(iter(changes)).split("-")[1])
        errors = getattr(editor, form).forms[index].errors
    assert field in errors, editor.errors()
    assert any(message in text for text in errors[field]), errors[field]
    others = {name for name in editor.errors() if not name.endswith(field)}
    assert others == set(), others  # one error, on its own field
    assert style_text(sql, "style_stack_presets", preset.pk) == before
    assert "see the fields marked" in response.content.decode()


def test_a_model_adapted_twice_is_an_error_on_the_second_row(staff_client):
    preset = make_preset()
    data = open_preset(staff_client, preset) | {"style_adaptations-2-model": VEO}  # the empty row
    editor = staff_client.post(f"{PRESETS}{preset.pk}/change/", data).context["adminform"].form.editor
    assert "twice" in editor.adaptations.forms[2].errors["model"][0]
    assert StylePreset.objects.get(pk=preset.pk).style == RICH


def test_rows_can_be_deleted_and_added(staff_client):
    preset = make_preset()
    data = open_preset(staff_client, preset)
    data |= {"style_elements-0-DELETE": "on", "style_base-5-key": "mood", "style_base-5-value": "bleak"}
    data["style_base-TOTAL_FORMS"] = "6"  # what the page's "Add a row" does; row 5 is the extra one
    response = staff_client.post(f"{PRESETS}{preset.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    preset.refresh_from_db()
    assert [e["description"] for e in preset.style["persistent_elements"]] == ["a red umbrella"]
    assert preset.style["base_json"]["mood"] == "bleak"


# --- style stacks ----------------------------------------------------------------------


def test_a_stack_is_edited_in_the_structured_view_and_keeps_a_version_by_its_staff_author(alice, staff, staff_client):
    stack = stylestack_create(user=alice, name="Noir stack", style=RICH)
    response = staff_client.get(f"{STACKS}{stack.pk}/change/")
    data = page_data(response, "stylestack_form")
    assert data["style_blocks-camera_text"] == "low angle"
    data["style_blocks-camera_text"] = "overhead"
    response = staff_client.post(f"{STACKS}{stack.pk}/change/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    stack = StyleStack.objects.get(pk=stack.pk)
    assert (stack.version, stack.style["prompt_blocks"]["camera"]["text"]) == (2, "overhead")
    version = stack.versions.get()
    assert (version.version, version.changed_by_id) == (1, staff.pk)


# --- the page ---------------------------------------------------------------------------


def test_the_change_page_has_the_editor_hooks_and_a_cleared_try_box(staff_client):
    preset = make_preset()
    content = staff_client.get(f"{PRESETS}{preset.pk}/change/").content.decode()
    for hook in (
        'id="style-editor-tab-structured"',
        'id="style-editor-tab-json"',
        'id="style-live-preview"',
        'id="style-history-link"',
        'name="style_blocks-camera_text"',
        'data-preview-url="/admin/stylestacks/stylepreset/preview/"',
        "stylestacks/style_editor.js",
    ):
        assert hook in content, hook
    assert 'id="preset-preview-try" class="module" style="clear:both' in content
    assert 'name="tags" value="" size="90"' in content or 'size="90"' in content.split('name="tags"')[1][:200]


def test_the_add_page_has_the_editor_and_creates_a_preset_from_the_fields(staff_client):
    response = staff_client.get(f"{PRESETS}add/")
    data = page_data(response, "stylepreset_form")
    data |= {"name": "Dawn", "slug": "test-dawn", "style_blocks-lighting_text": "first light"}
    response = staff_client.post(f"{PRESETS}add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert StylePreset.objects.get(slug="test-dawn").style == {
        "schema_version": 2,
        "prompt_blocks": {"lighting": {"text": "first light", "weight": 1.0, "enabled": True}},
    }
