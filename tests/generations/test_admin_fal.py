"""The admin with generations a provider holds (issue 19): staff see what the provider
reported, and "Mark failed and refund" cancels at the provider first."""

from generations.models import Generation
from tests.generations.test_fal_inflight import create, drive, fal, inflight, refunds, status_of  # noqa: F401


def test_marking_a_provider_held_generation_failed_cancels_it_at_fal_first(fal, inflight, alice, staff, client):  # noqa: F811
    fal.queue_seconds = 60  # it stays queued at fal
    generation = create(alice)
    drive(inflight, lambda: Generation.objects.get(pk=generation.pk).provider_request_id, timeout=5)
    request_id = Generation.objects.get(pk=generation.pk).provider_request_id

    client.force_login(staff)
    page = client.get(f"/admin/generations/generation/{generation.pk}/change/")
    assert page.status_code == 200
    assert request_id in page.content.decode()  # the Provider section

    response = client.post(
        "/admin/generations/generation/",
        {"action": "mark_failed_and_refund", "_selected_action": [str(generation.pk)]},
    )
    assert response.status_code == 302
    assert fal.count("cancel") == 1
    assert fal.state(request_id) == "CANCELLED"
    assert status_of(generation) == "failed"
    assert "cancelled at fal" in Generation.objects.get(pk=generation.pk).error_message
    assert refunds(generation) == 1
