from django.core.management.base import BaseCommand, CommandError

from health.base import Level
from health.render import report_json, report_text
from health.services import health_report


class Command(BaseCommand):
    help = (
        "Check the database: counts, foreign keys and orphans, profile sync, the credit ledger, RLS and "
        "policies, functions, grants and password settings. Exits 1 when a check is at ERROR."
    )

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="print the report as JSON (progress goes to stderr)")

    def handle(self, *args, **options):
        as_json = options["json"]
        # With --json, stdout is the JSON document alone; the progress lines go to stderr.
        progress = self.stderr if as_json else self.stdout

        def on_start(index, total, name):
            progress.write(f"[{index}/{total}] {name} … ", ending="")
            progress.flush()

        def on_done(index, total, check):
            style = {Level.OK: self.style.SUCCESS, Level.WARN: self.style.WARNING}.get(check.level, self.style.ERROR)
            progress.write(f"{style(check.level.name)} ({check.duration:.2f} s)", style_func=lambda text: text)

        report = health_report(on_start=on_start, on_done=on_done)
        if as_json:
            self.stdout.write(report_json(report))
        else:
            self.stdout.write("\n" + report_text(report))
        if report.level >= Level.ERROR:
            failing = [check.name for check in report.checks if check.level >= Level.ERROR]
            raise CommandError("database health: ERROR in " + ", ".join(failing), returncode=1)
