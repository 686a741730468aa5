"""`manage.py backup` and `restore`: a real pg_dump of a migrated scratch database,
restored into another database with its rows, grants and triggers intact."""

import os
import subprocess
import sys
import uuid

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import sql

from tests.helpers import ROOT, database_url, manage, manage_env
from velro import pg_client

COUNTED = ["auth.users", "public.users", "public.credit_transactions", "django_migrations"]


@pytest.fixture
def scratch(db):
    """``scratch(create=True)`` → (name, url, psycopg params) of a database on the test
    server; every name handed out is dropped at the end (created or not)."""
    params = connection.get_connection_params()
    admin = {k: params[k] for k in ("host", "port", "user", "password") if params.get(k)}
    names = []

    def make(create: bool = True):
        name = f"velro_backup_{uuid.uuid4().hex[:8]}"
        names.append(name)
        if create:
            with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name, database_url(name), admin | {"dbname": name}

    try:
        yield make
    finally:
        with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
            for name in names:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def counts(params) -> dict:
    with psycopg.connect(**params) as conn:
        return {table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in COUNTED}


def grants(params) -> list:
    with psycopg.connect(**params) as conn:
        return conn.execute(
            "SELECT grantee, table_schema, table_name, privilege_type FROM information_schema.role_table_grants "
            "WHERE grantee IN ('anon', 'authenticated', 'service_role') ORDER BY 1, 2, 3, 4"
        ).fetchall()


def test_backup_then_restore_into_another_database(scratch, tmp_path):
    _, source_url, source = scratch()
    manage(source_url, "migrate", "--no-input")
    with psycopg.connect(**source) as conn:
        conn.execute("INSERT INTO auth.users (email) VALUES ('kept@example.com'), ('also-kept@example.com')")
    before = counts(source)
    assert before["public.users"] == 2 and before["public.credit_transactions"] == 2  # profiles + signup bonus

    dump = tmp_path / "nightly.dump"
    out = manage(source_url, "backup", "--output", str(dump))
    assert "Backing up database" in out and f"Wrote {dump}" in out
    assert dump.read_bytes()[:5] == b"PGDMP"
    assert not list(tmp_path.glob("*.part"))

    target_name, _, target = scratch(create=False)
    out = manage(source_url, "restore", str(dump), "--database-name", target_name)
    assert f"Created database {target_name}" in out and f"Restored {target_name}" in out
    assert counts(target) == before
    assert grants(target) == grants(source) != []  # the RLS roles' grants came back

    # The restored database works: the sync trigger gives a new identity its profile.
    with psycopg.connect(**target) as conn:
        conn.execute("INSERT INTO auth.users (email) VALUES ('after@example.com')")
        assert conn.execute(
            "SELECT credits_balance FROM public.users WHERE email = 'after@example.com'"
        ).fetchone() == (100,)

    # An existing database is only replaced with --yes; then it is the backup again.
    refused = subprocess.run(
        [sys.executable, "manage.py", "restore", str(dump), "--database-name", target_name],
        cwd=ROOT,
        env=manage_env(source_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode != 0 and "--yes" in refused.stderr
    assert counts(target)["auth.users"] == 3
    manage(source_url, "restore", str(dump), "--database-name", target_name, "--yes")
    assert counts(target) == before


def fake_dump(tmp_path):
    path = tmp_path / "backup.dump"
    path.write_bytes(b"PGDMP" + b"\0" * 64)
    return path


def test_restore_refuses_the_configured_database_without_yes(db, tmp_path, sql):
    users_before = sql("SELECT count(*) FROM auth.users")
    with pytest.raises(CommandError, match=r"the configured database.*--yes"):
        call_command("restore", str(fake_dump(tmp_path)))
    assert sql("SELECT count(*) FROM auth.users") == users_before


def test_restore_refuses_what_is_not_a_backup(db, tmp_path):
    with pytest.raises(CommandError, match="No such file"):
        call_command("restore", str(tmp_path / "missing.dump"), "--yes")
    text = tmp_path / "plain.sql"
    text.write_text("SELECT 1;")
    with pytest.raises(CommandError, match="not a pg_dump custom-format archive"):
        call_command("restore", str(text), "--yes")


def test_backup_defaults_to_the_data_dir(db, settings, tmp_path, capsys):
    settings.VELRO_DATA_DIR = tmp_path
    call_command("backup")
    (written,) = (tmp_path / "backups").glob("velro-*.dump")
    assert written.read_bytes()[:5] == b"PGDMP"
    assert str(written) in capsys.readouterr().out


def test_backup_fails_clearly_without_a_matching_pg_dump(db, monkeypatch, tmp_path):
    monkeypatch.setattr(pg_client, "candidate_binaries", lambda name, major: [])
    with pytest.raises(CommandError, match="No pg_dump for PostgreSQL"):
        call_command("backup", "--output", str(tmp_path / "x.dump"))
    assert not list(tmp_path.iterdir())


def test_binaries_match_the_server_version(db):
    major, _ = pg_client.server_major()
    chosen = pg_client.find_binary("pg_dump", major)
    assert pg_client.client_major(chosen) >= major
    exact = f"/usr/lib/postgresql/{major}/bin/pg_dump"
    assert chosen == exact or not os.path.exists(exact)
    with pytest.raises(CommandError, match="PostgreSQL 99"):
        pg_client.find_binary("pg_dump", 99)  # no client is that new


def test_an_older_client_is_never_used(db, monkeypatch, tmp_path):
    major, _ = pg_client.server_major()
    # A stand-in pg_dump that reports a version older than any server we support.
    older = tmp_path / "pg_dump"
    older.write_text("#!/bin/sh\necho 'pg_dump (PostgreSQL) 9.6.24'\n")
    older.chmod(0o755)
    assert pg_client.client_major(str(older)) == 9
    monkeypatch.setattr(pg_client, "candidate_binaries", lambda name, major: [str(older)])
    with pytest.raises(CommandError, match=r"Found only: .*\(PostgreSQL 9\)"):
        pg_client.find_binary("pg_dump", major)


def test_connection_parameters_go_through_the_environment(monkeypatch):
    monkeypatch.setenv("PGPORT", "1")  # a stray variable of the shell must not win
    env = pg_client.pg_env(
        {"host": "db.internal", "port": "6543", "user": "velro", "password": "s3cret", "dbname": "velro"}, "other"
    )
    assert (env["PGHOST"], env["PGPORT"], env["PGUSER"], env["PGPASSWORD"]) == (
        "db.internal",
        "6543",
        "velro",
        "s3cret",
    )
    assert env["PGDATABASE"] == "other"


def test_libpq_params_follow_django(db):
    params = pg_client.libpq_params()
    assert params["dbname"] == connection.settings_dict["NAME"]
    assert params["host"] == connection.get_connection_params()["host"]
    assert "cursor_factory" not in params and "context" not in params
