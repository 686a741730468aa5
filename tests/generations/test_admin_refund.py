"""The staff "Refund" on a generation's admin page: once, through credits_refund, for a
finished generation only; a second press writes nothing."""

import re

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.test import Client

from accounts.models import Profile
from credits.models import CreditTransaction
from generations.models import AIModel, Generation
from generations.services import (
    generation_cancel,
    generation_claim_next,
    generation_complete,
    generation_create,
    generation_fail,
)
from tests.factories import UserFactory

FLUX = "fal-ai/flux/dev"  # costs 25


def create(user):
    return generation_create(user=user, ai_model=AIModel.objects.get(pk=FLUX), prompt="a red fox in the snow")


def completed(user):
    generation = create(user)
    claimed = generation_claim_next()
    assert claimed.pk == generation.pk
    assert generation_complete(generation=claimed, outputs=[{"url": "https://cdn.example.com/fox.png"}])
    return Generation.objects.get(pk=generation.pk)


def page(generation) -> str:
    return f"/admin/generations/generation/{generation.pk}/change/"


def refund_url(generation) -> str:
    return f"/admin/generations/generation/{generation.pk}/refund/"


def balance(user) -> int:
    return Profile.objects.get(pk=user.pk).credits_balance


def messages_of(response) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in get_messages(response.wsgi_request)]


def refunds(generation):
    return CreditTransaction.objects.filter(generation=generation, type="refund")


def test_a_completed_generation_is_refunded_once(alice, staff, client):
    generation = completed(alice)
    assert balance(alice) == 75
    client.force_login(staff)
    shown = client.get(page(generation)).content.decode()
    assert 'id="generation-refund-form"' in shown
    assert re.search(r'id="generation-refund-balance">75<', shown)

    response = client.post(refund_url(generation), {"reason": "Blurry output"})
    assert response.status_code == 302 and response["Location"] == page(generation)
    short = str(generation.pk)[:8]
    assert messages_of(response) == [
        ("success", f"{short}: refunded 25 credits to alice@example.com, balance now 100.")
    ]
    entry = refunds(generation).get()
    assert (entry.amount, entry.balance_after, entry.created_by_id, entry.description) == (
        25,
        100,
        staff.pk,
        "Blurry output",
    )
    assert Generation.objects.get(pk=generation.pk).status == "completed"  # the status stays
    assert LogEntry.objects.filter(object_id=str(generation.pk), user=staff).count() == 1
    shown = client.get(page(generation)).content.decode()  # shows (and uses up) the message
    assert 'id="generation-refund-done"' in shown and 'id="generation-refund-form"' not in shown

    again = client.post(refund_url(generation), {"reason": "Pressed twice"})
    assert again.status_code == 302
    assert messages_of(again) == [("warning", f"{short}: This generation was already refunded: nothing was written.")]
    assert refunds(generation).count() == 1
    assert balance(alice) == 100
    assert LogEntry.objects.filter(object_id=str(generation.pk)).count() == 1


def test_a_failed_generation_was_refunded_by_failing_it(alice, staff, client):
    generation = create(alice)
    assert generation_fail(generation=generation, error="provider down")
    client.force_login(staff)
    response = client.post(refund_url(generation), {"reason": "Again"})
    assert ("warning", f"{str(generation.pk)[:8]}: This generation was already refunded: nothing was written.") in (
        messages_of(response)
    )
    assert refunds(generation).count() == 1 and balance(alice) == 100


def test_a_cancelled_generation_was_refunded_by_the_cancel(alice, staff, client):
    generation = create(alice)
    generation_cancel(user=alice, generation_id=generation.pk)
    client.force_login(staff)
    client.post(refund_url(generation), {"reason": "Again"})
    assert refunds(generation).count() == 1 and balance(alice) == 100


@pytest.mark.parametrize("claim", [False, True], ids=["pending", "processing"])
def test_an_unfinished_generation_must_be_failed_first(alice, staff, client, claim):
    generation = create(alice)
    if claim:
        generation_claim_next()
    client.force_login(staff)
    assert 'id="generation-refund-in-flight"' in client.get(page(generation)).content.decode()
    response = client.post(refund_url(generation), {"reason": "Too early"})
    assert response.status_code == 302
    [(level, text)] = messages_of(response)
    assert level == "error" and "mark it failed instead" in text
    assert not refunds(generation).exists() and balance(alice) == 75


def test_a_reason_is_required(alice, staff, client):
    generation = completed(alice)
    client.force_login(staff)
    response = client.post(refund_url(generation), {"reason": "  "})
    assert response.status_code == 200
    assert response.context["refund"]["form"].errors == {"reason": ["This field is required."]}
    assert "This field is required." in response.content.decode()
    assert not refunds(generation).exists() and balance(alice) == 75


def test_staff_without_the_operate_permission_are_refused(alice, client):
    generation = completed(alice)
    viewer = UserFactory(email="viewer@example.com", is_staff=True, raw_user_meta_data={})
    viewer.user_permissions.add(Permission.objects.get(codename="view_generation"))
    client.force_login(viewer)
    shown = client.get(page(generation))
    assert shown.status_code == 200 and 'id="generation-refund' not in shown.content.decode()
    assert client.post(refund_url(generation), {"reason": "Sneaky"}).status_code == 403
    assert not refunds(generation).exists()


def test_the_refund_is_csrf_protected(alice, staff):
    generation = completed(alice)
    client = Client(enforce_csrf_checks=True)
    client.force_login(staff)
    assert client.post(refund_url(generation), {"reason": "No token"}).status_code == 403
    assert not refunds(generation).exists()
    shown = client.get(page(generation)).content.decode()
    token = re.search(r'id="generation-refund-form".*?name="csrfmiddlewaretoken" value="([^"]+)"', shown, re.S)
    response = client.post(refund_url(generation), {"reason": "With token", "csrfmiddlewaretoken": token.group(1)})
    assert response.status_code == 302
    assert refunds(generation).count() == 1


def test_the_refund_page_answers_a_get_and_an_unknown_id_is_a_404(alice, staff, client):
    generation = completed(alice)
    client.force_login(staff)
    response = client.get(refund_url(generation))
    assert response.status_code == 200 and 'id="id_refund_reason"' in response.content.decode()
    assert client.post("/admin/generations/generation/00000000-0000-0000-0000-000000000000/refund/").status_code == 404
