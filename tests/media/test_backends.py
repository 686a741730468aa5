"""Issue 15: the same media suite on both backends — ``local`` (MEDIA_ROOT, the app's
signed /media/ links) and ``s3`` (a private bucket on moto's S3 server over loopback,
presigned links fetched over HTTP, never proxied by the app).

What a person does: upload a reference photo, let the worker render, read the row, and
follow the links it carries. Whoever cannot read the row never gets a link; a URL without
a signature gets nothing. tests/media/test_seaweedfs.py adds what moto cannot prove
(tampered and expired presigned links refused by a server that checks them).
"""

import io
import re
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from PIL import Image

from generations.models import Generation
from tests.generations.conftest import FLUX
from velro.media_links import signed_media_url

pytestmark = pytest.mark.django_db

GPS_IFD = 0x8825


class Backend:
    def __init__(self, name, client, root=None, s3=None, bucket=None):
        self.name, self.client, self.root, self.s3, self.bucket = name, client, root, s3, bucket

    def fetch(self, url, **headers) -> tuple[int, dict, bytes]:
        if self.name == "local":
            response = self.client.get(url, **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
            content = b"".join(response.streaming_content) if response.streaming else response.content
            return response.status_code, {k.lower(): v for k, v in response.headers.items()}, content
        response = httpx.get(url, headers=headers, timeout=10)
        return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.content

    def names(self) -> list[str]:
        if self.name == "local":
            return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.is_file())
        return self.s3.keys(self.bucket)


@pytest.fixture(params=["local", "s3"])
def backend(request, settings, tmp_path, client):
    if request.param == "local":
        settings.MEDIA_ROOT = tmp_path / "media"
        settings.MEDIA_ROOT.mkdir()
        return Backend("local", client, root=settings.MEDIA_ROOT)
    server = request.getfixturevalue("moto_s3")
    bucket = server.new_bucket()
    server.use(settings, bucket)
    return Backend("s3", client, s3=server, bucket=bucket)


def phone_photo() -> bytes:
    """A JPEG with a GPS position in its EXIF and HTML appended after the image."""
    image = Image.new("RGB", (64, 48), (30, 140, 90))
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 22.0, 11.0), 3: "E", 4: (4.0, 53.0, 22.0)})
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue() + b"<html><script>alert(document.cookie)</script></html>"


@pytest.fixture
def completed(alice, api_as):
    created = api_as(alice).post(
        "/api/v1/generations",
        {
            "ai_model": FLUX,
            "prompt": "a heron at dawn",
            "parameters": '{"width": 640, "height": 480}',
            "reference_image": SimpleUploadedFile("photo.html", phone_photo(), content_type="text/html"),
        },
        format="multipart",
    )
    assert created.status_code == 201, created.content
    call_command("run_worker", "--once", stdout=io.StringIO())
    generation = Generation.objects.get(pk=created.json()["id"])
    assert generation.status == "completed", generation.error_message
    return generation


def test_links_from_the_api_fetch_the_output_its_thumbnail_and_the_clean_reference(backend, alice, api_as, completed):
    prefix = f"generations/{alice.pk}/{completed.pk}"
    stored = backend.names()
    assert f"{prefix}/0.png" in stored and f"{prefix}/0.thumb.webp" in stored
    assert [n for n in stored if n.startswith("references/")] == [completed.reference_image.name]
    assert re.fullmatch(rf"references/{alice.pk}/[0-9a-f]{{32}}\.jpg", completed.reference_image.name)

    row = api_as(alice).get(f"/api/v1/generations/{completed.pk}").json()
    (output,) = row["outputs"]
    if backend.name == "s3":  # straight to the bucket, presigned for the link's life
        for url in (output["url"], output["thumbnail_url"], row["reference_image"]):
            assert url.startswith(f"{backend.s3.endpoint}/{backend.bucket}/") and "X-Amz-Signature=" in url
            assert "X-Amz-Expires=3600" in url
    status, headers, content = backend.fetch(output["url"])
    assert (status, headers["content-type"]) == (200, "image/png")
    assert headers["cache-control"].startswith("private, max-age=")
    assert int(headers["cache-control"].rsplit("=", 1)[1]) <= 3600
    assert Image.open(io.BytesIO(content)).size == (640, 480)

    status, headers, content = backend.fetch(output["thumbnail_url"])
    assert (status, headers["content-type"]) == (200, "image/webp")
    assert Image.open(io.BytesIO(content)).size == (512, 384)

    status, headers, content = backend.fetch(row["reference_image"])
    assert (status, headers["content-type"]) == (200, "image/jpeg")  # never text/html
    assert b"<script" not in content and b"<html" not in content  # the appended page is gone
    assert not Image.open(io.BytesIO(content)).getexif().get_ifd(GPS_IFD)  # and so is the GPS position


def test_a_download_link_is_an_attachment_with_a_readable_name(backend, completed):
    name = completed.outputs[0]["path"]
    status, headers, content = backend.fetch(signed_media_url(name, download=True))
    assert status == 200 and content[:8] == b"\x89PNG\r\n\x1a\n"
    assert headers["content-disposition"] == f'attachment; filename="velro-{completed.pk}-0.png"'


def test_a_url_without_its_signature_gets_nothing(backend, completed):
    url = signed_media_url(completed.outputs[0]["path"])
    bare = urlunsplit(urlsplit(url)._replace(query=""))
    status, _, content = backend.fetch(bare)
    assert status in (403, 404) and b"PNG" not in content


def test_someone_else_never_gets_a_link(backend, bob, api_as, api, completed):
    response = api_as(bob).get(f"/api/v1/generations/{completed.pk}")
    assert response.status_code == 404
    listing = api_as(bob).get("/api/v1/generations")
    assert listing.json()["results"] == [] and completed.outputs[0]["path"] not in listing.content.decode()
    anonymous = api.get(f"/api/v1/generations/{completed.pk}")
    assert anonymous.status_code == 401 and "sig" not in anonymous.content.decode().lower()


def test_every_read_mints_links_to_files_the_storage_holds(backend, alice, api_as, completed):
    for row in api_as(alice).get("/api/v1/generations").json()["results"]:
        for output in row["outputs"]:
            for url in (output["url"], output["thumbnail_url"]):
                assert backend.fetch(url)[0] == 200
    assert default_storage.exists(completed.outputs[0]["thumbnail_path"])
