"""Migrations are the deployment: they apply from nothing, reverse to nothing, and
apply again, on a scratch database of the same server."""

import uuid

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection
from psycopg import sql

from tests.helpers import database_url, manage

OUR_APPS = ["accounts", "credits", "projects", "generations", "stylestacks"]


@pytest.fixture
def scratch_db(db):
    """A new, empty database on the test server, and a DATABASE_URL pointing at it."""
    params = connection.get_connection_params()
    name = f"velro_roundtrip_{uuid.uuid4().hex[:8]}"
    admin = {k: params[k] for k in ("host", "port", "user", "password") if params.get(k)}
    with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield database_url(name), admin | {"dbname": name}
    finally:
        with psycopg.connect(**admin, dbname="postgres", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def objects(conn_params):
    """What our migrations put in the database, as comparable sets.

    procrastinate's own tables, functions and triggers are left out: its migrations
    cannot be reversed (RunSQL without a reverse), so they stay. The policies our
    migration puts on them are ours, and are counted.
    """
    with psycopg.connect(**conn_params) as conn:
        tables = conn.execute(
            "SELECT schemaname || '.' || tablename FROM pg_tables WHERE schemaname IN ('public', 'auth') "
            "AND tablename NOT LIKE 'django\\_%' AND tablename NOT LIKE 'auth\\_%' "
            "AND tablename NOT LIKE 'procrastinate\\_%'"
        ).fetchall()
        functions = conn.execute(
            "SELECT n.nspname || '.' || p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname IN ('public', 'auth', 'private') AND p.proname NOT LIKE 'procrastinate\\_%'"
        ).fetchall()
        policies = conn.execute("SELECT tablename || '.' || policyname FROM pg_policies").fetchall()
        triggers = conn.execute(
            "SELECT tgname FROM pg_trigger WHERE NOT tgisinternal AND tgname NOT LIKE 'procrastinate\\_%'"
        ).fetchall()
        schemas = conn.execute("SELECT nspname FROM pg_namespace WHERE nspname IN ('auth', 'private')").fetchall()
        roles = conn.execute(
            "SELECT rolname FROM pg_roles WHERE rolname IN ('anon', 'authenticated', 'service_role')"
        ).fetchall()
    return {
        "tables": {r[0] for r in tables},
        "functions": {r[0] for r in functions},
        "policies": {r[0] for r in policies},
        "triggers": {r[0] for r in triggers},
        "schemas": {r[0] for r in schemas},
        "roles": {r[0] for r in roles},
    }


def test_migrations_round_trip(scratch_db):
    url, params = scratch_db
    manage(url, "migrate", "--no-input")
    applied = objects(params)
    assert {"public.users", "auth.users", "public.credit_transactions"} <= applied["tables"]
    assert {"on_auth_user_created", "on_auth_user_updated"} <= applied["triggers"]
    assert {"auth.uid", "private.handle_new_user", "public.generation_create"} <= applied["functions"]
    assert applied["schemas"] == {"auth", "private"}
    assert applied["policies"]
    assert "procrastinate_jobs.procrastinate_jobs_service" in applied["policies"]

    # Reverse everything that is ours (velro's own migration last: it holds the schema).
    for app in [*OUR_APPS, "admin", "velro"]:
        manage(url, "migrate", app, "zero", "--no-input")
    reversed_ = objects(params)
    assert reversed_["tables"] == set()
    assert reversed_["functions"] == set()
    assert reversed_["policies"] == set()
    assert reversed_["triggers"] == set()
    assert reversed_["schemas"] == set()
    # Roles are cluster-wide and shared with other databases: never dropped.
    assert reversed_["roles"] == {"anon", "authenticated", "service_role"}

    manage(url, "migrate", "--no-input")
    assert objects(params) == applied

    # And the database works after the round trip: a raw identity gets its profile.
    with psycopg.connect(**params) as conn:
        conn.execute("INSERT INTO auth.users (email) VALUES ('again@example.com')")
        assert conn.execute("SELECT credits_balance FROM public.users").fetchall() == [(100,)]


def test_makemigrations_is_clean(db):
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)
