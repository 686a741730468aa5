"""``manage.py restore FILE``: ``pg_restore`` a ``manage.py backup`` file.

Into the configured database (``--yes`` required: its contents are replaced), or with
``--database-name NAME`` into another database on the same server (created when missing;
an existing one also needs ``--yes``). One transaction: a failed restore changes nothing.

Objects end up owned by the restoring role (``--no-owner``). The dump's GRANTs name the
RLS roles (anon, authenticated, service_role); roles are cluster-wide and not in a dump,
so they are created first when missing, exactly as the first migration does.
"""

import importlib
import subprocess
import time
from pathlib import Path

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg import sql

from velro.management.commands.backup import find_binary, libpq_params, pg_env, server_major

RLS_ROLES = ("anon", "authenticated", "service_role")
DUMP_MAGIC = b"PGDMP"  # first bytes of a pg_dump custom-format archive


def roles_sql() -> str:
    """The first migration's idempotent role set-up (create if missing, grant to us)."""
    return importlib.import_module("velro.migrations.0001_supabase_conventions").ROLES


class Command(BaseCommand):
    help = "Restore a `manage.py backup` file (pg_restore) into the configured or another database."

    def add_arguments(self, parser):
        parser.add_argument("file", help="A backup made by `manage.py backup` (pg_dump custom format).")
        parser.add_argument(
            "--database-name",
            help="Restore into this database on the same server (created if missing) instead of the configured one.",
        )
        parser.add_argument("--yes", action="store_true", help="Replace the contents of an existing database.")
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Django database alias (default: default).")

    def handle(self, *args, file, database_name, yes, database, **options):
        path = Path(file).expanduser().resolve()
        if not path.is_file():
            raise CommandError(f"No such file: {path}")
        with path.open("rb") as fh:
            if fh.read(len(DUMP_MAGIC)) != DUMP_MAGIC:
                raise CommandError(f"{path} is not a pg_dump custom-format archive (made by `manage.py backup`).")

        params = libpq_params(database)
        configured = params.pop("dbname")
        target = database_name or configured
        if "=" in target or "://" in target:
            raise CommandError(f"Not a database name: {target!r}")
        try:
            major, version = server_major(database)
            with psycopg.connect(**params, dbname=configured, autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [target]).fetchone()
                if exists and not yes:
                    what = "the configured database" if target == configured else "an existing database"
                    raise CommandError(
                        f"{target} is {what}: restoring replaces its contents. Stop the app and the workers, "
                        "then run again with --yes."
                    )
                pg_restore = find_binary("pg_restore", major)
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
                    self.stdout.write(f"Created database {target}")
        except psycopg.Error as exc:
            raise CommandError(f"Database error: {exc}") from exc

        connections[database].close()  # our own session must not hold locks on what pg_restore drops
        self.ensure_roles(params, target)

        self.stdout.write(f"Restoring {path.name} into {target} (PostgreSQL {version}) with {pg_restore}")
        started = time.monotonic()
        command = [
            pg_restore,
            f"--dbname={target}",
            "--clean",
            "--if-exists",
            "--no-owner",
            "--single-transaction",
            "--exit-on-error",
            str(path),
        ]
        if options["verbosity"] >= 2:
            command.insert(1, "--verbose")
        try:
            result = subprocess.run(
                command,
                env=pg_env(params, target),
                stdout=subprocess.PIPE,
                stderr=None if options["verbosity"] >= 2 else subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            raise CommandError(f"Cannot run {pg_restore}: {exc}") from exc
        if result.returncode != 0:
            raise CommandError(
                f"pg_restore failed (exit {result.returncode}); {target} is unchanged: {(result.stderr or '').strip()}"
            )
        self.stdout.write(self.style.SUCCESS(f"Restored {target} in {time.monotonic() - started:.1f} s"))

    def ensure_roles(self, params: dict, target: str) -> None:
        try:
            with psycopg.connect(**params, dbname=target, autocommit=True) as conn:
                present = {
                    row[0]
                    for row in conn.execute(
                        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s)", [list(RLS_ROLES)]
                    ).fetchall()
                }
                missing = [role for role in RLS_ROLES if role not in present]
                if missing:
                    self.stdout.write(f"Creating the RLS roles {', '.join(missing)} (cluster-wide, not in the dump)")
                    conn.execute(roles_sql())
        except psycopg.Error as exc:
            raise CommandError(
                f"The roles {', '.join(RLS_ROLES)} are missing and could not be created ({exc}). "
                "Create them as a superuser first (README, 'Deploy')."
            ) from exc
