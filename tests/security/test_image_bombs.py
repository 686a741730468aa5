"""Issue 14, defect 2: images that would cost too much to decode, or that are not whole.

Every place that decodes an image refuses one with more pixels than ``MAX_IMAGE_PIXELS``
(Pillow's own limit, its warning turned into an error), or one that does not decode in
full. Through the API that is a 400 naming ``reference_image`` and the reason — never a
500 — and nothing is charged or stored; in the worker it is a failed, refunded
generation — never a crash.
"""

import io
import struct
import zlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import override_settings
from PIL import Image

from accounts.models import Profile
from credits.models import CreditTransaction
from generations.models import Generation
from tests.generations.conftest import FLUX

NOT_AN_IMAGE = "not a JPEG, PNG, WebP or GIF image"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_declaring(width: int, height: int, rows: int = 1, cut: float = 1.0) -> bytes:
    """An 8-bit greyscale PNG declaring ``width``×``height``, with the compressed pixel
    data of only ``rows`` rows, of which only the first ``cut`` is kept (every chunk
    whole, every CRC right): a few hundred bytes for any size."""
    stream = zlib.compress(b"".join(b"\0" + bytes([r % 251]) * width for r in range(rows)), 9)
    pixels = stream[: int(len(stream) * cut)]
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", pixels) + _chunk(b"IEND", b"")


def gif_declaring(width: int, height: int) -> bytes:
    """A GIF whose logical screen and only frame declare ``width``×``height``."""
    return (
        b"GIF89a"
        + struct.pack("<HHBBB", width, height, 0, 0, 0)
        + b","
        + struct.pack("<HHHHB", 0, 0, width, height, 0)
        + b"\x02\x02\x44\x01\x00;"
    )


def encoded(fmt: str, size=(64, 48)) -> bytes:
    """A real image in ``fmt`` with noise in it, so its pixel data is not a few bytes."""
    buffer = io.BytesIO()
    Image.merge("RGB", [Image.effect_noise(size, 64 + 32 * band) for band in range(3)]).save(buffer, format=fmt)
    return buffer.getvalue()


def jpeg_declaring(width: int, height: int) -> bytes:
    """A real JPEG whose start-of-frame marker is patched to declare ``width``×``height``."""
    data = bytearray(encoded("JPEG"))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def upload(client, name: str, content: bytes, content_type: str = "image/png"):
    return client.post(
        "/api/v1/generations",
        {
            "ai_model": FLUX,
            "prompt": "in this style",
            "reference_image": SimpleUploadedFile(name, content, content_type),
        },
        format="multipart",
    )


def assert_refused_on_reference(response, reason: str, user, media_root):
    assert response.status_code == 400, f"{response.status_code}: {response.content[:300]!r}"
    body = response.json()
    assert body["code"] == "invalid", body
    (message,) = body["errors"]["reference_image"]
    assert reason in message, message
    assert not Generation.objects.filter(user=user).exists()
    assert Profile.objects.get(pk=user.pk).credits_balance == 100
    assert not CreditTransaction.objects.filter(user=user, type="usage").exists()
    assert not media_root.exists() or not any(p.is_file() for p in media_root.rglob("*")), "an upload was kept"


BOMBS = {
    "png-50000x50000": lambda: png_declaring(50_000, 50_000),
    "gif-65535x65535": lambda: gif_declaring(65_535, 65_535),
    "jpeg-65000x65000": lambda: jpeg_declaring(65_000, 65_000),
}


@pytest.mark.parametrize("bomb", BOMBS.values(), ids=BOMBS.keys())
def test_a_decompression_bomb_is_a_400_too_many_pixels(alice, api_as, media_root, bomb):
    data = bomb()
    assert len(data) < 5_000  # tiny on the wire, billions of pixels once decoded
    response = upload(api_as(alice), "bomb.png", data)
    assert_refused_on_reference(response, "too many pixels", alice, media_root)


@pytest.mark.parametrize(
    "limit",
    [64 * 48 // 2 - 1, 64 * 48 - 1],  # over twice the limit (Pillow's error), just over it (Pillow's warning)
    ids=["over-twice-the-limit", "just-over-the-limit"],
)
def test_the_limit_is_the_max_image_pixels_setting(alice, api_as, media_root, settings, limit):
    settings.MAX_IMAGE_PIXELS = limit
    response = upload(api_as(alice), "ref.png", encoded("PNG", (64, 48)))
    assert_refused_on_reference(response, "too many pixels", alice, media_root)
    assert f"{limit:,}" in response.json()["errors"]["reference_image"][0]


def test_an_image_of_exactly_the_limit_is_accepted(alice, api_as, settings):
    settings.MAX_IMAGE_PIXELS = 64 * 48
    response = upload(api_as(alice), "ref.png", encoded("PNG", (64, 48)))
    assert response.status_code == 201, response.content[:300]


def half(data: bytes) -> bytes:
    return data[: len(data) // 2]


def _truncated_png() -> bytes:
    data = encoded("PNG")
    return data[: len(data) - 12]  # the IEND chunk cut off


TRUNCATED = {
    "png-cut-in-the-pixel-data": lambda: encoded("PNG")[:60],
    "png-without-its-end": _truncated_png,
    # Every chunk whole and its CRC right, but the compressed pixel data stops half-way:
    # verify() passes, only decoding the pixels finds it.
    "png-pixel-stream-cut": lambda: png_declaring(256, 256, rows=256, cut=0.5),
    "jpeg-cut-in-half": lambda: half(encoded("JPEG", (256, 256))),
    "gif-cut-in-half": lambda: half(encoded("GIF", (256, 256))),
    "webp-cut-in-half": lambda: half(encoded("WEBP", (256, 256))),
}


@pytest.mark.parametrize("damaged", TRUNCATED.values(), ids=TRUNCATED.keys())
def test_a_truncated_image_is_a_400_truncated(alice, api_as, media_root, damaged):
    response = upload(api_as(alice), "ref.png", damaged())
    assert_refused_on_reference(response, "truncated", alice, media_root)


NOT_IMAGES = {
    "text": ("notes.png", b"hello, not a picture", "image/png"),
    "html": ("x.html", b"<html><script>alert(document.domain)</script></html>", "text/html"),
    "pdf": ("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "application/pdf"),
    "svg": ("fox.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>", "image/svg+xml"),
    "png-magic-only": ("fox.png", b"\x89PNG\r\n\x1a\n", "image/png"),
    "bmp": ("fox.bmp", encoded("BMP"), "image/bmp"),  # an image, but not one of the accepted formats
    "tiff": ("fox.tiff", encoded("TIFF"), "image/tiff"),
}


@pytest.mark.parametrize(("name", "content", "content_type"), NOT_IMAGES.values(), ids=NOT_IMAGES.keys())
def test_a_file_that_is_not_an_accepted_image_is_a_400_not_an_image(
    alice, api_as, media_root, name, content, content_type
):
    response = upload(api_as(alice), name, content, content_type)
    assert_refused_on_reference(response, NOT_AN_IMAGE, alice, media_root)


def test_decode_image_names_the_reason_and_leaves_the_file_where_it_was(settings):
    """The function every decoding place uses (velro/media.py), without the API."""
    from velro.media import ImageRejected, decode_image

    settings.MAX_IMAGE_PIXELS = 1_000_000
    cases = {
        "too_many_pixels": png_declaring(50_000, 50_000),
        "truncated": png_declaring(500, 500, rows=500, cut=0.5),
        "not_an_image": b"<html></html>",
    }
    for reason, data in cases.items():
        with pytest.raises(ImageRejected) as caught:
            decode_image(io.BytesIO(data))
        assert caught.value.reason == reason, (reason, caught.value)
    fileobj = io.BytesIO(encoded("WEBP"))
    fileobj.seek(3)
    decoded = decode_image(fileobj)
    assert (decoded.format, decoded.content_type, decoded.extension, decoded.size) == (
        "WEBP",
        "image/webp",
        "webp",
        (64, 48),
    )
    assert fileobj.tell() == 3


# --- the worker ---------------------------------------------------------------------------


def run_worker_once():
    out, err = io.StringIO(), io.StringIO()
    call_command("run_worker", "--once", stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_the_local_provider_refuses_to_render_more_pixels_than_the_limit(alice, api_as, settings):
    """The local provider makes images from the requested size: over MAX_IMAGE_PIXELS it
    fails the generation (refunded) instead of allocating the image."""
    settings.MAX_IMAGE_PIXELS = 512 * 512 - 1
    created = api_as(alice).post(
        "/api/v1/generations",
        {"ai_model": FLUX, "prompt": "a lighthouse", "parameters": {"width": 512, "height": 512}},
        format="json",
    )
    assert created.status_code == 201, created.content[:300]
    out, err = run_worker_once()
    generation = Generation.objects.get(pk=created.json()["id"])
    assert generation.status == "failed", (generation.status, out, err)
    assert "too many pixels" in generation.error_message, generation.error_message
    assert "crashed" not in err, err
    assert Profile.objects.get(pk=alice.pk).credits_balance == 100  # refunded


@pytest.mark.parametrize(
    "replacement",
    [png_declaring(50_000, 50_000), png_declaring(2000, 2000, rows=2000, cut=0.1), b"<html>not an image</html>", b""],
    ids=["bomb", "truncated", "html", "empty"],
)
def test_a_bad_reference_file_on_disk_does_not_crash_the_worker(alice, api_as, media_root, replacement):
    """A stored reference that went bad after the upload (replaced on disk): the worker
    still finishes the generation. The local provider does not decode references; with
    an over-limit image around, rendering still obeys the limit."""
    created = upload(api_as(alice), "ref.png", encoded("PNG"))
    assert created.status_code == 201, created.content[:300]
    generation = Generation.objects.get(pk=created.json()["id"])
    (media_root / generation.reference_image.name).write_bytes(replacement)
    with override_settings(MAX_IMAGE_PIXELS=10_000_000):
        out, err = run_worker_once()
    generation.refresh_from_db()
    assert generation.status == "completed", (generation.status, generation.error_message, out, err)
    assert err == "", err
