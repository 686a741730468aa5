"""The style editor's live preview: POST the unsaved change form, get the composed
prompt per recommended model; staff only, CSRF-protected, field errors as a 400."""

import pytest
from django.core.cache import cache
from django.test import Client

from stylestacks.models import StylePreset
from tests.stylestacks.test_admin_editor import FLUX, PRESETS, RICH, make_preset, open_preset

URL = f"{PRESETS}preview/"


@pytest.fixture
def staff_client(staff, client):
    client.force_login(staff)
    return client


def test_staff_see_the_unsaved_change_composed_for_each_model(staff_client):
    preset = make_preset()
    data = open_preset(staff_client, preset)
    data["style_blocks-camera_text"] = "extreme dutch angle"
    response = staff_client.post(URL, data)
    assert response.status_code == 200, response.content
    body = response.json()
    assert [p["model"] for p in body["previews"]] == [FLUX]
    assert "extreme dutch angle" in body["previews"][0]["prompt"]
    assert "extreme dutch angle" in body["html"] and 'class="preset-preview-prompt"' in body["html"]
    assert body["document"]["prompt_blocks"]["camera"]["text"] == "extreme dutch angle"
    assert StylePreset.objects.get(pk=preset.pk).style == RICH  # nothing saved


def test_the_json_tab_and_the_models_field_are_previewed_too(staff_client):
    preset = make_preset()
    data = open_preset(staff_client, preset) | {
        "editor_mode": "json",
        "style": '{"schema_version": 2, "prompt_blocks": {"style": {"text": "pastel watercolour"}}}',
        "recommended_models": "fal-ai/veo3",
        "render_editor": "1",
    }
    body = staff_client.post(URL, data).json()
    assert [p["model"] for p in body["previews"]] == ["fal-ai/veo3"]
    assert "pastel watercolour" in body["previews"][0]["prompt"]
    assert "pastel watercolour" in body["editor_html"]  # the fields the structured tab gets


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"style_blocks-style_weight": "3"}, "style_blocks-style_weight"),
        ({"style_loras-0-weight": "-1"}, "style_loras-0-weight"),
        ({"recommended_models": "fal-ai/nope"}, "recommended_models"),
        ({"editor_mode": "json", "style": "{"}, "style"),
    ],
)
def test_bad_input_is_a_400_naming_the_field(staff_client, changes, field):
    preset = make_preset()
    response = staff_client.post(URL, open_preset(staff_client, preset) | changes)
    assert response.status_code == 400
    assert field in response.json()["errors"], response.json()


def test_the_preview_is_for_staff_only(alice, client, staff_client):
    preset = make_preset()
    data = open_preset(staff_client, preset)
    client.force_login(alice)
    response = client.post(URL, data)
    assert response.status_code == 302 and "/login/" in response["Location"]
    assert Client().post(URL, data).status_code == 302


def test_the_preview_needs_the_csrf_token_and_a_post(staff):
    cache.clear()
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    preset = make_preset()
    page = client.get(f"{PRESETS}{preset.pk}/change/")
    assert page.status_code == 200
    from tests.stylestacks.test_admin_editor import page_data

    data = page_data(page, "stylepreset_form")
    without = {key: value for key, value in data.items() if key != "csrfmiddlewaretoken"}
    assert client.post(URL, without).status_code == 403
    assert client.post(URL, data).status_code == 200  # the page's own token
    assert client.get(URL).status_code == 405
