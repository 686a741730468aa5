"""The admin's AI model catalog and generations screens."""

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from accounts.models import Profile
from credits.models import CreditTransaction
from credits.services import credits_adjust
from generations.forms import check_prompt_guide
from generations.models import AIModel, Generation
from generations.services import generation_claim_next, generation_complete, generation_create, generation_fail

GENERATIONS = "/admin/generations/generation/"
MODELS = "/admin/generations/aimodel/"
FLUX = "fal-ai/flux/dev"  # seeded by the migrations, costs 25


def create(user, prompt="a red fox in the snow"):
    return generation_create(user=user, ai_model=AIModel.objects.get(pk=FLUX), prompt=prompt)


def act(client, action, generations):
    """Run an action and follow back to the list, which shows (and so uses up) its messages."""
    data = {"action": action, "_selected_action": [str(g.pk) for g in generations]}
    response = client.post(GENERATIONS, data, follow=True)
    assert response.redirect_chain and response.redirect_chain[0][1] == 302
    return response


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def balance(user) -> int:
    return Profile.objects.get(pk=user.pk).credits_balance


# --- AI models ----------------------------------------------------------------------


def model_form_data(model: AIModel, **changes) -> dict:
    data = {
        "display_name": model.display_name,
        "description": model.description,
        "kind": model.kind,
        "provider": model.provider,
        "credits_cost": model.credits_cost,
        "max_prompt_length": model.max_prompt_length,
        "parameter_schema": json.dumps(model.parameter_schema),
        "prompt_guide": json.dumps(model.prompt_guide),
        "sort_order": model.sort_order,
    }
    for flag in ("supports_lora", "supports_negative_prompt", "supports_reference_image", "is_active"):
        if getattr(model, flag):
            data[flag] = "on"
    data.update(changes)
    return data


def test_the_model_list_renders_with_editable_order_and_switch(staff, client):
    client.force_login(staff)
    response = client.get(MODELS, {"kind__exact": "video"})
    assert response.status_code == 200
    rows = response.context["cl"].result_list
    assert rows and {m.kind for m in rows} == {"video"}
    assert set(response.context["cl"].formset.forms[0].fields) >= {"is_active", "sort_order"}


def test_a_valid_edit_of_a_model_is_saved(staff, client):
    client.force_login(staff)
    model = AIModel.objects.get(pk=FLUX)
    page = client.get(f"{MODELS}{FLUX}/change/")
    assert page.status_code == 200
    assert "id" not in page.context["adminform"].form.fields  # read-only once created
    guide = {
        **model.prompt_guide,
        "keywords": ["volumetric light"],
        "optimal_length": {"min_words": 20, "max_words": 90},
    }
    response = client.post(
        f"{MODELS}{FLUX}/change/",
        model_form_data(model, display_name="FLUX dev (tuned)", credits_cost=30, prompt_guide=json.dumps(guide)),
    )
    assert response.status_code == 302, response.context["adminform"].form.errors
    model.refresh_from_db()
    assert (model.display_name, model.credits_cost) == ("FLUX dev (tuned)", 30)
    assert model.prompt_guide["keywords"] == ["volumetric light"]
    assert model.parameter_schema["properties"]["width"]["maximum"] == 2048  # untouched


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("parameter_schema", {"type": "object", "properties": {"x": {"type": 5}}}, "Invalid JSON Schema"),
        ("parameter_schema", ["not", "an", "object"], "must be a JSON object"),
        ("parameter_schema", {"type": "array"}, '"type": "object"'),
        ("prompt_guide", ["keywords"], "must be a JSON object"),
        ("prompt_guide", {"tone": "warm"}, "Unknown key(s): tone"),
        ("prompt_guide", {"keywords": "sharp focus"}, "keywords must be a list of strings"),
    ],
)
def test_an_invalid_json_column_is_an_error_on_its_field(staff, client, field, value, message):
    client.force_login(staff)
    model = AIModel.objects.get(pk=FLUX)
    before = (model.parameter_schema, model.prompt_guide)
    response = client.post(f"{MODELS}{FLUX}/change/", model_form_data(model, **{field: json.dumps(value)}))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {field}
    assert message in " ".join(errors[field])
    model.refresh_from_db()
    assert (model.parameter_schema, model.prompt_guide) == before


def test_malformed_json_text_is_an_error_on_its_field(staff, client):
    client.force_login(staff)
    model = AIModel.objects.get(pk=FLUX)
    response = client.post(f"{MODELS}{FLUX}/change/", model_form_data(model, parameter_schema='{"type": '))
    assert response.status_code == 200
    assert "parameter_schema" in response.context["adminform"].form.errors
    assert b"{&quot;type&quot;: " in response.content  # what was typed is shown again


def test_a_zero_cost_is_an_error_on_the_field(staff, client):
    client.force_login(staff)
    model = AIModel.objects.get(pk=FLUX)
    response = client.post(f"{MODELS}{FLUX}/change/", model_form_data(model, credits_cost=0))
    assert response.status_code == 200
    assert set(response.context["adminform"].form.errors) == {"credits_cost"}


@pytest.mark.parametrize(
    "guide",
    [
        {"optimal_length": {"min_words": "ten", "max_words": 20}},
        {"optimal_length": {"min_words": 50, "max_words": 20}},
        {"optimal_length": {"min_words": True}},
        {"optimal_length": [10, 20]},
        {"negatives": ["blurry", 3]},
        {"strategy": 7},
    ],
)
def test_prompt_guide_shapes_that_are_refused(guide):
    with pytest.raises(ValidationError):
        check_prompt_guide(guide)


def test_the_seeded_prompt_guides_and_an_empty_one_are_accepted(db):
    check_prompt_guide({})
    for model in AIModel.objects.all():
        check_prompt_guide(model.prompt_guide)


def test_a_new_model_can_be_added(staff, client):
    client.force_login(staff)
    data = model_form_data(AIModel.objects.get(pk=FLUX), id="fal-ai/example/new", display_name="Example")
    response = client.post(f"{MODELS}add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    assert AIModel.objects.get(pk="fal-ai/example/new").display_name == "Example"


# --- Generations --------------------------------------------------------------------


def test_the_generation_list_filters_and_searches(alice, bob, staff, client):
    fox = create(alice, "a red fox in the snow")
    owl = create(bob, "an owl at dusk")
    generation_fail(generation=owl, error="provider down")
    client.force_login(staff)

    response = client.get(GENERATIONS)
    assert response.status_code == 200
    assert {g.pk for g in response.context["cl"].result_list} == {fox.pk, owl.pk}
    assert {spec.title for spec in response.context["cl"].filter_specs} == {"status", "ai model", "created at"}

    response = client.get(GENERATIONS, {"status__exact": "failed"})
    assert [g.pk for g in response.context["cl"].result_list] == [owl.pk]
    response = client.get(GENERATIONS, {"q": "fox"})
    assert [g.pk for g in response.context["cl"].result_list] == [fox.pk]
    response = client.get(GENERATIONS, {"q": "bob@example"})
    assert [g.pk for g in response.context["cl"].result_list] == [owl.pk]
    response = client.get(GENERATIONS, {"ai_model__id__exact": "fal-ai/flux/schnell"})
    assert list(response.context["cl"].result_list) == []
    changelist = client.get(GENERATIONS).context["cl"]
    [created_at] = [spec for spec in changelist.filter_specs if spec.title == "created at"]
    links = {choice["display"]: choice["query_string"] for choice in created_at.choices(changelist)}
    Generation.objects.filter(pk=owl.pk).update(created_at=timezone.now() - timedelta(days=30))
    response = client.get(GENERATIONS + links["Past 7 days"])
    assert [g.pk for g in response.context["cl"].result_list] == [fox.pk]


def test_the_detail_page_is_read_only_with_output_previews(alice, staff, client):
    create(alice)
    claimed = generation_claim_next()
    outputs = [
        {"url": "https://cdn.example.com/fox.png", "mime_type": "image/png", "width": 1024, "height": 1024},
        {"url": "https://cdn.example.com/fox.mp4", "mime_type": "video/mp4", "width": 1024, "height": 576},
        {"url": "javascript:alert(1)", "mime_type": "image/png", "width": 1, "height": 1},
    ]
    assert generation_complete(generation=claimed, outputs=outputs)
    client.force_login(staff)

    page = client.get(f"{GENERATIONS}{claimed.pk}/change/")
    assert page.status_code == 200
    content = page.content.decode()
    assert '<img src="https://cdn.example.com/fox.png"' in content
    assert '<a href="https://cdn.example.com/fox.mp4">output 2</a> (video/mp4)' in content
    assert 'href="javascript:' not in content and 'src="javascript:' not in content
    assert "output 3: no usable URL" in content
    assert page.context["has_change_permission"] is False
    assert 'name="_save"' not in content
    assert "Usage" in content  # the ledger inline shows the charge

    listing = client.get(GENERATIONS)
    assert 'src="https://cdn.example.com/fox.png"' in listing.content.decode()  # the thumbnail


def test_the_detail_page_previews_the_reference_image(alice, staff, client, png_bytes):
    upload = SimpleUploadedFile("style.png", png_bytes, content_type="image/png")
    generation = generation_create(
        user=alice, ai_model=AIModel.objects.get(pk=FLUX), prompt="in this style", reference_image=upload
    )
    client.force_login(staff)
    page = client.get(f"{GENERATIONS}{generation.pk}/change/")
    assert page.status_code == 200
    # A signed link (staff see what the owner sees), not the bare path.
    assert f'<img src="{generation.reference_image.url}?expires=' in page.content.decode()


def test_generations_cannot_be_added_changed_or_deleted_in_flight_in_the_admin(alice, staff, client):
    generation = create(alice)
    client.force_login(staff)
    assert client.get(f"{GENERATIONS}add/").status_code == 403
    assert client.post(f"{GENERATIONS}{generation.pk}/delete/").status_code == 403  # pending: cancel first
    assert client.post(f"{GENERATIONS}{generation.pk}/change/", {"status": "completed"}).status_code == 403
    generation.refresh_from_db()
    assert generation.status == "pending"
    actions = client.get(GENERATIONS).context["cl"].model_admin.get_actions(client.get(GENERATIONS).wsgi_request)
    assert set(actions) == {"mark_failed_and_refund", "retry", "delete_selected"}


def test_staff_see_thumbnails_and_delete_finished_generations_with_their_files(
    alice, staff, client, settings, tmp_path, django_capture_on_commit_callbacks
):
    import io

    from django.core.management import call_command
    from procrastinate.contrib.django.models import ProcrastinateJob

    settings.MEDIA_ROOT = tmp_path
    create(alice)
    call_command("run_worker", "--once", stdout=io.StringIO())
    done = Generation.objects.get(user=alice)
    pending = create(alice, "still waiting")
    (output,) = done.outputs
    client.force_login(staff)

    listing = client.get(GENERATIONS).content.decode()
    assert f'src="/media/{output["thumbnail_path"]}?expires=' in listing  # a signed thumbnail link
    page = client.get(f"{GENERATIONS}{done.pk}/change/").content.decode()
    assert f'<a href="/media/{output["path"]}?expires=' in page and f'src="/media/{output["thumbnail_path"]}' in page

    # Django's confirmation page refuses a selection with one in flight …
    confirm = client.post(GENERATIONS, {"action": "delete_selected", "_selected_action": [done.pk, pending.pk]})
    assert confirm.status_code == 200 and "permission to delete" in confirm.content.decode()
    # … and deletes the finished one, its files by a task after the commit.
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(  # the confirmation page's "Yes, I'm sure"
            GENERATIONS, {"action": "delete_selected", "_selected_action": [done.pk], "post": "yes"}, follow=True
        )
    assert response.status_code == 200
    assert list(Generation.objects.filter(user=alice)) == [pending]
    (job,) = ProcrastinateJob.objects.values_list("args", flat=True)
    assert sorted(job["names"]) == sorted([output["path"], output["thumbnail_path"]])
    assert CreditTransaction.objects.filter(user=alice, type="usage").count() == 2  # the ledger keeps its entries


def test_mark_failed_refunds_exactly_once(alice, staff, client):
    generation = create(alice)
    assert balance(alice) == 75
    client.force_login(staff)

    first = act(client, "mark_failed_and_refund", [generation])
    assert ("success", "Marked 1 generation(s) failed and refunded them.") in messages_of(first)
    generation.refresh_from_db()
    assert (generation.status, generation.error_message) == ("failed", "Marked failed by staff")

    second = act(client, "mark_failed_and_refund", [generation])
    assert ("warning", "Skipped 1 generation(s) that were no longer pending or processing.") in messages_of(second)
    assert not [m for m in messages_of(second) if m[0] == "success"]

    refunds = CreditTransaction.objects.filter(generation=generation, type="refund")
    assert refunds.count() == 1
    assert (refunds[0].amount, refunds[0].created_by_id) == (25, staff.pk)
    assert balance(alice) == 100


def test_mark_failed_skips_finished_generations_and_fails_the_rest(alice, staff, client):
    done = create(alice, "done")
    generation_claim_next()
    generation_complete(generation=done, outputs=[])
    waiting = create(alice, "waiting")
    client.force_login(staff)
    response = act(client, "mark_failed_and_refund", [done, waiting])
    shown = messages_of(response)
    assert ("success", "Marked 1 generation(s) failed and refunded them.") in shown
    assert ("warning", "Skipped 1 generation(s) that were no longer pending or processing.") in shown
    assert Generation.objects.get(pk=done.pk).status == "completed"
    assert Generation.objects.get(pk=waiting.pk).status == "failed"


def test_retry_creates_a_new_charged_generation_with_the_parent_set(alice, staff, client):
    failed = create(alice, "a lighthouse in a storm")
    generation_fail(generation=failed, error="provider down")
    assert balance(alice) == 100
    client.force_login(staff)

    response = act(client, "retry", [failed])
    new = Generation.objects.get(parent=failed)
    assert (new.status, new.credits_charged, new.user_id, new.prompt) == ("pending", 25, alice.pk, failed.prompt)
    assert balance(alice) == 75
    [(level, text)] = messages_of(response)
    assert level == "success" and str(new.pk)[:8] in text

    again = act(client, "retry", [failed])
    assert Generation.objects.filter(parent=failed).count() == 1  # a second click charges nothing
    assert balance(alice) == 75
    assert [level for level, _ in messages_of(again)] == ["warning"]


def test_retry_reports_insufficient_credits_per_item_and_skips_live_ones(alice, staff, client):
    failed = create(alice, "a castle")
    pending = create(alice, "a moat")
    generation_fail(generation=failed, error="provider down")
    credits_adjust(user=alice, amount=-balance(alice), reason="Test: empty the balance")
    client.force_login(staff)

    response = act(client, "retry", [failed, pending])
    shown = messages_of(response)
    assert any(
        level == "error" and text.startswith(f"{str(failed.pk)[:8]}: Insufficient credits") for level, text in shown
    )
    assert ("warning", "Skipped 1 generation(s) that were not failed or cancelled.") in shown
    assert not Generation.objects.filter(parent__in=[failed, pending]).exists()
    assert balance(alice) == 0
