"""Reference images are stored re-encoded: only their pixels reach storage.

Issue 15 (uploads): a phone photo's EXIF (its GPS position) must not be stored, and
nothing appended to an image (a PNG+HTML polyglot) survives; the original bytes are
never stored, so they can never be served.
"""

import io

import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from generations.models import Generation

FLUX = "fal-ai/flux/dev"  # takes a reference image
GPS_IFD = 0x8825
ORIENTATION = 0x0112


@pytest.fixture(autouse=True)
def _media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


def _jpeg_with_gps_rotated() -> bytes:
    """A 40×20 JPEG whose EXIF says "rotate 90°" and carries a GPS position."""
    image = Image.new("RGB", (40, 20), (10, 200, 10))
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # rotate 90° clockwise to display
    exif[0x010F] = "PhoneMaker"
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 22.0, 11.0), 3: "E", 4: (4.0, 53.0, 22.0)})
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def _post(client, name: str, data: bytes, content_type: str):
    return client.post(
        "/api/v1/generations",
        {"ai_model": FLUX, "prompt": "a heron", "reference_image": SimpleUploadedFile(name, data, content_type)},
        format="multipart",
    )


def _stored(response) -> bytes:
    assert response.status_code == 201, response.json()
    name = Generation.objects.get(pk=response.json()["id"]).reference_image.name
    with default_storage.open(name) as stored:
        return stored.read()


def test_a_photos_exif_and_gps_position_are_not_stored(alice, api_as):
    original = _jpeg_with_gps_rotated()
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)  # the upload has one

    stored = _stored(_post(api_as(alice), "IMG_0001.jpg", original, "image/jpeg"))

    with Image.open(io.BytesIO(stored)) as image:
        assert image.format == "JPEG"
        assert dict(image.getexif()) == {}
        assert "exif" not in image.info
        assert image.size == (20, 40)  # the orientation was applied to the pixels
    assert b"PhoneMaker" not in stored


def test_bytes_appended_to_an_image_are_not_stored(alice, api_as):
    buffer = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buffer, format="PNG")
    polyglot = buffer.getvalue() + b"<html><script>alert(document.domain)</script></html>"

    stored = _stored(_post(api_as(alice), "x.html", polyglot, "text/html"))

    assert b"<script" not in stored and b"<html" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.format, image.size, image.getpixel((3, 3))) == ("PNG", (16, 16), (255, 0, 0))


def test_a_png_text_chunk_is_not_stored(alice, api_as):
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret-location-52.37N")
    buffer = io.BytesIO()
    Image.new("RGBA", (8, 8), (0, 0, 255, 128)).save(buffer, format="PNG", pnginfo=info)

    stored = _stored(_post(api_as(alice), "a.png", buffer.getvalue(), "image/png"))

    assert b"secret-location" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert image.mode == "RGBA" and image.getpixel((0, 0)) == (0, 0, 255, 128)


def test_an_animated_gif_keeps_its_frames(alice, api_as):
    frames = [Image.new("RGB", (12, 12), color) for color in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=80, loop=0)
    buffer.write(b"trailing garbage")

    stored = _stored(_post(api_as(alice), "anim.gif", buffer.getvalue(), "image/gif"))

    assert b"trailing garbage" not in stored
    with Image.open(io.BytesIO(stored)) as image:
        assert (image.format, image.n_frames) == ("GIF", 3)
