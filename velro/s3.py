"""The media storage for ``MEDIA_STORAGE=s3``: django-storages' S3 backend, private.

On top of django-storages: network timeouts (a stalled store fails a request instead of
hanging a worker), and per object the content type of the decoded format (the name's
extension is generated from it; velro/storage.py) with ``Content-Disposition`` inline
for images and video and attachment for anything else, the rule the local view applies.
The bucket stays private: settings.MEDIA_S3_STORAGE fixes no ACL, presigned URLs only,
no custom domain, no overwrite. Imported only when that backend is in use (boto3 is a
large import).
"""

import mimetypes

from botocore.config import Config
from storages.backends.s3 import S3Storage

from velro.media import INLINE_TYPES, OCTET_STREAM


class PrivateS3Storage(S3Storage):
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
