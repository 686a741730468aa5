"""Issue 15, first slice: local media behind short-lived signed links.

Whoever may read a generation gets links that work for MEDIA_URL_TTL seconds; nobody
else learns one. A tampered or expired link is a 403, an unsigned path a 404. The view
streams, answers Range requests, ETag/Last-Modified conditionals, and never lets a
browser cache a file longer than its link lives.
"""

import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core import signing
from django.core.files.storage import default_storage
from django.core.management import call_command
from PIL import Image

from generations.models import AIModel, Generation
from tests.generations.conftest import FLUX
from velro import media_links
from velro.media_links import MediaLinkRefused, link_expiry, media_link_check, signed_media_url

pytestmark = pytest.mark.django_db

CSP = "default-src 'none'; sandbox"
NAME = "generations/6f1c/0.png"


@pytest.fixture(autouse=True)
def media_root(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.MEDIA_ROOT.mkdir()
    return settings.MEDIA_ROOT


def png(size=(40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def stored(media_root) -> bytes:
    content = png()
    (media_root / NAME).parent.mkdir(parents=True)
    (media_root / NAME).write_bytes(content)
    return content


class Clock:
    """Stands in for ``time`` in velro.media_links."""

    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch):
    clock = Clock(1_900_000_000.0)
    monkeypatch.setattr(media_links, "time", clock)
    return clock


def body(response) -> bytes:
    return b"".join(response.streaming_content) if response.streaming else response.content


def query(url: str) -> dict:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def max_age(response) -> int:
    match = re.fullmatch(r"private, max-age=(\d+)", response["Cache-Control"])
    assert match, response["Cache-Control"]
    return int(match.group(1))


# --- the link ----------------------------------------------------------------------


def test_a_signed_link_serves_the_file_with_the_media_headers(client, stored, settings):
    link = signed_media_url(NAME)
    assert link.startswith(f"/media/{NAME}?expires=") and "&sig=" in link
    response = client.get(link)
    assert response.status_code == 200
    assert response.streaming  # FileResponse: never the whole file in memory
    assert body(response) == stored
    assert response["Content-Type"] == "image/png"
    assert response["Content-Length"] == str(len(stored))
    assert response["Content-Disposition"] == "inline"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Security-Policy"] == CSP
    assert response["Accept-Ranges"] == "bytes"
    assert response["ETag"].startswith('"') and response["Last-Modified"].endswith("GMT")
    assert 0.9 * settings.MEDIA_URL_TTL <= max_age(response) <= settings.MEDIA_URL_TTL


def test_an_absolute_link_when_the_request_is_known(rf, settings):
    settings.ALLOWED_HOSTS = ["api.example.com"]
    request = rf.get("/api/v1/generations", HTTP_HOST="api.example.com", secure=True)
    assert signed_media_url(NAME, request=request).startswith(f"https://api.example.com/media/{NAME}?expires=")


@pytest.mark.parametrize(
    "name", [NAME, "generations/x/a b ü (1)!~'*.png", "generations/x/100%.png", "generations/./x/0.png"]
)
@pytest.mark.parametrize("media_url", ["/media/", "/médias et plus/", "//cdn.example.com/m/"])
@pytest.mark.parametrize("download", [False, True])
def test_a_minted_absolute_link_is_exactly_what_djangos_build_absolute_uri_makes(
    rf, settings, clock, name, media_url, download
):
    """LinkMinter skips build_absolute_uri's iri_to_uri where it cannot change the link:
    the result must be the same string in every case (names to quote, a MEDIA_URL it
    would quote, one that is not root-relative, a dot segment)."""
    settings.ALLOWED_HOSTS = ["api.example.com"]
    settings.MEDIA_URL = media_url
    request = rf.get("/api/v1/generations", HTTP_HOST="api.example.com:8443", secure=True)
    minted = media_links.LinkMinter(request)(name, download=download)
    relative = media_links.LinkMinter(None)(name, download=download)
    assert minted == request.build_absolute_uri(relative)
    assert (media_links.LinkMinter(request).prefix is not None) == (media_url == "/media/")


@pytest.mark.parametrize(
    "tamper",
    [
        lambda url: url[:-2] + ("AA" if not url.endswith("AA") else "BB"),  # the signature
        lambda url: re.sub(r"expires=(\d+)", lambda m: f"expires={int(m.group(1)) + 3600}", url),  # a longer life
        lambda url: url.replace("/0.png?", "/1.png?"),  # another file, same signature
        lambda url: url + "&download=1",  # a flag that was not signed
        lambda url: url.replace("expires=", "expires=x"),
        lambda url: re.sub(r"expires=\d+&", "", url),  # no expiry at all
    ],
    ids=["signature", "expiry", "name", "download", "garbled-expiry", "no-expiry"],
)
def test_a_tampered_link_is_a_403(client, stored, media_root, tamper):
    (media_root / "generations/6f1c/1.png").write_bytes(stored)
    response = client.get(tamper(signed_media_url(NAME)))
    assert response.status_code == 403
    assert response.json()["code"] == "bad_signature"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cache-Control"] == "no-store"


def test_an_expired_link_is_a_403(client, stored, clock, settings):
    link = signed_media_url(NAME)
    expires = int(query(link)["expires"])
    clock.now = expires - 1
    assert client.get(link).status_code == 200
    clock.now = expires
    response = client.get(link)
    assert response.status_code == 403
    assert response.json() == {"detail": "This media link has expired.", "code": "expired"}


def test_links_live_between_nine_tenths_and_all_of_the_ttl_and_repeat_within_a_step(clock):
    for ttl in (1, 7, 60, 3600, 86400):
        for now in (1_900_000_000, 1_900_000_059, 1_900_003_333):
            expires = link_expiry(ttl, now)
            assert now < expires <= now + ttl
            assert expires - now >= ttl - max(1, ttl // 10) + 1
    # Minted a few seconds apart: the same URL, so a browser's cache keeps working.
    first = signed_media_url(NAME)
    clock.now += 5
    assert signed_media_url(NAME) == first


def test_cache_control_never_outlives_the_link(client, stored, clock):
    link = signed_media_url(NAME, ttl=100)
    expires = int(query(link)["expires"])
    assert max_age(client.get(link)) == expires - int(clock.now) <= 100
    clock.now = expires - 7
    assert max_age(client.get(link)) == 7


def test_an_unsigned_path_is_a_404_even_for_a_file_that_exists(client, stored):
    assert client.get(f"/media/{NAME}").status_code == 404
    assert client.get(f"/media/{NAME}?expires=9999999999").status_code == 404


def test_a_rotated_secret_key_keeps_links_valid_through_its_fallback(client, stored, settings):
    link = signed_media_url(NAME)
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-new-key-" + "k" * 50
    assert client.get(link).status_code == 403
    settings.SECRET_KEY_FALLBACKS = [old]
    assert client.get(link).status_code == 200


def test_minting_signs_exactly_as_djangos_signer_and_uses_the_storage_url(settings):
    for value in ("a\n1\n0", "generations/ü é/0.png\n1900000000\n1"):
        assert media_links._signature(value) == signing.Signer(salt=media_links.SALT).signature(value)
    settings.SECRET_KEY = "another-key-" + "z" * 50
    assert media_links._signature("x") == signing.Signer(salt=media_links.SALT).signature("x")
    for name in (NAME, "references/u/a b ü.png", "x/(1)~!*'.png"):
        assert signed_media_url(name).split("?")[0] == default_storage.url(name)


def test_media_link_check_says_how_long_is_left():
    link = signed_media_url(NAME, ttl=60)
    params = query(link)
    expires = int(params["expires"])
    assert media_link_check(NAME, expires=params["expires"], sig=params["sig"], download=False, now=expires - 9) == 9
    with pytest.raises(MediaLinkRefused) as refused:
        media_link_check(NAME, expires=params["expires"], sig=params["sig"], download=False, now=expires + 1)
    assert refused.value.reason == "expired"


# --- download, conditionals, ranges --------------------------------------------------


def test_download_gives_an_attachment_with_a_readable_name(client, stored):
    link = signed_media_url(NAME, download=True)
    assert "download=1" in link
    response = client.get(link)
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="velro-6f1c-0.png"'
    assert response["Content-Type"] == "image/png"
    assert body(response) == stored
    # The same link without the flag is not one that was signed.
    assert client.get(link.replace("download=1&", "")).status_code == 403


def test_etag_and_last_modified_answer_conditional_gets_with_304(client, stored):
    link = signed_media_url(NAME)
    first = client.get(link)
    for headers in ({"HTTP_IF_NONE_MATCH": first["ETag"]}, {"HTTP_IF_MODIFIED_SINCE": first["Last-Modified"]}):
        again = client.get(link, **headers)
        assert again.status_code == 304
        assert again["ETag"] == first["ETag"]
        assert again["Cache-Control"] == first["Cache-Control"]
        assert again["X-Content-Type-Options"] == "nosniff"
        assert again["Content-Security-Policy"] == CSP
    assert client.get(link, HTTP_IF_NONE_MATCH='"something-else"').status_code == 200


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-9", 0, 9), ("bytes=10-", 10, None), ("bytes=-5", -5, None), ("bytes=4-999999", 4, None)],
)
def test_a_range_request_is_a_206_with_those_bytes(client, stored, header, first, last):
    size = len(stored)
    response = client.get(signed_media_url(NAME), HTTP_RANGE=header)
    assert response.status_code == 206
    expected = stored[first : None if last is None else last + 1]
    start = first % size
    assert body(response) == expected
    assert response["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{size}"
    assert response["Content-Length"] == str(len(expected))
    assert response["Content-Type"] == "image/png"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_an_unsatisfiable_range_is_a_416(client, stored):
    size = len(stored)
    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        response = client.get(signed_media_url(NAME), HTTP_RANGE=header)
        assert response.status_code == 416, header
        assert response["Content-Range"] == f"bytes */{size}"


def test_ranges_that_are_ignored_send_the_whole_file(client, stored):
    link = signed_media_url(NAME)
    etag = client.get(link)["ETag"]
    for headers in (
        {"HTTP_RANGE": "bytes=0-1,4-5"},  # several ranges: the whole file is allowed
        {"HTTP_RANGE": "bytes=9-3"},  # not a valid range
        {"HTTP_RANGE": "lines=1-2"},
        {"HTTP_RANGE": "bytes=0-9", "HTTP_IF_RANGE": '"an-older-version"'},
    ):
        response = client.get(link, **headers)
        assert response.status_code == 200, headers
        assert body(response) == stored
    assert client.get(link, HTTP_RANGE="bytes=0-9", HTTP_IF_RANGE=etag).status_code == 206


# --- the API hands links to whoever may read the row, and only to them ---------------


@pytest.fixture
def completed(alice, api_as):
    from django.core.files.uploadedfile import SimpleUploadedFile

    png_bytes = png((20, 20))
    created = api_as(alice).post(
        "/api/v1/generations",
        {
            "ai_model": FLUX,
            "prompt": "a heron",
            "parameters": '{"width": 256, "height": 320}',
            "reference_image": SimpleUploadedFile("ref.png", png_bytes, content_type="image/png"),
        },
        format="multipart",
    )
    assert created.status_code == 201, created.content
    call_command("run_worker", "--once", stdout=io.StringIO())
    generation = Generation.objects.get(pk=created.json()["id"])
    assert generation.status == "completed"
    return generation


def test_the_local_provider_stores_the_name_and_the_api_mints_links(alice, api_as, client, completed):
    (stored_output,) = completed.outputs
    assert stored_output["path"] == f"generations/{alice.pk}/{completed.pk}/0.png" and "url" not in stored_output
    assert stored_output["thumbnail_path"] == f"generations/{alice.pk}/{completed.pk}/0.thumb.webp"

    api = api_as(alice)
    detail = api.get(f"/api/v1/generations/{completed.pk}").json()
    (listed,) = [row for row in api.get("/api/v1/generations").json()["results"] if row["id"] == str(completed.pk)]
    for row in (detail, listed):
        (output,) = row["outputs"]
        assert "path" not in output and "thumbnail_path" not in output
        assert output["url"].startswith(f"http://testserver/media/generations/{alice.pk}/{completed.pk}/0.png?expires=")
        thumbnail = client.get(output["thumbnail_url"])
        assert thumbnail.status_code == 200 and thumbnail["Content-Type"] == "image/webp"
        assert Image.open(io.BytesIO(body(thumbnail))).size == (256, 320)  # never enlarged
        assert (output["mime_type"], output["width"], output["height"]) == ("image/png", 256, 320)
        served = client.get(output["url"])
        assert served.status_code == 200
        assert Image.open(io.BytesIO(body(served))).size == (256, 320)
        reference = row["reference_image"]
        assert reference.startswith(f"http://testserver/media/references/{alice.pk}/") and "?expires=" in reference
        assert client.get(reference).status_code == 200


def test_someone_else_gets_a_404_for_the_row_and_so_never_a_link(bob, api_as, completed):
    api = api_as(bob)
    assert api.get(f"/api/v1/generations/{completed.pk}").status_code == 404
    listing = api.get("/api/v1/generations")
    assert listing.status_code == 200 and listing.json()["results"] == []
    assert "/media/" not in listing.content.decode()


def test_an_anonymous_person_gets_no_link(client, api, completed):
    for url in (f"/api/v1/generations/{completed.pk}", "/api/v1/generations"):
        response = api.get(url)
        assert response.status_code == 401
        assert "/media/" not in response.content.decode()
    # Nor can the file be fetched without one.
    assert client.get(f"/media/{completed.outputs[0]['path']}").status_code == 404


def test_older_rows_with_media_urls_get_links_and_provider_urls_stay(alice, api_as, client, media_root, stored):
    generation = Generation.objects.create(
        user=alice,
        ai_model=AIModel.objects.get(pk=FLUX),
        prompt="old",
        status="completed",
        outputs=[
            {"url": f"/media/{NAME}", "mime_type": "image/png"},  # what the local provider stored before
            {"url": f"http://testserver/media/{NAME}"},  # the same, absolute on this host
            {"url": "https://v3.fal.media/files/a.jpg", "mime_type": "image/jpeg"},  # a provider's CDN
            {"url": "https://elsewhere.example/media/x.png"},  # not ours
            {"url": "/media/../secret.txt"},  # never signed
            {"mime_type": "image/png"},
        ],
    )
    outputs = api_as(alice).get(f"/api/v1/generations/{generation.pk}").json()["outputs"]
    for output in outputs[:2]:
        assert output["url"].startswith(f"http://testserver/media/{NAME}?expires=")
        response = client.get(output["url"])
        assert response.status_code == 200 and body(response) == stored
    assert outputs[2] == {"url": "https://v3.fal.media/files/a.jpg", "mime_type": "image/jpeg"}
    assert outputs[3]["url"] == "https://elsewhere.example/media/x.png"
    assert "sig=" not in outputs[4]["url"]
    assert outputs[5] == {"mime_type": "image/png", "url": ""}
