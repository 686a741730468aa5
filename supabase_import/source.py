"""What ``import_supabase`` reads: a Supabase project's database, by its libpq
connection URL, or a ``pg_dump`` file restored into a scratch database on Velro's own
server (created for the run and dropped afterwards, whatever happens).

A dump is restored with the pg_restore (custom or directory format) or psql (plain SQL)
that ``manage.py backup`` and ``restore`` use. It is made for Supabase's server, so some of
it cannot be restored here (roles, extensions such as pg_graphql or pgsodium): those
statements fail, are counted and skipped; what the import reads is only the tables in
``TABLES``. Other tables' rows are not restored at all (a project's storage.objects or
audit log can be large), nor anything that would act on its own: event triggers,
publications, subscriptions, materialized view refreshes.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from django.core.management.base import CommandError
from django.db import DEFAULT_DB_ALIAS
from psycopg import sql
from psycopg.rows import dict_row

from velro.pg_client import find_binary, libpq_params, pg_env, server_major

# The tables read, as (schema, table).
TABLES = (
    ("auth", "users"),
    ("public", "users"),
    ("public", "projects"),
    ("public", "style_stacks"),
    ("public", "generations"),
    ("public", "credit_transactions"),
)
DUMP_MAGIC = b"PGDMP"  # a pg_dump custom-format archive
GZIP_MAGIC = b"\x1f\x8b"
FETCH_SIZE = 500

# pg_restore --list entries never restored: they act on their own (connect to another
# server, fire on DDL, run a query).
_SKIPPED_ENTRIES = (
    "EVENT TRIGGER ",
    "PUBLICATION ",
    "PUBLICATION TABLE ",
    "PUBLICATION TABLES FROM SCHEMA ",
    "SUBSCRIPTION ",
    "SUBSCRIPTION TABLE ",
    "MATERIALIZED VIEW DATA ",
)
_TOC_ENTRY = re.compile(r"^\d+; \d+ \d+ (.*)$")
_IGNORED_ERRORS = re.compile(r"errors ignored on restore: (\d+)")

# Plain SQL runs through psql: a file that would act beyond the scratch database (what
# pg_dumpall writes, as Supabase's dashboard backups are: roles, other databases) or
# run a shell command is refused before anything runs.
_REFUSED_LINES = (
    b"\\connect",
    b"\\c ",
    b"\\!",
    b"CREATE ROLE",
    b"ALTER ROLE",
    b"DROP ROLE",
    b"CREATE DATABASE",
    b"ALTER DATABASE",
    b"DROP DATABASE",
)

# Column defaults in a Supabase dump name uuid-ossp's and pgcrypto's functions
# (extensions.uuid_generate_v4()); a server without those extensions (the embedded
# one) could not create such a table, and would lose its rows. Stand-ins, created in
# the scratch database only when the extension is missing.
_STAND_INS = {
    "uuid-ossp": """
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE FUNCTION extensions.uuid_generate_v4() RETURNS uuid LANGUAGE sql AS 'SELECT pg_catalog.gen_random_uuid()';
CREATE FUNCTION public.uuid_generate_v4() RETURNS uuid LANGUAGE sql AS 'SELECT pg_catalog.gen_random_uuid()';
""",
    "pgcrypto": """
CREATE SCHEMA IF NOT EXISTS extensions;
CREATE FUNCTION extensions.gen_random_uuid() RETURNS uuid LANGUAGE sql AS 'SELECT pg_catalog.gen_random_uuid()';
""",
}


@dataclass
class Source:
    """An open, read-only connection to the Supabase database (or its restored dump)."""

    conn: psycopg.Connection
    label: str
    restore_errors: int = 0
    _columns: dict[tuple[str, str], list[str]] = field(default_factory=dict)

    def columns(self, schema: str, table: str) -> list[str]:
        """The table's columns, in order; empty when the table is not there."""
        key = (schema, table)
        if key not in self._columns:
            rows = self.conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "ORDER BY ordinal_position",
                key,
            ).fetchall()
            self._columns[key] = [row["column_name"] for row in rows]
        return self._columns[key]

    def has(self, schema: str, table: str) -> bool:
        return bool(self.columns(schema, table))

    def count(self, schema: str, table: str) -> int:
        if not self.has(schema, table):
            return 0
        query = sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(schema, table))
        return self.conn.execute(query).fetchone()["n"]

    def resolve(self, schema: str, table: str, fields: dict[str, tuple[str, ...]]) -> dict[str, str]:
        """``{our name: source column}`` for the fields the table has: each field is read
        from the first of its candidate column names that exists."""
        present = set(self.columns(schema, table))
        chosen = {}
        for name, candidates in fields.items():
            column = next((c for c in candidates if c in present), None)
            if column is not None:
                chosen[name] = column
        return chosen

    def rows(
        self, schema: str, table: str, fields: dict[str, tuple[str, ...]], order_by: tuple[str, ...] = ()
    ) -> Iterator[dict]:
        """The table's rows as dicts keyed by our field names (a field whose columns are
        all missing is absent), streamed through a server-side cursor."""
        chosen = self.resolve(schema, table, fields)
        if not chosen:
            return
        select = sql.SQL(", ").join(
            sql.SQL("{} AS {}").format(sql.Identifier(column), sql.Identifier(name)) for name, column in chosen.items()
        )
        query = sql.SQL("SELECT {} FROM {}").format(select, sql.Identifier(schema, table))
        order = [name for name in order_by if name in chosen]
        if order:
            query += sql.SQL(" ORDER BY ") + sql.SQL(", ").join(
                sql.SQL("{} NULLS FIRST").format(sql.Identifier(name)) for name in order
            )
        with self.conn.cursor(name=f"import_{table}_{uuid.uuid4().hex[:8]}") as cursor:
            cursor.itersize = FETCH_SIZE
            cursor.execute(query)
            yield from cursor

    def contains(self, schema: str, table: str, pk) -> bool:
        if not self.has(schema, table):
            return False
        query = sql.SQL("SELECT 1 FROM {} WHERE id = %s").format(sql.Identifier(schema, table))
        return self.conn.execute(query, [pk]).fetchone() is not None


def _connect(**kwargs) -> psycopg.Connection:
    conn = psycopg.connect(row_factory=dict_row, **kwargs)
    conn.read_only = True  # the import never writes to the source
    return conn


@contextlib.contextmanager
def open_source(spec: str, *, log) -> Iterator[Source]:
    """A :class:`Source` for ``spec``: an existing file or directory is a dump (restored
    into a scratch database for the block), anything else a libpq connection string."""
    path = Path(spec).expanduser()
    if path.exists():
        with restored(path, log=log) as (dbname, errors):
            params = libpq_params(DEFAULT_DB_ALIAS)
            params.pop("dbname", None)
            with _connect(**params, dbname=dbname) as conn:
                yield Source(conn, label=f"{path.name} (restored into {dbname})", restore_errors=errors)
        return
    if "://" not in spec and "=" not in spec:
        raise CommandError(f"{spec} is neither a file nor a connection URL (postgresql://user:pass@host:port/db).")
    try:
        conninfo = psycopg.conninfo.conninfo_to_dict(spec)
        conn = _connect(conninfo=spec)
    except psycopg.Error as exc:
        raise CommandError(f"Cannot connect to the source database: {exc}") from exc
    with conn:
        label = f"database {conninfo.get('dbname', '?')} on {conninfo.get('host', 'localhost')}"
        yield Source(conn, label=label)


def dump_kind(path: Path) -> str:
    """'archive' (pg_restore reads it: custom format, or a directory dump) or 'sql'."""
    if path.is_dir():
        if (path / "toc.dat").exists():
            return "archive"
        raise CommandError(f"{path} is a directory without toc.dat: not a pg_dump directory-format dump.")
    with path.open("rb") as fh:
        head = fh.read(len(DUMP_MAGIC))
    if head.startswith(GZIP_MAGIC):
        raise CommandError(f"{path} is gzip-compressed: decompress it first (gunzip).")
    return "archive" if head == DUMP_MAGIC else "sql"


@contextlib.contextmanager
def restored(path: Path, *, log) -> Iterator[tuple[str, int]]:
    """Restore the dump at ``path`` into a new scratch database on Velro's server; yield
    (its name, how many statements failed); drop it when the block ends."""
    kind = dump_kind(path)
    if kind == "sql":
        check_plain_sql(path)
    params = libpq_params(DEFAULT_DB_ALIAS)
    configured = params.pop("dbname")
    major, _ = server_major(DEFAULT_DB_ALIAS)
    binary = find_binary("pg_restore" if kind == "archive" else "psql", major)
    name = f"velro_supabase_import_{uuid.uuid4().hex[:10]}"
    try:
        with psycopg.connect(**params, dbname=configured, autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise CommandError(f"Cannot create a scratch database to restore the dump into: {exc}") from exc
    try:
        with psycopg.connect(**params, dbname=name, autocommit=True) as conn:
            available = {
                row[0]
                for row in conn.execute(
                    "SELECT name FROM pg_available_extensions WHERE name = ANY(%s)", [list(_STAND_INS)]
                )
            }
            for extension, stand_in in _STAND_INS.items():
                if extension not in available:
                    conn.execute(stand_in)
        log(f"Restoring {path.name} into the scratch database {name} with {binary}")
        env = pg_env(params, name)
        errors = _pg_restore(binary, path, name, env) if kind == "archive" else _psql(binary, path, env)
        yield name, errors
    finally:
        with psycopg.connect(**params, dbname=configured, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def check_plain_sql(path: Path) -> None:
    """Refuse a plain SQL file that would act beyond the scratch database."""
    with path.open("rb") as fh:
        for number, line in enumerate(fh, 1):
            if line.lstrip().upper().startswith(tuple(prefix.upper() for prefix in _REFUSED_LINES)):
                raise CommandError(
                    f"{path.name} line {number} ({line.strip()[:40].decode(errors='replace')}…) would act beyond "
                    "one database: this looks like pg_dumpall output (a Supabase dashboard backup). Dump the "
                    "project's database alone with pg_dump (or `supabase db dump`) and import that."
                )


def restore_list(listing: str) -> str:
    """pg_restore's table of contents with what the import must not restore commented
    out: other tables' rows, and entries that act on their own."""
    wanted = tuple(f"TABLE DATA {schema} {table} " for schema, table in TABLES)
    kept = []
    for line in listing.splitlines():
        entry = _TOC_ENTRY.match(line)
        if entry:
            what = entry.group(1)
            skip = what.startswith(_SKIPPED_ENTRIES) or (what.startswith("TABLE DATA ") and not what.startswith(wanted))
            if skip:
                line = ";" + line
        kept.append(line)
    return "\n".join(kept) + "\n"


def _pg_restore(binary: str, path: Path, dbname: str, env: dict) -> int:
    listing = subprocess.run([binary, "--list", str(path)], env=env, capture_output=True, text=True)
    if listing.returncode != 0:
        raise CommandError(f"pg_restore cannot read {path.name}: {listing.stderr.strip()}")
    with tempfile.NamedTemporaryFile("w", suffix=".list") as toc:
        toc.write(restore_list(listing.stdout))
        toc.flush()
        # Not one transaction and no --exit-on-error: a statement Velro's server cannot
        # run (a Supabase-only extension, role or grant) is skipped, not fatal.
        result = subprocess.run(
            [
                binary,
                f"--dbname={dbname}",
                "--no-owner",
                "--no-privileges",
                f"--use-list={toc.name}",
                str(path),
            ],
            env=env,
            capture_output=True,
            text=True,
        )
    if result.returncode == 0:
        return 0
    ignored = _IGNORED_ERRORS.search(result.stderr)
    if ignored is None:
        raise CommandError(f"pg_restore failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    return int(ignored.group(1))


def _psql(binary: str, path: Path, env: dict) -> int:
    result = subprocess.run(
        [binary, "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=0", f"--file={path}"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    if result.returncode != 0:
        raise CommandError(f"psql failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    return sum(1 for line in result.stderr.splitlines() if "ERROR:" in line)
