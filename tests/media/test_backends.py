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
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.http import Http404
from PIL import Image

from accounts.models import Profile
from generations.models import Generation
from generations.services import generation_delete, generation_file_names
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


# --- lifecycle: delete, storage used, quota ------------------------------------------


def deletion_jobs() -> list[list[str]]:
    from procrastinate.contrib.django.models import ProcrastinateJob

    return [sorted(args["names"]) for args in ProcrastinateJob.objects.values_list("args", flat=True)]


def test_deleting_a_generation_deletes_its_files_after_the_commit(
    backend, alice, api_as, completed, django_capture_on_commit_callbacks
):
    from velro.tasks import delete_media

    names = generation_file_names(completed)
    assert len(names) == 3 and set(names) == set(backend.names())  # output, thumbnail, reference
    used = sum(default_storage.size(name) for name in names)
    assert Profile.objects.get(pk=alice.pk).storage_bytes == used
    assert api_as(alice).get("/api/v1/me").json()["storage_bytes"] == used

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = api_as(alice).delete(f"/api/v1/generations/{completed.pk}")
        assert response.status_code == 204
        assert deletion_jobs() == []  # nothing before the commit: the row could come back
    for callback in callbacks:
        callback()
    (job,) = deletion_jobs()
    assert job == sorted(names)
    assert set(backend.names()) == set(names)  # the task deletes them, not the request
    delete_media(names=job)
    assert backend.names() == []
    assert Profile.objects.get(pk=alice.pk).storage_bytes == 0
    assert api_as(alice).get(f"/api/v1/generations/{completed.pk}").status_code == 404


def test_a_generation_in_flight_or_someone_elses_is_not_deleted(backend, alice, bob, api_as, completed):
    assert api_as(bob).delete(f"/api/v1/generations/{completed.pk}").status_code == 404
    with pytest.raises(Http404):  # the service itself, under bob's RLS: not found, not a 500
        generation_delete(user=bob, generation_id=completed.pk)
    pending = api_as(alice).post("/api/v1/generations", {"ai_model": FLUX, "prompt": "later"}, format="json").json()
    response = api_as(alice).delete(f"/api/v1/generations/{pending['id']}")
    assert response.status_code == 409 and "cancel it first" in response.json()["detail"]
    Generation.objects.filter(pk=pending["id"]).update(status="processing")
    assert api_as(alice).delete(f"/api/v1/generations/{pending['id']}").status_code == 409
    assert Generation.objects.filter(pk=completed.pk).exists() and deletion_jobs() == []


def test_deleting_a_person_deletes_their_files(backend, alice, completed, django_capture_on_commit_callbacks):
    names = generation_file_names(completed)
    with django_capture_on_commit_callbacks(execute=True):
        alice.delete()
    assert deletion_jobs() == [sorted(names)]


def test_the_storage_quota_refuses_new_generations_once_used_up(backend, alice, api_as, completed, settings):
    used = Profile.objects.get(pk=alice.pk).storage_bytes
    settings.MEDIA_QUOTA_BYTES = used + 10
    api = api_as(alice)
    assert api.post("/api/v1/generations", {"ai_model": FLUX, "prompt": "fits"}, format="json").status_code == 201
    upload = {
        "ai_model": FLUX,
        "prompt": "too big",
        "reference_image": SimpleUploadedFile("p.jpg", phone_photo(), content_type="image/jpeg"),
    }
    response = api.post("/api/v1/generations", upload, format="multipart")
    assert response.status_code == 413, response.content
    assert (
        response.json()["code"] == "storage_quota_exceeded" and "delete some generations" in response.json()["detail"]
    )
    settings.MEDIA_QUOTA_BYTES = used
    response = api.post("/api/v1/generations", {"ai_model": FLUX, "prompt": "full"}, format="json")
    assert response.status_code == 413
    assert Profile.objects.get(pk=alice.pk).credits_balance == 100 - 25 - 25  # the refused ones cost nothing


def test_media_gc_lists_and_deletes_orphans_and_nothing_a_row_points_at(backend, completed):
    orphan = default_storage.save(f"generations/{completed.user_id}/gone/0.png", ContentFile(b"left behind"))
    kept = set(generation_file_names(completed))

    young = io.StringIO()
    call_command("media_gc", "--quiet", stdout=young, stderr=io.StringIO())
    assert young.getvalue() == ""  # a file the worker may be about to record is no orphan

    listed = io.StringIO()
    call_command("media_gc", "--quiet", "--min-age", "0", stdout=listed, stderr=io.StringIO())
    assert listed.getvalue().split() == [orphan]
    assert set(backend.names()) == kept | {orphan}  # listing deletes nothing

    call_command("media_gc", "--min-age", "0", "--delete", stdout=io.StringIO(), stderr=io.StringIO())
    assert set(backend.names()) == kept


def test_dbhealth_reports_a_row_whose_file_is_missing(backend, completed):
    from health.base import Level
    from health.checks import check_media_files

    assert check_media_files(None).level == Level.OK
    default_storage.delete(completed.outputs[0]["thumbnail_path"])
    outcome = check_media_files(None)
    assert outcome.level == Level.ERROR and "1 file(s) of 1" in outcome.summary
    assert outcome.details == [
        {
            "generation": str(completed.pk),
            "user": str(completed.user_id),
            "name": completed.outputs[0]["thumbnail_path"],
        }
    ]


# --- avatars ---------------------------------------------------------------------------


def upload_avatar(api, content=None, name="me.jpg"):
    image = SimpleUploadedFile(name, content or phone_photo(), content_type="image/jpeg")
    return api.patch("/api/v1/me", {"avatar": image}, format="multipart")


def test_an_uploaded_avatar_is_a_clean_square_behind_a_signed_link(
    backend, alice, api_as, django_capture_on_commit_callbacks
):
    api = api_as(alice)
    big = io.BytesIO()
    photo = Image.new("RGB", (900, 600), (200, 30, 30))
    exif = Image.Exif()
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (52.0, 22.0, 11.0)})
    photo.save(big, format="JPEG", exif=exif)
    response = upload_avatar(api, big.getvalue())
    assert response.status_code == 200, response.content
    (first,) = backend.names()
    assert re.fullmatch(rf"avatars/{alice.pk}/[0-9a-f]{{32}}\.webp", first)
    me = api.get("/api/v1/me").json()
    assert me["storage_bytes"] == default_storage.size(first)
    assert response.json()["avatar_url"] != "" and "avatar" not in me
    status, headers, content = backend.fetch(me["avatar_url"])
    assert (status, headers["content-type"]) == (200, "image/webp")
    picture = Image.open(io.BytesIO(content))
    assert picture.size == (256, 256) and not picture.getexif().get_ifd(GPS_IFD)

    # A new one replaces it: the old file goes after the commit, the count follows.
    with django_capture_on_commit_callbacks(execute=True):
        assert upload_avatar(api).status_code == 200
    assert deletion_jobs() == [[first]]
    (second,) = [n for n in backend.names() if n != first]
    assert Profile.objects.get(pk=alice.pk).storage_bytes == default_storage.size(second)
    assert call_gc() == [first]  # the current avatar is no orphan (the old one awaits its task)

    # An external picture instead: the uploaded one goes.
    with django_capture_on_commit_callbacks(execute=True):
        response = api.patch("/api/v1/me", {"avatar_url": "https://img.example/a.png"}, format="json")
    assert response.json()["avatar_url"] == "https://img.example/a.png"
    assert deletion_jobs() == [[first], [second]]
    profile = Profile.objects.get(pk=alice.pk)
    assert (profile.avatar_path, profile.storage_bytes) == ("", 0)


def test_a_bad_avatar_is_a_400_on_the_field_and_stores_nothing(backend, alice, api_as):
    api = api_as(alice)
    response = upload_avatar(api, b"<html>not a picture</html>", "me.png")
    assert response.status_code == 400 and "avatar" in response.json()["errors"]
    both = api.patch(
        "/api/v1/me",
        {"avatar": SimpleUploadedFile("a.jpg", phone_photo()), "avatar_url": "https://img.example/a.png"},
        format="multipart",
    )
    assert both.status_code == 400 and "not both" in str(both.json()["errors"])
    assert backend.names() == [] and Profile.objects.get(pk=alice.pk).avatar_path == ""


def test_deleting_a_person_deletes_their_avatar(backend, alice, api_as, django_capture_on_commit_callbacks):
    assert upload_avatar(api_as(alice)).status_code == 200
    (name,) = backend.names()
    with django_capture_on_commit_callbacks(execute=True):
        alice.delete()
    assert [name] in deletion_jobs()


def call_gc() -> list[str]:
    out = io.StringIO()
    call_command("media_gc", "--quiet", "--min-age", "0", stdout=out, stderr=io.StringIO())
    return out.getvalue().split()


def test_a_range_request_gets_part_of_the_file_so_video_can_seek(backend, completed):
    url = signed_media_url(completed.outputs[0]["path"])
    status, headers, whole = backend.fetch(url)
    status, headers, part = backend.fetch(url, Range="bytes=8-23")
    assert status == 206 and part == whole[8:24]
    assert headers["content-range"] == f"bytes 8-23/{len(whole)}"
