"""Issue 15: a provider's outputs are copied into our storage before a generation completes.

The files sit on a CDN on loopback (tests/fakes/cdn.py) that can be slow, huge, or
answer with HTML; the worker downloads each within MEDIA_OUTPUT_TIMEOUT and
MEDIA_MAX_OUTPUT_BYTES, checks it decodes as what the model makes, stores it with a
thumbnail, and otherwise fails and refunds the generation with nothing left behind.
"""

import io
import time

import pytest
from django.core.management import call_command
from PIL import Image

from accounts.models import Profile
from generations import services
from generations.models import AIModel, Generation
from generations.outputs import store_outputs
from generations.providers import ProviderError, ProviderResult
from tests.fakes.cdn import image_bytes, video_bytes
from tests.generations.conftest import FLUX, VEO

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_OUTPUT_TIMEOUT = 2.0
    settings.MEDIA_MAX_OUTPUT_BYTES = 2_000_000
    return settings.MEDIA_ROOT


def files(root) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()) if root.exists() else []


def claimed(user, model=FLUX):
    from credits.services import credits_grant

    credits_grant(user=user, amount=1000, reason="outputs test")
    services.generation_create(user=user, ai_model=AIModel.objects.get(pk=model), prompt="a kite")
    return services.generation_claim_next()


@pytest.fixture
def provider_returns(monkeypatch):
    """Make the (local) provider answer with these outputs, as fal does: URLs."""

    def use(*outputs):
        monkeypatch.setattr(
            "generations.providers.local.LocalProvider.run",
            lambda self, generation: ProviderResult(outputs=list(outputs), provider_request_id="req-1"),
        )

    return use


def test_an_image_from_the_cdn_is_stored_with_its_thumbnail(alice, fake_cdn, media_root):
    generation = claimed(alice)
    big = image_bytes((1200, 800), "JPEG")
    outputs = store_outputs(generation, [{"url": fake_cdn.put("/a.jpg", big, "image/jpeg"), "width": 9, "height": 9}])
    prefix = f"generations/{alice.pk}/{generation.pk}"
    assert outputs == [
        {
            "path": f"{prefix}/0.jpg",
            "thumbnail_path": f"{prefix}/0.thumb.webp",
            "mime_type": "image/jpeg",
            "width": 1200,  # from the file, not the provider's claim
            "height": 800,
            "size": len(big),
            "thumbnail_size": (media_root / prefix / "0.thumb.webp").stat().st_size,
        }
    ]
    assert (media_root / prefix / "0.jpg").read_bytes() == big
    thumbnail = Image.open(media_root / prefix / "0.thumb.webp")
    assert (thumbnail.format, thumbnail.size) == ("WEBP", (512, 341))


def test_a_video_is_checked_and_gets_a_poster_frame(alice, fake_cdn, media_root):
    generation = claimed(alice, VEO)
    mp4 = video_bytes((160, 90), frames=16)
    (output,) = store_outputs(generation, [{"url": fake_cdn.put("/v.mp4", mp4, "video/mp4"), "duration": 2}])
    assert (output["mime_type"], output["width"], output["height"], output["duration"]) == ("video/mp4", 160, 90, 2)
    assert output["path"].endswith("/0.mp4") and (media_root / output["path"]).read_bytes() == mp4
    poster = Image.open(media_root / output["thumbnail_path"])
    assert (poster.format, poster.size) == ("WEBP", (160, 90))


@pytest.mark.parametrize(
    ("model", "body", "content_type", "message"),
    [
        (FLUX, b"<html><body>502 Bad Gateway</body></html>", "image/png", "not a usable image"),
        (FLUX, image_bytes()[:60], "image/png", "not a usable image"),  # truncated
        (VEO, image_bytes(), "image/png", "still image, not a video"),
        (VEO, b"\x00\x00\x00\x18ftypisom" + b"\x00" * 200, "video/mp4", "not a usable video"),  # damaged
    ],
)
def test_an_output_that_is_not_what_the_model_makes_is_refused(
    alice, fake_cdn, media_root, model, body, content_type, message
):
    generation = claimed(alice, model)
    url = fake_cdn.put("/x", body, content_type)
    good = fake_cdn.put("/ok.png", image_bytes(), "image/png")
    outputs = [{"url": good}, {"url": url}] if model == FLUX else [{"url": url}]
    with pytest.raises(ProviderError, match=message):
        store_outputs(generation, outputs)
    assert files(media_root) == []  # the first, good output was removed again


def test_a_huge_output_is_refused_by_its_length_or_while_it_streams(alice, fake_cdn, media_root, settings):
    generation = claimed(alice)
    settings.MEDIA_MAX_OUTPUT_BYTES = 100_000
    huge = b"\x89PNG" + b"\x00" * 1_000_000
    for url in (fake_cdn.put("/big", huge, "image/png"), fake_cdn.put("/big-chunked", huge, "image/png", chunked=True)):
        with pytest.raises(ProviderError, match="larger than the limit of 100,000 bytes"):
            store_outputs(generation, [{"url": url}])
    assert files(media_root) == []


def test_a_slow_cdn_is_given_up_on_within_the_deadline(alice, fake_cdn, settings):
    generation = claimed(alice)
    settings.MEDIA_OUTPUT_TIMEOUT = 1.0
    stalled = fake_cdn.put("/stalled", image_bytes(), "image/png", delay=30)
    trickling = fake_cdn.put("/trickle", b"\x89PNG" + b"\x00" * 100_000, "image/png", trickle=0.05)
    for url in (stalled, trickling):
        started = time.monotonic()
        with pytest.raises(ProviderError, match="timed out|took longer than 1 s"):
            store_outputs(generation, [{"url": url}])
        assert time.monotonic() - started < 4  # the stalled file waits 30 s, the trickle takes 5 s


def test_a_cdn_error_or_a_missing_url_fails(alice, fake_cdn):
    generation = claimed(alice)
    with pytest.raises(ProviderError, match="HTTP 404"):
        store_outputs(generation, [{"url": fake_cdn.url("/gone.png")}])
    with pytest.raises(ProviderError, match="no URL"):
        store_outputs(generation, [{"url": "file:///etc/passwd"}])


def test_the_worker_fails_and_refunds_a_generation_whose_output_is_html(alice, fake_cdn, media_root, provider_returns):
    services.generation_create(user=alice, ai_model=AIModel.objects.get(pk=FLUX), prompt="a kite")
    provider_returns({"url": fake_cdn.put("/page", b"<!doctype html><script>x()</script>", "text/html")})
    out = io.StringIO()
    call_command("run_worker", "--once", stdout=out)
    generation = Generation.objects.get(user=alice)
    assert generation.status == "failed" and "Output 1 is not a usable image" in generation.error_message
    assert Profile.objects.get(pk=alice.pk).credits_balance == 100  # refunded
    assert files(media_root) == []


def test_the_worker_completes_with_copied_outputs_and_the_api_never_shows_the_cdn(
    alice, api_as, client, fake_cdn, provider_returns
):
    services.generation_create(user=alice, ai_model=AIModel.objects.get(pk=FLUX), prompt="a kite")
    provider_returns(
        {"url": fake_cdn.put("/one.webp", image_bytes((300, 200), "WEBP"), "image/webp")},
        {"url": fake_cdn.put("/two.png", image_bytes((40, 40)), "image/png")},
    )
    call_command("run_worker", "--once", stdout=io.StringIO())
    body = api_as(alice).get("/api/v1/generations").json()["results"][0]
    assert body["status"] == "completed"
    assert fake_cdn.base not in str(body)
    assert [(o["mime_type"], o["width"], o["height"]) for o in body["outputs"]] == [
        ("image/webp", 300, 200),
        ("image/png", 40, 40),
    ]
    for output in body["outputs"]:
        for url in (output["url"], output["thumbnail_url"]):
            response = client.get(url)
            assert response.status_code == 200
            Image.open(io.BytesIO(b"".join(response.streaming_content))).load()


def test_a_result_dropped_because_the_row_moved_on_leaves_no_files(alice, media_root, monkeypatch):
    services.generation_create(user=alice, ai_model=AIModel.objects.get(pk=FLUX), prompt="a kite")
    real = services.generation_complete

    def cancelled_meanwhile(*, generation, **kwargs):
        Generation.objects.filter(pk=generation.pk).update(status="cancelled")
        return real(generation=generation, **kwargs)

    monkeypatch.setattr(services, "generation_complete", cancelled_meanwhile)
    out = io.StringIO()
    call_command("run_worker", "--once", stdout=out)
    assert "result dropped" in out.getvalue()
    assert files(media_root) == []
