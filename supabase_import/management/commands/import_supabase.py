"""``manage.py import_supabase SOURCE``: move the original product's people and work from
its Supabase database into Velro (supabase_import/services.py has the rules)."""

import json
import time
from pathlib import Path

import psycopg
from django.core.management.base import BaseCommand, CommandError

from supabase_import.services import Summary, supabase_import
from supabase_import.source import open_source
from velro.progress import Progress

MAX_LISTED = 50  # rejections printed; --report FILE has them all


class Command(BaseCommand):
    help = (
        "Import a Supabase project's auth.users and the original product's tables (profiles, projects, style "
        "stacks, generations; balances as one adjustment per person) from its database URL or a pg_dump file. "
        "Idempotent: ids are kept and rows already here are left alone. Rows that break Velro's rules are "
        "reported, not imported."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "source",
            help="postgresql://user:password@host:port/postgres (the Supabase database), or a pg_dump file "
            "(custom format, directory or plain SQL) restored into a scratch database on Velro's server",
        )
        parser.add_argument("--dry-run", action="store_true", help="do everything, then roll it back")
        parser.add_argument("--report", metavar="FILE", help="write every rejected row to FILE as JSON lines")
        parser.add_argument("--quiet", action="store_true", help="no progress lines")

    def handle(self, *args, source, dry_run, report, quiet, **options):
        tty = self.stdout.isatty()
        started = time.monotonic()

        def progress(label: str, total: int) -> Progress:
            return Progress(self.stdout, label, total, tty=tty, enabled=not quiet)

        with open_source(source, log=self.stdout.write) as src:
            if not src.has("auth", "users"):
                raise CommandError(f"{src.label} has no auth.users table: is it a Supabase project's database?")
            self.stdout.write(f"Importing from {src.label}" + (" (dry run)" if dry_run else ""))
            if src.restore_errors:
                self.stdout.write(
                    f"{src.restore_errors} statement(s) of the dump could not run here (Supabase's own roles and "
                    "extensions); the tables read do not depend on them."
                )
            try:
                summary = supabase_import(source=src, progress=progress, dry_run=dry_run)
            except psycopg.Error as exc:  # the source, not a row: Velro's side raises Django's errors
                raise CommandError(
                    f"Reading the source failed: {exc}. The batches imported before it are kept; run again."
                ) from exc
        if report:
            path = Path(report).expanduser()
            with path.open("w", encoding="utf-8") as fh:
                for rejection in summary.rejections:
                    fh.write(json.dumps(rejection.as_dict(), ensure_ascii=False) + "\n")
        self.show(summary, report, time.monotonic() - started)

    def show(self, summary: Summary, report: str | None, elapsed: float) -> None:
        out = self.stdout
        out.write("")
        out.write(f"{'table':<14}{'imported':>10}{'present':>10}{'rejected':>10}")
        for name, tally in summary.tallies.items():
            out.write(f"{name:<14}{tally.imported:>10}{tally.present:>10}{tally.rejected:>10}")
        out.write(
            f"credit_transactions: {summary.ledger_rows} old ledger row(s) of {summary.ledger_people} person(s) "
            f"not copied; {summary.adjustments} adjustment(s) carried balances over."
        )
        for note in summary.notes:
            out.write(note)
        if summary.rejections:
            out.write("")
            out.write(self.style.WARNING(f"Rejected ({len(summary.rejections)}):"))
            for rejection in summary.rejections[:MAX_LISTED]:
                who = rejection.detail.get("email") or rejection.detail.get("user_id")
                out.write(
                    f"  {rejection.table} {rejection.id}" + (f" ({who})" if who else "") + f": {rejection.reason}"
                )
            more = len(summary.rejections) - MAX_LISTED
            if more > 0:
                out.write(f"  … and {more} more" + ("" if report else " (--report FILE lists them all)"))
        if report:
            out.write(f"Wrote {len(summary.rejections)} rejected row(s) to {report}")
        out.write("")
        counts = f"{summary.present} already present, {summary.rejected} rejected"
        if summary.dry_run:
            out.write(
                self.style.SUCCESS(
                    f"Dry run: {summary.imported} row(s) would be imported ({counts}); nothing was written."
                )
            )
        elif summary.imported:
            out.write(self.style.SUCCESS(f"Imported {summary.imported} row(s) ({counts}) in {elapsed:.1f} s."))
        else:
            out.write(self.style.SUCCESS(f"Nothing to import: nothing is new ({counts})."))
