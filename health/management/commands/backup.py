"""``manage.py backup``: take a backup (and prune by retention), or ``--verify`` the newest
one by a restore into a scratch database. health/backups.py does the work; README,
"Backups", says where copies go and how long they are kept."""

import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from health.backups import BackupError, backup_lock, backup_prune, backup_take, backup_verify
from health.models import BackupRun


class Command(BaseCommand):
    help = (
        "Back up the database (pg_dump -Fc, a .sha256 beside it) into the backup storage and prune old copies by "
        "retention; --verify proves the newest copy by restoring it into a scratch database."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--verify",
            action="store_true",
            help="Verify the newest copy (checksum, restore, health checks, row counts) instead of taking one.",
        )
        parser.add_argument(
            "--name", help="With --verify: the copy to verify (a file name in the backup storage), not the newest."
        )
        parser.add_argument(
            "--output",
            "-o",
            help="Write the dump (and FILE.sha256) to FILE instead of the backup storage; nothing is pruned.",
        )
        parser.add_argument("--no-prune", action="store_true", help="Take a backup but delete no old copy.")
        parser.add_argument("--json", action="store_true", help="Print the record as JSON (progress goes to stderr).")

    def handle(self, *args, verify, name, output, no_prune, json: bool, **options):
        progress_out = self.stderr if json else self.stdout

        def progress(line: str) -> None:
            progress_out.write(line, style_func=lambda text: text)

        verbose = options["verbosity"] >= 2
        if name and not verify:
            raise CommandError("--name goes with --verify")
        if verify and output:
            raise CommandError("--output takes a backup; --verify checks one in the backup storage")
        try:
            with backup_lock():
                if verify:
                    run = backup_verify(name=name, progress=progress, verbose=verbose)
                elif output:
                    run = backup_take(output=Path(output).expanduser().resolve(), progress=progress, verbose=verbose)
                else:
                    run = backup_take(progress=progress, verbose=verbose)
                    if not no_prune:
                        backup_prune(progress=progress)
        except BackupError as exc:
            raise CommandError(str(exc)) from exc
        if json:
            self.stdout.write(_as_json(run))
        elif verify:
            self.stdout.write(self.style.SUCCESS(f"Verified {run.location}"))
        else:
            self.stdout.write(self.style.SUCCESS(f"Wrote {run.location}"))


def _as_json(run: BackupRun) -> str:
    fields = ("name", "storage", "location", "status", "size", "sha256", "error", "verify_ok", "verify_detail")
    data = {field: getattr(run, field) for field in fields}
    for field in ("started_at", "finished_at", "verified_at"):
        value = getattr(run, field)
        data[field] = value.isoformat() if value else None
    data["tables"], data["rows"] = len(run.row_counts), sum(run.row_counts.values())
    return json.dumps(data, indent=2)
