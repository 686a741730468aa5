"""POST /api/v1/generations: validate, charge, store as pending — all or nothing."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import Profile
from credits.models import CreditTransaction
from generations.models import AIModel, Generation
from projects.services import project_create
from tests.generations.conftest import FLUX, VEO


def create(client, **body):
    body.setdefault("ai_model", FLUX)
    body.setdefault("prompt", "a red fox in the snow")
    return client.post("/api/v1/generations", body, format="json")


def balance(user):
    return Profile.objects.get(pk=user.pk).credits_balance


def test_it_creates_a_pending_generation_and_charges_the_models_cost(alice, api_as):
    project = project_create(user=alice, name="Foxes")
    response = create(api_as(alice), project=str(project.pk), parameters={"width": 512, "height": 512, "seed": 3})
    assert response.status_code == 201, response.json()
    body = response.json()
    assert (body["status"], body["credits_charged"], body["project"]) == ("pending", 25, str(project.pk))
    assert body["parameters"]["width"] == 512 and body["parameters"]["num_images"] == 1  # defaults filled in
    generation = Generation.objects.get(pk=body["id"])
    assert generation.user_id == alice.pk
    assert balance(alice) == 75
    usage = CreditTransaction.objects.get(user=alice, type="usage")
    assert (usage.amount, usage.balance_after, usage.generation_id) == (-25, 75, generation.pk)
    project.refresh_from_db()
    assert project.generation_count == 1


def test_insufficient_credits_is_a_402_and_writes_nothing(alice, api_as):
    response = create(api_as(alice), ai_model=VEO)  # 500 credits
    assert response.status_code == 402
    assert response.json()["code"] == "insufficient_credits"
    assert response.json()["required"] == 500
    assert not Generation.objects.exists()
    assert balance(alice) == 100


def test_an_inactive_model_is_a_400(alice, api_as):
    AIModel.objects.filter(pk=FLUX).update(is_active=False)
    response = create(api_as(alice))
    assert response.status_code == 400
    assert "ai_model" in response.json()["errors"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"prompt": "x" * 1001}, "prompt"),
        ({"prompt": "   "}, "prompt"),
        ({"ai_model": "no/such-model"}, "ai_model"),
        ({"parameters": {"width": 99999}}, "parameters"),
        ({"parameters": {"num_images": 9}}, "parameters"),
        ({"parameters": {"bogus": 1}}, "parameters"),
        ({"parameters": [1, 2]}, "parameters"),
        ({"negative_prompt": "x" * 1001}, "negative_prompt"),
        ({"project": "00000000-0000-0000-0000-000000000000"}, "project"),
        ({"project": "not-a-uuid"}, "project"),
        # DRF reads "" as null for related fields: it used to create a generation without
        # a project, and charge for it.
        ({"project": ""}, "project"),
        ({"project": "  "}, "project"),
        ({"parent": ""}, "parent"),
        ({"style_stack": ""}, "style_stack"),
        ({"preset": ""}, "preset"),
        ({"status": "completed"}, "status"),
        ({"credits_charged": 0}, "credits_charged"),
        ({"outputs": []}, "outputs"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_bad_input_is_a_400_on_the_field_and_writes_nothing(alice, api_as, body, field):
    response = create(api_as(alice), **body)
    assert response.status_code == 400, response.json()
    assert field in response.json()["errors"]
    assert not Generation.objects.exists()
    assert balance(alice) == 100


def test_a_nul_character_is_refused_before_anything_is_read(alice, api_as):
    response = create(api_as(alice), prompt="nul\x00byte")
    assert response.status_code == 400
    assert response.json() == {"detail": "Null characters are not allowed.", "code": "parse_error"}
    assert not Generation.objects.exists()


def test_a_parameter_error_names_the_parameter(alice, api_as):
    response = create(api_as(alice), parameters={"width": 99999})
    assert any(message.startswith("width:") for message in response.json()["errors"]["parameters"])


def test_negative_prompts_only_for_models_that_take_them(alice, api_as):
    assert create(api_as(alice), negative_prompt="blurry").status_code == 201
    response = create(api_as(alice), ai_model="fal-ai/flux/schnell", negative_prompt="blurry")
    assert response.status_code == 400
    assert "negative_prompt" in response.json()["errors"]


def test_a_null_project_means_none(alice, api_as):
    response = create(api_as(alice), project=None)
    assert response.status_code == 201, response.json()
    assert response.json()["project"] is None


def test_another_persons_project_is_refused(alice, bob, api_as):
    project = project_create(user=bob, name="Bob's")
    response = create(api_as(alice), project=str(project.pk))
    assert response.status_code == 400
    assert "project" in response.json()["errors"]
    assert balance(alice) == 100


def test_a_reference_image_is_uploaded_with_multipart(alice, api_as, png_bytes):
    upload = SimpleUploadedFile("ref.png", png_bytes, content_type="image/png")
    response = api_as(alice).post(
        "/api/v1/generations",
        {"ai_model": FLUX, "prompt": "in this style", "reference_image": upload},
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    generation = Generation.objects.get(pk=response.json()["id"])
    assert generation.reference_image.name.startswith(f"references/{alice.pk}/")
    assert generation.reference_image.read() == png_bytes
    assert response.json()["reference_image"].startswith("http://testserver/media/references/")


@pytest.mark.parametrize(
    ("name", "content", "content_type"),
    [("fake.png", b"definitely not an image", "image/png"), ("doc.pdf", b"%PDF-1.4 ...", "application/pdf")],
)
def test_a_reference_that_is_not_an_image_by_content_is_refused(alice, api_as, name, content, content_type):
    upload = SimpleUploadedFile(name, content, content_type=content_type)
    response = api_as(alice).post(
        "/api/v1/generations", {"ai_model": FLUX, "prompt": "x", "reference_image": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert "reference_image" in response.json()["errors"]
    assert not Generation.objects.exists()


def test_a_too_large_reference_is_refused(alice, api_as, png_bytes, settings):
    settings.REFERENCE_IMAGE_MAX_BYTES = len(png_bytes) - 1
    upload = SimpleUploadedFile("ref.png", png_bytes, content_type="image/png")
    response = api_as(alice).post(
        "/api/v1/generations", {"ai_model": FLUX, "prompt": "x", "reference_image": upload}, format="multipart"
    )
    assert response.status_code == 400
    assert "20 MB" in response.json()["errors"]["reference_image"][0]


def test_a_model_without_reference_support_refuses_one(alice, api_as, png_bytes):
    upload = SimpleUploadedFile("ref.png", png_bytes, content_type="image/png")
    response = api_as(alice).post(
        "/api/v1/generations",
        {"ai_model": "fal-ai/flux/schnell", "prompt": "x", "reference_image": upload},
        format="multipart",
    )
    assert response.status_code == 400
    assert "reference_image" in response.json()["errors"]


def test_an_idempotent_retry_returns_the_first_generation_and_charges_once(alice, api_as):
    client = api_as(alice)
    client.credentials(HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"], HTTP_IDEMPOTENCY_KEY="abc-1")
    first = create(client)
    second = create(client)
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert Generation.objects.count() == 1
    assert balance(alice) == 75


def test_the_same_idempotency_key_of_another_person_is_independent(alice, bob, api_as):
    for user in (alice, bob):
        client = api_as(user)
        client.credentials(HTTP_AUTHORIZATION=client._credentials["HTTP_AUTHORIZATION"], HTTP_IDEMPOTENCY_KEY="same")
        assert create(client).status_code == 201
    assert Generation.objects.count() == 2


def test_anonymous_cannot_create(db, api):
    assert create(api).status_code == 401
