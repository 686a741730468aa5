"""Where media live: Django's default storage, local (MEDIA_ROOT) or a private S3 bucket.

``MEDIA_STORAGE`` picks the backend in settings (README, "Media"). Everything that writes
a file goes through ``store`` (generated names only, never a client's), and everything
that hands out a URL goes through ``velro.media_links.signed_media_url``, so the two
backends differ only here and there.

``PrivateS3Storage`` is django-storages' S3 backend with what a private bucket of paid
media needs on top: network timeouts (a stalled store fails a request instead of hanging
a worker), and per object the content type of the decoded format (the name's extension
is generated from it) with ``Content-Disposition`` inline for images and video and
attachment for anything else, the same rule the local view applies.

Plain functions and one class; this module imports no domain app.
"""

from __future__ import annotations

import mimetypes

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from velro.media import INLINE_TYPES, OCTET_STREAM

try:  # only with MEDIA_STORAGE=s3 (requirements.txt installs both anyway)
    from botocore.config import Config
    from storages.backends.s3 import S3Storage
except ImportError:  # pragma: no cover
    S3Storage = object


class PrivateS3Storage(S3Storage):
    """A private bucket: objects with the bucket's default ACL, presigned URLs only
    (settings.STORAGES fixes both), bounded network waits."""

    #: connect / read timeouts (seconds) and botocore's standard retry mode.
    timeouts = {"connect_timeout": 5, "read_timeout": 60, "retries": {"max_attempts": 3, "mode": "standard"}}

    def __init__(self, **settings):
        super().__init__(**settings)
        self.client_config = self.client_config.merge(Config(**self.timeouts))

    def get_object_parameters(self, name):
        params = super().get_object_parameters(name)
        content_type = mimetypes.guess_type(name)[0] or OCTET_STREAM
        params.setdefault("ContentType", content_type)
        params.setdefault("ContentDisposition", "inline" if content_type in INLINE_TYPES else "attachment")
        return params


def store(name: str, data: bytes) -> str:
    """Save ``data`` under the generated ``name`` (or a free variant of it) in the media
    storage; the stored name."""
    return default_storage.save(name, ContentFile(data))


def is_s3() -> bool:
    return settings.MEDIA_STORAGE == "s3"
