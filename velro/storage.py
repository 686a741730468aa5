"""Where media live: Django's default storage, local (MEDIA_ROOT) or a private S3 bucket
(velro/s3.py), as ``MEDIA_STORAGE`` picks in settings (README, "Media").

Files are written through ``default_storage`` under generated names (never a client's;
the extension from the decoded content) — ``store`` for bytes — and every URL handed out
goes through ``velro.media_links.signed_media_url``, so code does not care which backend
is in use. This module imports no domain app.
"""

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

# With MEDIA_STORAGE=s3 the database's backups share the media bucket under this prefix
# (health/backups.py). No row ever names a file there: media links refuse it and
# media_gc never lists it (they are not media, and not orphans).
BACKUP_PREFIX = "backups/"


def store(name: str, data: bytes) -> str:
    """Save ``data`` under the generated ``name`` (or a free variant of it) in the media
    storage; the stored name."""
    return default_storage.save(name, ContentFile(data))
