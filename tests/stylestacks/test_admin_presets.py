"""The admin's preset library (edit, preview, actions, import page) and style stack
moderation screens."""

import copy
import json

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from stylestacks.models import StackContributor, StackInvite, StylePreset, StyleStack, StyleStackVersion
from stylestacks.services import stylestack_create
from tests.factories import UserFactory

PRESETS = "/admin/stylestacks/stylepreset/"
STACKS = "/admin/stylestacks/stylestack/"
FLUX = "fal-ai/flux/dev"  # seeded: keyword_weighted, negative prompts, closed parameter schema
VEO = "fal-ai/veo3"
SAMPLE = "a lone figure at the edge of a cliff"

NOIR = {
    "schema_version": 2,
    "prompt_blocks": {
        "style": {"text": "high-contrast black and white", "weight": 1.2},
        "lighting": {"text": "venetian-blind shadows"},
        "negative": {"text": "colour"},
    },
}


def make_preset(slug="test-noir", **fields) -> StylePreset:
    values = {"name": "Film Noir", "category": "genre", "style": NOIR, "recommended_models": [FLUX]} | fields
    return StylePreset.objects.create(slug=slug, **values)


def preset_form_data(preset: StylePreset, **changes) -> dict:
    data = {
        "name": preset.name,
        "slug": preset.slug,
        "category": preset.category,
        "subcategory": preset.subcategory,
        "description": preset.description,
        "creator": preset.creator,
        "complexity_level": preset.complexity_level,
        "tags": ", ".join(preset.tags),
        "rating": str(preset.rating),
        "sort_order": preset.sort_order,
        "preview_image_url": preset.preview_image_url,
        "style": json.dumps(preset.style),
        "recommended_models": ", ".join(preset.recommended_models),
    }
    for flag in ("is_active", "is_featured"):
        if getattr(preset, flag):
            data[flag] = "on"
    data.update(changes)
    return data


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def act(client, url, action, objects):
    data = {"action": action, "_selected_action": [str(o.pk) for o in objects]}
    response = client.post(url, data, follow=True)
    assert response.redirect_chain and response.redirect_chain[0][1] == 302
    return response


@pytest.fixture
def staff_client(staff, client):
    client.force_login(staff)
    return client


# --- the edit form ------------------------------------------------------------------


def test_an_invalid_style_is_an_error_on_the_field_naming_the_path_and_nothing_is_written(staff_client):
    preset = make_preset()
    bad = copy.deepcopy(NOIR)
    bad["prompt_blocks"]["style"]["weight"] = 3
    response = staff_client.post(f"{PRESETS}{preset.pk}/change/", preset_form_data(preset, style=json.dumps(bad)))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"style"}
    assert "prompt_blocks.style.weight: 3 is greater than the maximum of 2" in errors["style"]
    preset.refresh_from_db()
    assert preset.style == NOIR


def test_malformed_json_is_an_error_on_the_style_field(staff_client):
    preset = make_preset()
    response = staff_client.post(f"{PRESETS}{preset.pk}/change/", preset_form_data(preset, style='{"schema_version": '))
    assert set(response.context["adminform"].form.errors) == {"style"}
    assert StylePreset.objects.get(pk=preset.pk).style == NOIR


def test_a_staff_edit_of_a_preset_is_visible_through_the_api(staff_client, api):
    preset = make_preset(tags=["noir"])
    old_shape = {"prompt_blocks": {"style": "sepia, grainy film", "keywords": ["vintage"]}}
    response = staff_client.post(
        f"{PRESETS}{preset.pk}/change/",
        preset_form_data(
            preset,
            name="Film Noir (sepia)",
            style=json.dumps(old_shape),
            tags="Noir, VINTAGE, noir , ",
            recommended_models=f"{FLUX}, {VEO}, {FLUX}",
        ),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    preset.refresh_from_db()
    normalised = {
        "schema_version": 2,
        "prompt_blocks": {
            "style": {"text": "sepia, grainy film", "weight": 1.0, "enabled": True},
            "keywords": {"items": ["vintage"], "weight": 1.0, "enabled": True},
        },
    }
    assert preset.style == normalised
    assert (preset.tags, preset.recommended_models) == (["noir", "vintage"], [FLUX, VEO])

    body = api.get(f"/api/v1/presets/{preset.slug}").json()
    assert body["name"] == "Film Noir (sepia)"
    assert body["style"] == normalised
    assert body["tags"] == ["noir", "vintage"]
    assert LogEntry.objects.filter(object_id=str(preset.pk)).exists()


def test_saving_leaves_the_usage_counters_to_their_trigger(staff_client):
    preset = make_preset()
    page = staff_client.get(f"{PRESETS}{preset.pk}/change/")  # staff opens the page …
    data = preset_form_data(page.context["original"], name="Renamed")
    StylePreset.objects.filter(pk=preset.pk).update(usage_count=7)  # … someone generates meanwhile …
    assert staff_client.post(f"{PRESETS}{preset.pk}/change/", data).status_code == 302  # … staff saves
    preset.refresh_from_db()
    assert (preset.name, preset.usage_count) == ("Renamed", 7)


def test_an_unknown_recommended_model_is_refused_on_its_field(staff_client):
    preset = make_preset()
    response = staff_client.post(
        f"{PRESETS}{preset.pk}/change/", preset_form_data(preset, recommended_models=f"{FLUX}, fal-ai/nope")
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"recommended_models"}
    assert errors["recommended_models"] == ["Unknown AI model(s): fal-ai/nope."]
    assert StylePreset.objects.get(pk=preset.pk).recommended_models == [FLUX]


def test_more_than_twenty_distinct_tags_are_refused(staff_client):
    preset = make_preset()
    tags = ", ".join(f"tag{i}" for i in range(21))
    response = staff_client.post(f"{PRESETS}{preset.pk}/change/", preset_form_data(preset, tags=tags))
    assert set(response.context["adminform"].form.errors) == {"tags"}


def test_a_preset_can_be_added(staff_client):
    data = preset_form_data(StylePreset())  # the model's defaults
    data.update(name="Sepia", slug="test-sepia", category="photographic", style=json.dumps(NOIR), rating="4.5")
    page = staff_client.get(f"{PRESETS}add/")
    assert page.status_code == 200 and "Preview" not in [f[0] for f in page.context["adminform"].fieldsets]
    response = staff_client.post(f"{PRESETS}add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    created = StylePreset.objects.get(slug="test-sepia")
    assert created.style["prompt_blocks"]["lighting"]["weight"] == 1.0  # normalised
    assert str(created.rating) == "4.50"


def test_the_list_filters_searches_and_edits_the_order(staff_client):
    noir = make_preset(tags=["quuxtone"], sort_order=5)
    sepia = make_preset("test-sepia", name="Sepia", category="photographic", is_active=False)
    response = staff_client.get(PRESETS)
    assert response.status_code == 200
    assert {p.pk for p in response.context["cl"].result_list} >= {noir.pk, sepia.pk}
    assert set(response.context["cl"].formset.forms[0].fields) == {"sort_order", "id"}
    assert f'href="{PRESETS}import/"' in response.content.decode()

    assert [p.pk for p in staff_client.get(PRESETS, {"q": "quuxtone"}).context["cl"].result_list] == [noir.pk]
    inactive = staff_client.get(PRESETS, {"is_active__exact": "0"}).context["cl"].result_list
    assert sepia.pk in {p.pk for p in inactive} and noir.pk not in {p.pk for p in inactive}


# --- preview ------------------------------------------------------------------------


def test_the_change_page_previews_the_composed_prompt_for_each_recommended_model(staff_client):
    preset = make_preset(recommended_models=[FLUX, VEO])
    page = staff_client.get(f"{PRESETS}{preset.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert f"{SAMPLE}, (high-contrast black and white:1.2), venetian-blind shadows" in content  # flux, keywords
    assert f"{SAMPLE}. Style: high-contrast black and white. Lighting: venetian-blind shadows." in content  # veo
    assert "colour, blurry, low quality" in content  # flux's negative prompt: the style's, then the guide's
    assert "&quot;guidance_scale&quot;: 3.5" in content  # the parameters, as JSON
    assert 'id="preset-preview-form"' in content and f"{PRESETS}{preset.pk}/preview/" in content


def test_without_recommended_models_the_preview_uses_the_first_image_and_video_models(staff_client):
    preset = make_preset(recommended_models=[])
    body = staff_client.get(f"{PRESETS}{preset.pk}/preview/", {"format": "json"}).json()
    kinds = [p["kind"] for p in body["previews"]]
    assert kinds == ["image", "video"]
    assert all(p["prompt"].startswith(SAMPLE) and p["error"] is None for p in body["previews"])


def test_a_compose_error_is_shown_as_text_not_a_500(staff_client):
    preset = make_preset(style={**NOIR, "parameters": {"width": 100}})  # below flux's minimum of 256
    page = staff_client.get(f"{PRESETS}{preset.pk}/change/")
    assert page.status_code == 200
    assert 'class="errornote preset-preview-error"' in page.content.decode()
    body = staff_client.get(f"{PRESETS}{preset.pk}/preview/", {"format": "json"}).json()
    [preview] = body["previews"]
    assert preview["model"] == FLUX and "width" in preview["error"] and preview["prompt"] == ""


def test_the_preview_view_composes_for_another_model_and_prompt(staff_client):
    preset = make_preset()
    response = staff_client.get(
        f"{PRESETS}{preset.pk}/preview/", {"model": VEO, "prompt": "a lighthouse in a storm", "format": "json"}
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["preset"], body["prompt"]) == ("test-noir", "a lighthouse in a storm")
    [preview] = body["previews"]
    assert preview["model"] == VEO and preview["kind"] == "video"
    assert preview["prompt"].startswith("a lighthouse in a storm. Style: high-contrast black and white.")
    assert preview["metadata"]["motion_source"] == "default"

    page = staff_client.get(f"{PRESETS}{preset.pk}/preview/", {"model": VEO, "prompt": "a lighthouse in a storm"})
    assert page.status_code == 200
    assert "a lighthouse in a storm. Style: high-contrast black and white." in page.content.decode()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"model": "fal-ai/nope"}, "model"),
        ({"prompt": "x" * 10_001}, "prompt"),
        ({"format": "xml"}, "format"),
    ],
)
def test_the_preview_view_answers_bad_input_with_a_400(staff_client, params, field):
    preset = make_preset()
    response = staff_client.get(f"{PRESETS}{preset.pk}/preview/", {**params, "format": params.get("format", "json")})
    assert response.status_code == 400
    if field != "format":
        assert set(response.json()["errors"]) == {field}
    html = staff_client.get(f"{PRESETS}{preset.pk}/preview/", {k: v for k, v in params.items() if k != "format"})
    if field != "format":
        assert html.status_code == 400 and "Please correct the errors above." in html.content.decode()


def test_the_preview_view_is_for_staff_and_existing_presets(staff_client, alice, client):
    preset = make_preset()
    assert staff_client.get(f"{PRESETS}00000000-0000-0000-0000-000000000000/preview/").status_code == 404
    assert staff_client.get(f"{PRESETS}not-a-uuid/preview/").status_code == 404
    client.force_login(alice)
    response = client.get(f"{PRESETS}{preset.pk}/preview/", {"format": "json"})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


# --- actions ------------------------------------------------------------------------


def test_activate_and_deactivate_report_counts(staff_client):
    on = make_preset("on", name="On")
    off = make_preset("off", name="Off", is_active=False)
    response = act(staff_client, PRESETS, "deactivate", [on, off])
    assert ("success", "Deactivated 1 preset(s). 1 already inactive.") in messages_of(response)
    assert not StylePreset.objects.filter(pk__in=[on.pk, off.pk], is_active=True).exists()

    response = act(staff_client, PRESETS, "activate", [on, off])
    assert ("success", "Activated 2 preset(s).") in messages_of(response)
    assert StylePreset.objects.filter(pk__in=[on.pk, off.pk], is_active=True).count() == 2
    assert LogEntry.objects.filter(object_id=str(on.pk), change_message__startswith="Activated").exists()


def test_a_deactivated_preset_leaves_the_api(staff_client, api):
    preset = make_preset()
    assert api.get(f"/api/v1/presets/{preset.slug}").status_code == 200
    act(staff_client, PRESETS, "deactivate", [preset])
    assert api.get(f"/api/v1/presets/{preset.slug}").status_code == 404


def test_feature_and_unfeature_report_counts(staff_client):
    first, second = make_preset("a", name="A"), make_preset("b", name="B", is_featured=True)
    response = act(staff_client, PRESETS, "feature", [first, second])
    assert ("success", "Featured 1 preset(s). 1 already featured.") in messages_of(response)
    assert StylePreset.objects.filter(pk__in=[first.pk, second.pk], is_featured=True).count() == 2
    response = act(staff_client, PRESETS, "unfeature", [first])
    assert ("success", "Unfeatured 1 preset(s).") in messages_of(response)
    assert not StylePreset.objects.get(pk=first.pk).is_featured


def test_export_selected_downloads_a_json_file(staff_client):
    noir, sepia = make_preset(), make_preset("test-sepia", name="Sepia")
    make_preset("other", name="Other")
    response = staff_client.post(PRESETS, {"action": "export_json", "_selected_action": [noir.pk, sepia.pk]})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    assert response["Content-Disposition"].startswith('attachment; filename="style-presets-')
    entries = json.loads(response.content)
    assert [e["slug"] for e in entries] == ["test-noir", "test-sepia"]
    assert entries[0]["style"] == NOIR and "id" not in entries[0] and "usage_count" not in entries[0]


# --- the import page ----------------------------------------------------------------


def upload(entries, name="presets.json"):
    return SimpleUploadedFile(name, json.dumps(entries).encode(), content_type="application/json")


def test_the_import_page_dry_run_reports_and_writes_nothing(staff_client):
    preset = make_preset()
    page = staff_client.get(f"{PRESETS}import/")
    assert page.status_code == 200
    assert page.context["form"]["dry_run"].value() is True  # checked by default
    entries = [
        {"slug": "test-noir", "name": "Film Noir II"},
        {"slug": "test-sepia", "name": "Sepia", "style": NOIR},
    ]
    response = staff_client.post(f"{PRESETS}import/", {"file": upload(entries), "dry_run": "on"})
    assert response.status_code == 200
    report = response.context["report"]
    assert [(i.slug, i.describe()) for i in report.items] == [("test-noir", "update: name"), ("test-sepia", "create")]
    assert "Dry run: 1 to create, 1 to update, 0 unchanged. Nothing was written." in response.content.decode()
    assert StylePreset.objects.get(pk=preset.pk).name == "Film Noir"
    assert not StylePreset.objects.filter(slug="test-sepia").exists()


def test_the_import_page_applies_a_real_import(staff_client):
    preset = make_preset()
    entries = [{"slug": "test-noir", "name": "Film Noir II"}, {"slug": "test-sepia", "name": "Sepia", "style": NOIR}]
    response = staff_client.post(f"{PRESETS}import/", {"file": upload(entries)})  # dry run unticked
    assert response.status_code == 200
    assert ("success", "Imported: 1 created, 1 updated, 0 unchanged.") in messages_of(response)
    assert StylePreset.objects.get(pk=preset.pk).name == "Film Noir II"
    assert StylePreset.objects.get(slug="test-sepia").style["prompt_blocks"]["style"]["enabled"] is True
    assert LogEntry.objects.filter(object_id=str(preset.pk), change_message__contains="Imported").exists()


def test_the_import_page_shows_every_error_of_an_invalid_file_and_writes_nothing(staff_client):
    make_preset()
    bad = copy.deepcopy(NOIR)
    bad["prompt_blocks"]["style"]["weight"] = 3
    entries = [{"slug": "test-noir", "name": "Changed"}, {"slug": "broken", "name": "Broken", "style": bad}]
    response = staff_client.post(f"{PRESETS}import/", {"file": upload(entries)})
    assert response.status_code == 200
    assert response.context["errors"] == [
        "broken: style: prompt_blocks.style.weight: 3 is greater than the maximum of 2"
    ]
    assert "nothing was imported" in response.content.decode()
    assert StylePreset.objects.get(slug="test-noir").name == "Film Noir"
    assert not StylePreset.objects.filter(slug="broken").exists()

    response = staff_client.post(
        f"{PRESETS}import/", {"file": SimpleUploadedFile("x.json", b"{not json", content_type="application/json")}
    )
    assert response.context["errors"][0].startswith("The file is not valid JSON")


def test_the_import_page_needs_add_and_change_permission(db, client):
    viewer = UserFactory(email="viewer@example.com", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_stylepreset"), Permission.objects.get(codename="change_stylepreset")
    )
    client.force_login(viewer)
    assert client.get(PRESETS).status_code == 200
    assert 'href="/admin/stylestacks/stylepreset/import/"' not in client.get(PRESETS).content.decode()
    assert client.get(f"{PRESETS}import/").status_code == 403
    response = client.post(f"{PRESETS}import/", {"file": upload([{"slug": "x", "name": "X"}])})
    assert response.status_code == 403
    assert not StylePreset.objects.filter(slug="x").exists()


# --- style stacks -------------------------------------------------------------------


def make_stack(user, name="Noir stack", **fields) -> StyleStack:
    return stylestack_create(user=user, name=name, style=NOIR, **fields)


def test_the_stack_list_renders_filters_and_searches(alice, bob, staff_client):
    mine = make_stack(alice, tags=["noir"], visibility="public")
    other = make_stack(bob, name="Pastel dreams", tags=["pastel"])
    response = staff_client.get(STACKS)
    assert response.status_code == 200
    content = response.content.decode()
    assert "alice@example.com" in content and "Pastel dreams" in content
    assert {s.pk for s in response.context["cl"].result_list} == {mine.pk, other.pk}
    assert [s.pk for s in staff_client.get(STACKS, {"q": "bob@example"}).context["cl"].result_list] == [other.pk]
    assert [s.pk for s in staff_client.get(STACKS, {"q": "pastel"}).context["cl"].result_list] == [other.pk]
    public = staff_client.get(STACKS, {"visibility__exact": "public"}).context["cl"].result_list
    assert [s.pk for s in public] == [mine.pk]
    assert staff_client.get(f"{STACKS}add/").status_code == 403


def test_stack_actions_feature_unfeature_and_make_private_report_counts(alice, staff_client):
    public = make_stack(alice, name="Public", visibility="public")
    private = make_stack(alice, name="Private")
    response = act(staff_client, STACKS, "feature", [public, private])
    assert ("success", "Featured 1 stack(s). Skipped 1 that are not public.") in messages_of(response)
    assert StyleStack.objects.get(pk=public.pk).is_featured
    assert not StyleStack.objects.get(pk=private.pk).is_featured

    response = act(staff_client, STACKS, "make_private", [public, private])
    assert ("success", "Made 1 stack(s) private. 1 already private.") in messages_of(response)
    public.refresh_from_db()
    assert (public.visibility, public.is_featured) == ("private", False)

    StyleStack.objects.filter(pk=private.pk).update(is_featured=True)
    response = act(staff_client, STACKS, "unfeature", [public, private])
    assert ("success", "Unfeatured 1 stack(s). 1 not featured.") in messages_of(response)
    assert not StyleStack.objects.filter(is_featured=True).exists()


def stack_form_data(stack: StyleStack, contributors=(), invites=(), **changes) -> dict:
    data = {
        "user": str(stack.user_id),
        "name": stack.name,
        "description": stack.description,
        "tags": ", ".join(stack.tags),
        "category": stack.category,
        "visibility": stack.visibility,
        "price_credits": stack.price_credits,
        "style": json.dumps(stack.style),
        "compatible_models": ", ".join(stack.compatible_models),
        "parent": "",
        "created_from_preset": "",
    }
    rows = list(contributors)
    prefix = "contributors"
    data.update(
        {
            f"{prefix}-TOTAL_FORMS": str(len(rows)),
            f"{prefix}-INITIAL_FORMS": str(sum(1 for row in rows if row.get("id"))),
            f"{prefix}-MIN_NUM_FORMS": "0",
            f"{prefix}-MAX_NUM_FORMS": "1000",
            "invites-TOTAL_FORMS": str(len(invites)),
            "invites-INITIAL_FORMS": str(len(invites)),
            "invites-MIN_NUM_FORMS": "0",
            "invites-MAX_NUM_FORMS": "1000",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "1000",
        }
    )
    for index, row in enumerate(rows):
        for key, value in row.items():
            data[f"{prefix}-{index}-{key}"] = value
        data[f"{prefix}-{index}-stack"] = str(stack.pk)
    for index, row in enumerate(invites):  # existing pending invites: read only, "DELETE" withdraws
        for key, value in row.items():
            data[f"invites-{index}-{key}"] = value
        data[f"invites-{index}-stack"] = str(stack.pk)
    data.update(changes)
    return data


def test_the_stack_page_shows_contributors_pending_invites_and_versions(alice, bob, staff_client):
    stack = make_stack(alice)
    StackContributor.objects.create(stack=stack, user=bob, role="editor", email=bob.email)
    StackInvite.objects.create(stack=stack, email="nobody@example.com", role="viewer", invited_by=alice)
    StyleStack.objects.filter(pk=stack.pk).update(style={**NOIR, "parameters": {"seed": 1}})  # version 2
    page = staff_client.get(f"{STACKS}{stack.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert "bob@example.com" in content
    assert "nobody@example.com" in content
    formsets = {f.formset.prefix: f for f in page.context["inline_admin_formsets"]}
    assert set(formsets) == {"contributors", "invites", "versions"}
    assert [form.instance.user_id for form in formsets["contributors"].formset.forms] == [bob.pk]
    assert [form.instance.email for form in formsets["invites"].formset.forms] == ["nobody@example.com"]
    assert (formsets["invites"].has_add_permission, formsets["invites"].has_change_permission) == (False, False)
    assert [form.instance.version for form in formsets["versions"].formset.forms] == [1]
    assert formsets["versions"].has_change_permission is False


def test_staff_fix_a_stack_document_which_keeps_the_previous_version(alice, staff_client):
    stack = make_stack(alice)
    bad = copy.deepcopy(NOIR)
    bad["prompt_blocks"]["style"]["weight"] = 3
    response = staff_client.post(f"{STACKS}{stack.pk}/change/", stack_form_data(stack, style=json.dumps(bad)))
    assert response.status_code == 200
    assert (
        "prompt_blocks.style.weight: 3 is greater than the maximum of 2"
        in response.context["adminform"].form.errors["style"]
    )

    fixed = copy.deepcopy(NOIR)
    fixed["prompt_blocks"]["style"]["text"] = "moody monochrome"
    response = staff_client.post(f"{STACKS}{stack.pk}/change/", stack_form_data(stack, style=json.dumps(fixed)))
    assert response.status_code == 302, response.context["adminform"].form.errors
    stack.refresh_from_db()
    assert stack.version == 2
    assert stack.style["prompt_blocks"]["style"]["text"] == "moody monochrome"
    assert StyleStackVersion.objects.get(stack=stack, version=1).style["prompt_blocks"]["style"]["text"] == (
        "high-contrast black and white"
    )


def test_staff_add_change_and_remove_contributors_inline(alice, bob, staff, staff_client):
    stack = make_stack(alice)
    response = staff_client.post(
        f"{STACKS}{stack.pk}/change/", stack_form_data(stack, [{"user": str(bob.pk), "role": "viewer"}])
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    contributor = StackContributor.objects.get(stack=stack)
    assert (contributor.user_id, contributor.role, contributor.email, contributor.invited_by_id) == (
        bob.pk,
        "viewer",
        "bob@example.com",
        staff.pk,
    )

    rows = [{"id": str(contributor.pk), "user": str(bob.pk), "role": "editor"}]
    assert staff_client.post(f"{STACKS}{stack.pk}/change/", stack_form_data(stack, rows)).status_code == 302
    assert StackContributor.objects.get(pk=contributor.pk).role == "editor"

    owner_row = [{"id": str(contributor.pk), "user": str(bob.pk), "role": "editor"}, {"user": str(alice.pk)}]
    response = staff_client.post(f"{STACKS}{stack.pk}/change/", stack_form_data(stack, owner_row))
    assert response.status_code == 200  # the owner cannot be their own contributor
    assert StackContributor.objects.filter(stack=stack).count() == 1

    rows = [{"id": str(contributor.pk), "user": str(bob.pk), "role": "editor", "DELETE": "on"}]
    assert staff_client.post(f"{STACKS}{stack.pk}/change/", stack_form_data(stack, rows)).status_code == 302
    assert not StackContributor.objects.filter(stack=stack).exists()


def test_staff_withdraw_a_pending_invite_inline(alice, staff_client):
    stack = make_stack(alice)
    invite = StackInvite.objects.create(stack=stack, email="nobody@example.com", role="viewer", invited_by=alice)
    kept = StackInvite.objects.create(stack=stack, email="somebody@example.com", role="editor", invited_by=alice)
    rows = [{"id": str(invite.pk), "DELETE": "on"}, {"id": str(kept.pk)}]
    response = staff_client.post(f"{STACKS}{stack.pk}/change/", stack_form_data(stack, invites=rows))
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert list(StackInvite.objects.filter(stack=stack).values_list("email", "role")) == [
        ("somebody@example.com", "editor")
    ]


def test_every_seeded_preset_previews_without_errors(staff_client):
    presets = list(StylePreset.objects.exclude(slug__startswith="test-"))
    assert len(presets) >= 24  # the library seeded by stylestacks/migrations/0004
    for preset in presets:
        assert staff_client.get(f"{PRESETS}{preset.pk}/change/").status_code == 200, preset.slug
        body = staff_client.get(f"{PRESETS}{preset.pk}/preview/", {"format": "json"}).json()
        assert body["previews"], preset.slug
        for preview in body["previews"]:
            assert preview["error"] is None, (preset.slug, preview["model"], preview["error"])
            assert preview["prompt"].startswith(SAMPLE)
