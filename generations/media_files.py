"""Which stored files rows point at, and which they do not (issue 15).

``manage.py media_gc`` lists the orphans (files no row points at: what a crash between a
delete's commit and its task, or between the worker storing an output and recording it,
can leave) and deletes them with ``--delete``; ``dbhealth`` samples the other way round,
rows whose files are missing ("dangling"), which must never happen.

Works on either backend through Django's storage API (``listdir``, ``exists``,
``get_modified_time``): local MEDIA_ROOT or the S3 bucket.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta

from django.core.files.storage import default_storage
from django.utils import timezone

from accounts.models import Profile
from generations.models import Generation
from generations.outputs import stored_paths
from velro.storage import BACKUP_PREFIX


def referenced_names() -> set[str]:
    """Every storage name a row points at: outputs, thumbnails, reference images, avatars."""
    names: set[str] = set(Profile.objects.exclude(avatar_path="").values_list("avatar_path", flat=True))
    rows = Generation.objects.values_list("outputs", "reference_image").iterator(chunk_size=5000)
    for outputs, reference in rows:
        names.update(stored_paths(outputs, reference))
    return names


def stored_names(directory: str = "") -> Iterator[str]:
    """Every file in the media storage, depth first; not the database's backups, which
    share the bucket under BACKUP_PREFIX with MEDIA_STORAGE=s3 (health/backups.py)."""
    directories, files = default_storage.listdir(directory)
    prefix = f"{directory.rstrip('/')}/" if directory else ""
    for name in files:
        yield prefix + name
    for child in directories:
        if f"{prefix}{child}/" != BACKUP_PREFIX:
            yield from stored_names(prefix + child)


def is_older_than(name: str, age: timedelta, now: datetime | None = None) -> bool:
    """True when ``name`` was last written more than ``age`` ago. A file the worker has
    just stored is not yet pointed at by its row (it records the generation after
    storing the outputs): young files are never orphans."""
    try:
        modified = default_storage.get_modified_time(name)
    except (FileNotFoundError, OSError):
        return False
    if timezone.is_naive(modified):
        modified = timezone.make_aware(modified)
    return modified < (now or timezone.now()) - age


def dangling_files(sample: int) -> tuple[int, list[dict]]:
    """Of the ``sample`` newest generations that point at files, how many rows were
    checked and those whose files are missing, as ``{"generation", "user", "name"}``."""
    rows = list(
        Generation.objects.exclude(outputs=[], reference_image="")
        .order_by("-created_at")
        .values_list("id", "user_id", "outputs", "reference_image")[:sample]
    )
    missing = [
        {"generation": str(generation_id), "user": str(user_id), "name": name}
        for generation_id, user_id, outputs, reference in rows
        for name in stored_paths(outputs, reference)
        if not default_storage.exists(name)
    ]
    return len(rows), missing
