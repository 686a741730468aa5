"""Create or update presets from a JSON file (``export_presets`` writes one).

Every entry is validated before anything is written; with any error nothing is, and the
command exits non-zero listing each error with its slug and field (or JSON path in the
style). ``--dry-run`` only reports what would change.
"""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from stylestacks.presets_io import presets_import, presets_load


class Command(BaseCommand):
    help = "Import presets from a JSON list, matched by slug; all or nothing."

    def add_arguments(self, parser):
        parser.add_argument("file", help="The JSON file to import.")
        parser.add_argument("--dry-run", action="store_true", help="Validate and report; write nothing.")

    def handle(self, *args, file, dry_run, **options):
        try:
            data = Path(file).read_bytes()
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror}.") from exc
        verb = "would" if dry_run else "done"

        def progress(position, total, item):
            self.stdout.write(f"[{position}/{total}] {item.slug}: {item.describe()} ({verb})")

        try:
            report = presets_import(presets_load(data), dry_run=dry_run, progress=progress)
        except ValidationError as exc:
            for message in exc.messages:
                self.stderr.write(self.style.ERROR(message))
            raise CommandError(f"{len(exc.messages)} error(s) in {file}; nothing was imported.") from exc
        self.stdout.write(self.style.SUCCESS(report.summary()))
