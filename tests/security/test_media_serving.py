"""Issue 14, defect 3: nothing stored is ever served as something a browser would run.

``/media/`` (signed links: tests/media has their rules) decides the type of a file
from its content — Pillow for images, magic bytes for mp4/webm — never from its name or
the uploader's header; every answer carries ``nosniff`` and a sandboxing CSP; anything else is an
``application/octet-stream`` attachment. Uploaded references get a generated name whose
extension is the decoded format's.
"""

import io
import re

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from generations.models import Generation
from tests.generations.conftest import FLUX
from velro.media_links import signed_media_url

pytestmark = pytest.mark.django_db  # requests run in a transaction (ATOMIC_REQUESTS)

CSP = "default-src 'none'; sandbox"
HTML = b"<!doctype html><html><body><script>alert(document.domain)</script></body></html>"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


def encoded(fmt: str, size=(32, 24)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format=fmt)
    return buffer.getvalue()


def fetch(client, url: str):
    response = client.get(url)
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response, body


def assert_hardened(response):
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == CSP
    assert "html" not in response["Content-Type"] and "xml" not in response["Content-Type"]


def assert_inline(response, content_type: str):
    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert_hardened(response)
    assert not response.get("Content-Disposition", "").startswith("attachment")


def assert_attachment(response):
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert_hardened(response)
    assert response["Content-Disposition"].startswith("attachment")


def test_a_png_html_polyglot_uploaded_as_x_html_is_stored_and_served_as_a_png(alice, api_as, client, media_root):
    polyglot = encoded("PNG") + HTML  # a valid PNG (Pillow decodes it) with a page appended
    response = api_as(alice).post(
        "/api/v1/generations",
        {
            "ai_model": FLUX,
            "prompt": "in this style",
            "reference_image": SimpleUploadedFile("x.html", polyglot, content_type="text/html"),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.content[:300]

    name = Generation.objects.get(pk=response.json()["id"]).reference_image.name
    assert re.fullmatch(rf"references/{alice.pk}/[0-9a-f]{{32}}\.png", name), name  # nothing of "x.html"
    url = response.json()["reference_image"]
    assert ".png?" in url, url

    served, body = fetch(client, url)
    assert_inline(served, "image/png")
    assert body.startswith(b"\x89PNG") and HTML not in body  # stored re-encoded: the page is gone


def test_the_upload_name_is_never_used(alice, api_as, media_root):
    """Name, extension and client content type all lie; the stored name comes from the
    decoded format alone."""
    for filename, fmt, ext in [("photo.png", "JPEG", "jpg"), ("a.gif.svg", "GIF", "gif"), ("noext", "WEBP", "webp")]:
        response = api_as(alice).post(
            "/api/v1/generations",
            {
                "ai_model": FLUX,
                "prompt": "in this style",
                "reference_image": SimpleUploadedFile(filename, encoded(fmt), content_type="text/html"),
            },
            format="multipart",
        )
        assert response.status_code == 201, response.content[:300]
        name = Generation.objects.get(pk=response.json()["id"]).reference_image.name
        assert re.fullmatch(rf"references/{alice.pk}/[0-9a-f]{{32}}\.{ext}", name), (filename, name)


NOT_MEDIA = {
    "html": ("notes.html", HTML),
    "html-named-png": ("evil.png", HTML),
    "svg-with-script": ("fox.svg", b"<svg xmlns='http://www.w3.org/2000/svg'><script>alert(1)</script></svg>"),
    "xhtml": ("page.xhtml", b"<html xmlns='http://www.w3.org/1999/xhtml'><script>alert(1)</script></html>"),
    "javascript": ("app.js", b"alert(document.cookie)"),
    "pdf": ("doc.pdf", b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n"),
    "text": ("readme.txt", b"plain words"),
    "empty": ("empty.png", b""),
    "bmp": ("old.bmp", encoded("BMP")),  # an image Pillow reads, but not one the app serves inline
    "png-magic-then-html": ("x.png", b"\x89PNG\r\n\x1a\n" + HTML),
}


@pytest.mark.parametrize(("filename", "content"), NOT_MEDIA.values(), ids=NOT_MEDIA.keys())
def test_a_file_that_is_not_an_image_or_video_is_served_as_an_octet_stream_attachment(
    client, media_root, filename, content
):
    (media_root / "outputs").mkdir()
    (media_root / "outputs" / filename).write_bytes(content)
    response, body = fetch(client, signed_media_url(f"outputs/{filename}"))
    assert_attachment(response)
    assert body == content


def _mp4() -> bytes:
    return b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + b"\x00\x00\x00\x08free"


def _webm() -> bytes:
    return (
        bytes.fromhex("1a45dfa3 9f 4286 81 01 42f7 81 01 42f2 81 04 42f3 81 08 4282 84") + b"webm" + b"\x42\x87\x81\x04"
    )


MEDIA = {
    "png-named-html": ("cat.html", encoded("PNG"), "image/png"),
    "jpeg-named-svg": ("cat.svg", encoded("JPEG"), "image/jpeg"),
    "gif-named-txt": ("anim.txt", encoded("GIF"), "image/gif"),
    "webp-without-extension": ("still", encoded("WEBP"), "image/webp"),
    "mp4-named-html": ("clip.html", _mp4(), "video/mp4"),
    "webm-named-js": ("clip.js", _webm(), "video/webm"),
}


@pytest.mark.parametrize(("filename", "content", "content_type"), MEDIA.values(), ids=MEDIA.keys())
def test_images_and_videos_are_served_inline_with_the_type_of_their_content(
    client, media_root, filename, content, content_type
):
    (media_root / filename).write_bytes(content)
    response, body = fetch(client, signed_media_url(filename))
    assert_inline(response, content_type)
    assert body == content


def test_missing_files_and_folders_are_404_and_nothing_escapes_media_root(client, media_root):
    (media_root.parent / "secret.txt").write_bytes(b"outside")
    (media_root / "folder").mkdir()
    assert client.get("/media/nothing-here.png").status_code == 404
    assert client.get(signed_media_url("nothing-here.png")).status_code == 404
    assert client.get(signed_media_url("folder")).status_code == 404
    assert client.get("/media/../secret.txt").status_code in (400, 404)
    assert client.get("/media/%2e%2e/secret.txt").status_code in (400, 404)
    assert client.get(signed_media_url("../secret.txt")).status_code in (400, 404)  # even were it signed


def test_not_modified_answers_keep_the_headers(client, media_root):
    (media_root / "a.png").write_bytes(encoded("PNG"))
    link = signed_media_url("a.png")
    first = client.get(link)
    again = client.get(link, HTTP_IF_MODIFIED_SINCE=first["Last-Modified"])
    assert again.status_code == 304
    assert again["X-Content-Type-Options"] == "nosniff"
    assert again["Content-Security-Policy"] == CSP


def test_sniff_content_type_reads_the_content_and_leaves_the_position(media_root):
    """The reusable decision (velro/media.py), on a file object without the view."""
    from velro.media import OCTET_STREAM, media_headers, sniff_content_type

    cases = [
        (encoded("PNG") + HTML, "image/png"),
        (encoded("JPEG"), "image/jpeg"),
        (_mp4(), "video/mp4"),
        (_webm(), "video/webm"),
        (HTML, OCTET_STREAM),
        (b"", OCTET_STREAM),
    ]
    for content, expected in cases:
        fileobj = io.BytesIO(content)
        fileobj.seek(2 if content else 0)
        assert sniff_content_type(fileobj) == expected, content[:20]
        assert fileobj.tell() == (2 if content else 0)
    assert media_headers("image/png") == {
        "Content-Type": "image/png",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CSP,
    }
    assert media_headers("text/html") == {
        "Content-Type": OCTET_STREAM,
        "Content-Disposition": "attachment",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CSP,
    }
