"""The database health report: clean after migrate, and each check at its failure level
on a database broken on purpose (inside the test's transaction, so it rolls back); its
three faces — the command, the admin page and the API."""

import contextlib
import io
import json
import uuid

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import OperationalError, connection

from accounts.models import User
from credits.models import CreditTransaction
from health.base import Level
from health.checks import CHECKS
from health.services import clear_migrations_cache, health_report

CHECK_NAMES = [name for name, _ in CHECKS]
LEAKED_PASSWORD_WARNING = "leaked-password check not configured"
# accounts.passwords.BreachedPasswordValidator is among AUTH_PASSWORD_VALIDATORS.
AUTH_SETTINGS_OK = "5 password validators, leaked-password check on"


def run(name: str):
    """One check of the report, by name."""
    return health_report(only=[name]).check(name)


@contextlib.contextmanager
def triggers_off():
    """As a restore or a careless operator would: no FK checks, no sync triggers."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        yield cursor
        cursor.execute("SET session_replication_role = DEFAULT")


@pytest.fixture(autouse=True)
def _fresh_migrations_cache():
    clear_migrations_cache()
    yield
    clear_migrations_cache()


# --- the migrated database -----------------------------------------------------------


def test_the_migrated_database_reports_everything_ok(alice, bob):
    report = health_report()

    levels = {check.name: check.level.name for check in report.checks}
    assert levels == dict.fromkeys(CHECK_NAMES, "OK")
    assert report.check("auth settings").summary == AUTH_SETTINGS_OK
    assert report.level == Level.OK
    counts = {row["what"]: row["count"] for row in report.check("counts").details}
    assert (counts["users"], counts["ledger rows"]) == (2, 2)


def test_the_leaked_password_warning_goes_once_a_breach_check_is_configured(db, settings):
    settings.AUTH_PASSWORD_VALIDATORS = [
        v for v in settings.AUTH_PASSWORD_VALIDATORS if not v["NAME"].endswith(".BreachedPasswordValidator")
    ]
    settings.PASSWORD_BREACH_CHECK = False
    check = run("auth settings")
    assert (check.level, check.summary) == (Level.WARN, LEAKED_PASSWORD_WARNING)

    settings.PASSWORD_BREACH_CHECK = True
    assert run("auth settings").level == Level.OK

    del settings.PASSWORD_BREACH_CHECK
    settings.AUTH_PASSWORD_VALIDATORS = [
        *settings.AUTH_PASSWORD_VALIDATORS,
        {"NAME": "accounts.validators.PwnedPasswordValidator"},
    ]
    assert run("auth settings").level == Level.OK

    settings.AUTH_PASSWORD_VALIDATORS = []
    assert run("auth settings").level == Level.ERROR


# --- foreign keys --------------------------------------------------------------------


def test_an_orphan_row_is_an_error_naming_the_relationship(alice):
    with triggers_off() as cursor:
        cursor.execute(
            "INSERT INTO public.generations (user_id, ai_model_id, prompt, parameters) "
            "VALUES (%s, 'fal-ai/flux/dev', 'orphan', '{}')",
            [uuid.uuid4()],
        )

    check = run("foreign keys")

    assert check.level == Level.ERROR
    assert "auth.users → generations (1)" in check.summary
    rows = {(row["relationship"], row["columns"]): row["orphans"] for row in check.details}
    assert rows[("auth.users → generations", "user_id")] == 1
    assert rows[("projects → generations", "project_id")] == 0


ADD_NOT_VALID_FK = (
    "ALTER TABLE public.hc_child ADD CONSTRAINT hc_child_pair_fk "
    "FOREIGN KEY (a, b) REFERENCES public.hc_parent NOT VALID"
)


@pytest.fixture
def pair_tables(db, sql):
    """A parent with a two-column key and a child, outside the project's schema."""
    sql("CREATE TABLE public.hc_parent (a int, b int, PRIMARY KEY (a, b))")
    sql("CREATE TABLE public.hc_child (id int PRIMARY KEY, a int, b int)")
    sql("INSERT INTO public.hc_parent VALUES (1, 1)")
    return sql


def test_a_not_valid_constraint_is_a_warning(pair_tables):
    sql = pair_tables
    sql("INSERT INTO public.hc_child VALUES (1, 1, 1)")
    sql(ADD_NOT_VALID_FK)

    check = run("foreign keys")

    assert check.level == Level.WARN
    assert check.summary == "NOT VALID: hc_child_pair_fk (hc_parent → hc_child)"
    row = next(row for row in check.details if row["constraint"] == "hc_child_pair_fk")
    assert (row["columns"], row["validated"], row["orphans"]) == ("a, b", False, 0)


def test_orphans_under_a_multi_column_key_are_counted(pair_tables):
    sql = pair_tables
    # An orphan, a row with a NULL in the key (references nothing: not an orphan), a good row.
    sql("INSERT INTO public.hc_child VALUES (1, 9, 9), (2, 9, NULL), (3, 1, 1)")
    sql(ADD_NOT_VALID_FK)

    check = run("foreign keys")

    assert check.level == Level.ERROR
    row = next(row for row in check.details if row["constraint"] == "hc_child_pair_fk")
    assert (row["relationship"], row["orphans"]) == ("hc_parent → hc_child", 1)


# --- user sync -----------------------------------------------------------------------


def test_an_identity_without_a_profile_is_an_error(alice, bob):
    with triggers_off() as cursor:
        cursor.execute("DELETE FROM public.users WHERE id = %s", [alice.pk])

    check = run("user sync")

    assert check.level == Level.ERROR
    assert check.summary == "1 identity without a profile"
    assert [row["name"] for row in check.details if row["item"] == "identity without a profile"] == [alice.email]


def test_a_disabled_sync_trigger_is_an_error(db, sql):
    sql("ALTER TABLE auth.users DISABLE TRIGGER on_auth_user_updated")

    check = run("user sync")

    assert check.level == Level.ERROR
    assert check.summary == "trigger on_auth_user_updated on auth.users is disabled"


# --- credits -------------------------------------------------------------------------


@pytest.mark.breaks_ledger
def test_a_corrupted_balance_is_an_error_listing_the_person(alice, bob, sql):
    sql("UPDATE public.users SET credits_balance = credits_balance + 1 WHERE id = %s", [alice.pk])

    check = run("credits")

    assert check.level == Level.ERROR
    assert [(row["email"], row["credits_balance"], row["ledger_sum"]) for row in check.details] == [
        (alice.email, 101, 100)
    ]


# --- row level security --------------------------------------------------------------


def test_a_table_without_rls_is_an_error(db, sql):
    sql("CREATE TABLE public.hc_open (id int PRIMARY KEY)")

    check = run("row level security")

    assert check.level == Level.ERROR
    assert check.summary == "public.hc_open: RLS disabled"


def test_a_table_with_rls_but_no_policy_is_an_error(db, sql):
    sql("CREATE TABLE public.hc_closed (id int PRIMARY KEY)")
    sql("ALTER TABLE public.hc_closed ENABLE ROW LEVEL SECURITY")

    check = run("row level security")

    assert check.level == Level.ERROR
    assert check.summary.startswith("public.hc_closed: RLS enabled but no policy")


def test_a_django_table_is_exempt_only_while_the_api_roles_cannot_touch_it(db, sql):
    assert run("row level security").level == Level.OK
    sql("GRANT SELECT ON public.django_session TO anon")

    check = run("row level security")

    assert check.level == Level.ERROR
    assert check.summary == "public.django_session: Django table, but anon have privileges"


@pytest.fixture
def notes_table(db, sql):
    sql("CREATE TABLE public.hc_notes (id int PRIMARY KEY, owner_id uuid)")
    sql("ALTER TABLE public.hc_notes ENABLE ROW LEVEL SECURITY")
    return sql


def test_a_policy_column_without_an_index_is_a_warning(notes_table):
    sql = notes_table
    sql("CREATE POLICY hc_notes_own ON public.hc_notes TO authenticated USING ((select auth.uid()) = owner_id)")

    check = run("policy indexes")
    assert check.level == Level.WARN
    assert check.summary == "without an index: hc_notes.owner_id"

    sql("CREATE INDEX hc_notes_owner_idx ON public.hc_notes (owner_id)")
    assert run("policy indexes").level == Level.OK


def test_a_policy_calling_auth_uid_per_row_is_a_warning(notes_table):
    notes_table("CREATE POLICY hc_notes_bare ON public.hc_notes TO authenticated USING (auth.uid() = owner_id)")

    check = run("policy auth.uid() calls")

    assert check.level == Level.WARN
    assert [(row["table"], row["policy"], row["clause"]) for row in check.details] == [
        ("hc_notes", "hc_notes_bare", "using")
    ]


# --- functions and grants ------------------------------------------------------------


def test_a_function_without_a_search_path_is_a_warning(db, sql):
    sql("CREATE FUNCTION public.hc_loose() RETURNS int LANGUAGE sql AS 'SELECT 1'")

    check = run("function search_path")

    assert check.level == Level.WARN
    assert [row["function"] for row in check.details] == ["public.hc_loose()"]


def test_a_security_definer_function_executable_by_public_is_an_error(db, sql):
    # Functions are executable by PUBLIC unless revoked.
    sql(
        "CREATE FUNCTION public.hc_definer() RETURNS int LANGUAGE sql "
        "SECURITY DEFINER SET search_path = '' AS 'SELECT 1'"
    )

    check = run("security definer functions")

    assert check.level == Level.ERROR
    assert check.summary == "executable by PUBLIC or anon: public.hc_definer()"
    row = next(row for row in check.details if row["function"] == "public.hc_definer()")
    assert row["executable_by"] == "PUBLIC, anon, authenticated, service_role"


def test_a_security_definer_function_in_public_executable_by_authenticated_is_a_warning(db, sql):
    # Supabase's lint 0029: a client could call it through /rest/v1/rpc.
    sql("CREATE FUNCTION public.hc_rpc() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = '' AS 'SELECT 1'")
    sql("REVOKE ALL ON FUNCTION public.hc_rpc() FROM PUBLIC, anon")
    sql("GRANT EXECUTE ON FUNCTION public.hc_rpc() TO authenticated")

    check = run("security definer functions")

    assert check.level == Level.WARN
    assert check.summary == "in the exposed schema public, executable by authenticated: public.hc_rpc()"


def test_the_same_function_in_private_is_fine(db, sql):
    sql("CREATE FUNCTION private.hc_rpc() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = '' AS 'SELECT 1'")
    sql("REVOKE ALL ON FUNCTION private.hc_rpc() FROM PUBLIC, anon")
    sql("GRANT EXECUTE ON FUNCTION private.hc_rpc() TO authenticated")

    check = run("security definer functions")

    assert check.level == Level.OK, check.summary
    row = next(row for row in check.details if row["function"] == "private.hc_rpc()")
    assert row["executable_by"] == "authenticated"


def test_a_write_grant_on_a_server_owned_column_is_an_error(db, sql):
    sql("GRANT UPDATE (credits_balance) ON public.users TO authenticated")

    check = run("grants")

    assert check.level == Level.ERROR
    assert check.summary == "API roles can write server-owned data: users.credits_balance: authenticated UPDATE"


def test_the_insert_reset_trigger_is_what_makes_style_stack_counters_safe(db, sql):
    sql("ALTER TABLE public.style_stacks DISABLE TRIGGER server_columns")

    check = run("grants")

    assert check.level == Level.ERROR
    assert "style_stacks.usage_count: authenticated INSERT" in check.summary


# --- the runner ----------------------------------------------------------------------


def test_a_failing_check_is_an_error_and_the_others_still_run(db, monkeypatch):
    def broken(cursor):
        cursor.execute("SELECT * FROM public.no_such_table")

    monkeypatch.setattr("health.services.CHECKS", [("broken", broken), *CHECKS[-3:-1]])

    report = health_report()

    assert [(check.name, check.level) for check in report.checks] == [
        ("broken", Level.ERROR),
        ("auth settings", Level.OK),
        ("media files", Level.OK),
    ]
    assert report.check("broken").summary.startswith("the check failed: ProgrammingError")


# --- the command ---------------------------------------------------------------------


def test_the_command_prints_progress_and_tables_and_exits_0_when_nothing_is_an_error(alice):
    out = io.StringIO()

    call_command("dbhealth", stdout=out)  # no CommandError: exit code 0

    text = out.getvalue()
    assert f"[1/{len(CHECKS)}] counts … OK (" in text
    assert f"[{len(CHECKS) - 2}/{len(CHECKS)}] auth settings … OK (" in text
    assert f"[{len(CHECKS) - 1}/{len(CHECKS)}] media files … OK (" in text
    assert f"[{len(CHECKS)}/{len(CHECKS)}] backups … OK (" in text
    assert f"auth settings: OK — {AUTH_SETTINGS_OK}" in text
    assert "auth.users → generations" in text  # the FK table
    assert text.rstrip().endswith(f"Overall: OK ({len(CHECKS)} OK, 0 WARN, 0 ERROR)")


def test_the_command_exits_1_when_a_check_is_an_error(db, sql):
    sql("GRANT UPDATE (credits_balance) ON public.users TO authenticated")
    out = io.StringIO()

    with pytest.raises(CommandError) as raised:
        call_command("dbhealth", stdout=out)

    assert raised.value.returncode == 1
    assert str(raised.value) == "database health: ERROR in grants"
    assert "grants: ERROR — API roles can write server-owned data" in out.getvalue()


def test_the_command_prints_json_for_machines(alice):
    out, err = io.StringIO(), io.StringIO()

    call_command("dbhealth", "--json", stdout=out, stderr=err)

    data = json.loads(out.getvalue())
    assert data["level"] == "OK"
    assert [check["name"] for check in data["checks"]] == CHECK_NAMES
    assert data["checks"][0]["details"][0] == {"what": "users", "count": 1}
    assert err.getvalue().count(" … ") == len(CHECKS)  # progress on stderr, not in the JSON


# --- the admin page ------------------------------------------------------------------


def test_staff_see_the_admin_page_linked_from_the_index(client, staff):
    client.force_login(staff)

    page = client.get("/admin/dbhealth/")

    assert page.status_code == 200
    content = page.content.decode()
    assert all(f"<h2>{name}</h2>" in content for name in CHECK_NAMES)
    assert AUTH_SETTINGS_OK in content
    assert 'href="/admin/dbhealth/"' in client.get("/admin/").content.decode()


def test_the_admin_page_sends_non_staff_to_the_login(client, alice):
    client.force_login(alice)

    page = client.get("/admin/dbhealth/")

    assert (page.status_code, page["Location"]) == (302, "/admin/login/?next=/admin/dbhealth/")


# --- the API -------------------------------------------------------------------------


def test_liveness_answers_anyone_without_secrets(api, alice):
    response = api.get("/api/v1/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "migrations": "ok"}
    body = response.content.decode()
    db = settings.DATABASES["default"]
    assert not [secret for secret in (settings.SECRET_KEY, db["NAME"], str(db.get("HOST"))) if secret in body]
    # The RLS glue ran (as anon) and left the owner role behind.
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user")
        assert cursor.fetchone() == (True,)


def test_liveness_is_503_when_migrations_are_unapplied(api, db, monkeypatch):
    monkeypatch.setattr("health.services.migrations_pending", lambda: True)

    response = api.get("/api/v1/health")

    assert (response.status_code, response.json()) == (
        503,
        {"status": "error", "database": "ok", "migrations": "unapplied"},
    )


def test_liveness_is_503_when_the_database_is_unreachable(api, db):
    def unreachable(execute, sql, params, many, context):
        raise OperationalError("connection to server failed: secret-host.internal")

    with connection.execute_wrapper(unreachable):
        response = api.get("/api/v1/health")

    assert (response.status_code, response.json()) == (
        503,
        {"status": "error", "database": "unreachable", "migrations": "unknown"},
    )
    assert b"secret-host" not in response.content


def test_staff_get_the_full_report_with_real_totals(api_as, staff, alice, bob):
    response = api_as(staff).get("/api/v1/health/report")

    assert response.status_code == 200
    data = response.json()
    assert data["level"] == "OK"
    counts = {row["what"]: row["count"] for row in data["checks"][0]["details"]}
    # Under RLS, as authenticated, these would be 1 and the staff member's own rows.
    assert counts["users"] == User.objects.count() == 3
    assert counts["ledger rows"] == CreditTransaction.objects.count() == 3
    # The report stepped out of the RLS role and the glue reset it: the owner is back.
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user, auth.uid()")
        assert cursor.fetchone() == (True, None)


def test_the_report_is_refused_to_people_and_to_anonymous_callers(api, api_as, alice):
    assert api_as(alice).get("/api/v1/health/report").status_code == 403
    assert api.get("/api/v1/health/report").status_code == 401
