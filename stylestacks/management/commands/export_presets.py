"""Write presets to a JSON file (or stdout), for review, version control or another
environment's ``import_presets``."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from stylestacks.models import StylePreset
from stylestacks.presets_io import presets_dumps, presets_export


class Command(BaseCommand):
    help = "Export presets as a JSON list (every editable field, style included; no ids or counters)."

    def add_arguments(self, parser):
        parser.add_argument("--output", "-o", help="The file to write (default: stdout).")
        parser.add_argument("--slug", action="append", dest="slugs", default=[], help="Only this preset (repeatable).")

    def handle(self, *args, output, slugs, **options):
        queryset = StylePreset.objects.all()
        if slugs:
            queryset = queryset.filter(slug__in=slugs)
            missing = sorted(set(slugs) - set(queryset.values_list("slug", flat=True)))
            if missing:
                raise CommandError(f"No preset with slug(s): {', '.join(missing)}.")
        entries = presets_export(queryset)
        text = presets_dumps(entries)
        if output:
            Path(output).write_text(text, encoding="utf-8")
            self.stdout.write(f"Exported {len(entries)} preset(s) to {output}.")
        else:
            # The JSON goes to stdout untouched, so the summary goes to stderr.
            self.stdout.write(text, ending="")
            self.stderr.write(f"Exported {len(entries)} preset(s).")
