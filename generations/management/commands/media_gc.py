"""``manage.py media_gc``: stored files that no row points at, listed (and with
``--delete``, removed). Files younger than ``--min-age`` hours are left alone: the worker
stores a generation's outputs before it records them."""

import sys
from datetime import timedelta

from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand

from generations.media_files import is_older_than, referenced_names, stored_names
from velro.progress import Progress


class Command(BaseCommand):
    help = (
        "List media files that no generation points at (orphans a crash can leave between a "
        "delete and its file task, or between storing outputs and recording them); --delete "
        "removes them. Files younger than --min-age hours are never orphans."
    )

    def add_arguments(self, parser):
        parser.add_argument("--delete", action="store_true", help="delete the orphans (default: only list them)")
        parser.add_argument(
            "--min-age",
            type=float,
            default=24.0,
            help="hours a file must be older than to count as an orphan (default %(default)s)",
        )
        parser.add_argument("--quiet", action="store_true", help="no progress lines")

    def handle(self, *args, delete, min_age, quiet, **options):
        tty = sys.stdout.isatty()
        referenced = referenced_names()
        if not quiet:
            self.stderr.write(f"{len(referenced)} file(s) pointed at by rows")
        files = list(stored_names())
        candidates = [name for name in files if name not in referenced]
        progress = Progress(self.stderr, "checking", len(candidates), tty=tty, enabled=not quiet)
        orphans = []
        for name in candidates:
            if is_older_than(name, timedelta(hours=min_age)):
                orphans.append(name)
            progress.step()
        progress.done(f"{len(orphans)} orphan(s) among {len(files)} stored file(s)")
        for name in orphans:
            self.stdout.write(name)
        if not delete:
            if orphans:
                self.stderr.write(f"{len(orphans)} orphan(s); run with --delete to remove them")
            return
        progress = Progress(self.stderr, "deleting", len(orphans), tty=tty, enabled=not quiet)
        for name in orphans:
            default_storage.delete(name)
            progress.step()
        progress.done()
        self.stderr.write(self.style.SUCCESS(f"deleted {len(orphans)} orphan file(s)"))
