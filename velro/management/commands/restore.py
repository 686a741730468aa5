"""``manage.py restore FILE``: ``pg_restore`` a ``manage.py backup`` file.

Into the configured database (``--yes`` required: its contents are replaced), or with
``--database-name NAME`` into another database on the same server (created when missing;
an existing one also needs ``--yes``). One transaction: a failed restore changes nothing.

Objects end up owned by the restoring role (``--no-owner``). The dump's GRANTs name the
RLS roles (anon, authenticated, service_role); roles are cluster-wide and not in a dump,
so they are created first when missing, exactly as the first migration does.
"""

import time
from pathlib import Path

import psycopg
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections
from psycopg import sql

from velro.pg_client import (
    CHECKSUM_SUFFIX,
    ensure_roles,
    find_binary,
    is_dump,
    libpq_params,
    parse_checksum,
    pg_restore,
    server_major,
    sha256_file,
)


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
        if not is_dump(path):
            raise CommandError(f"{path} is not a pg_dump custom-format archive (made by `manage.py backup`).")
        checksum = path.with_name(path.name + CHECKSUM_SUFFIX)
        if checksum.is_file():  # written beside every copy by `manage.py backup`
            expected, actual = parse_checksum(checksum.read_text()), sha256_file(path)
            if expected != actual:
                raise CommandError(
                    f"{path.name} does not match its checksum ({checksum.name}: {expected or 'empty'}, "
                    f"the file: {actual}): the copy is damaged; restore another one."
                )
            self.stdout.write(f"Checksum of {path.name} matches {checksum.name}")

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
                binary = find_binary("pg_restore", major)
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
                    self.stdout.write(f"Created database {target}")
        except psycopg.Error as exc:
            raise CommandError(f"Database error: {exc}") from exc

        connections[database].close()  # our own session must not hold locks on what pg_restore drops
        missing = ensure_roles(params, target)
        if missing:
            self.stdout.write(f"Created the RLS roles {', '.join(missing)} (cluster-wide, not in the dump)")

        self.stdout.write(f"Restoring {path.name} into {target} (PostgreSQL {version}) with {binary}")
        started = time.monotonic()
        pg_restore(path, binary=binary, params=params, target=target, verbose=options["verbosity"] >= 2)
        self.stdout.write(self.style.SUCCESS(f"Restored {target} in {time.monotonic() - started:.1f} s"))
