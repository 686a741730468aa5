"""Row Level Security and grants at the SQL level, as the API roles see them."""

import pytest
from django.db import ProgrammingError, connection

from tests.conftest import as_role


def test_authenticated_sees_only_its_own_profile(alice, bob):
    with as_role("authenticated", alice) as cursor:
        cursor.execute("SELECT id FROM public.users")
        assert [row[0] for row in cursor.fetchall()] == [alice.pk]


def test_authenticated_sees_only_its_own_ledger(alice, bob):
    with as_role("authenticated", alice) as cursor:
        cursor.execute("SELECT DISTINCT user_id FROM public.credit_transactions")
        assert [row[0] for row in cursor.fetchall()] == [alice.pk]


def test_auth_functions_read_the_claims(alice):
    with as_role("authenticated", alice) as cursor:
        cursor.execute("SELECT auth.uid(), auth.role(), auth.jwt() ->> 'email', current_user")
        assert cursor.fetchone() == (alice.pk, "authenticated", alice.email, "authenticated")


def test_auth_functions_are_null_without_claims(db, sql):
    assert sql("SELECT auth.uid(), auth.role(), auth.jwt()") == [(None, None, None)]
    # After a transaction-local setting ends, the session reads '' rather than NULL.
    sql("SELECT set_config('request.jwt.claims', '', false)")
    assert sql("SELECT auth.uid(), auth.role(), auth.jwt()") == [(None, None, None)]


@pytest.mark.parametrize("table", ["public.users", "public.credit_transactions", "auth.users"])
def test_anon_can_read_nothing(alice, table):
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("anon") as cursor:
        cursor.execute(f"SELECT count(*) FROM {table}")


def test_authenticated_cannot_read_identities(alice):
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("authenticated", alice) as cursor:
        cursor.execute("SELECT encrypted_password FROM auth.users")


@pytest.mark.parametrize(
    "assignment",
    ["credits_balance = 1000000", "current_plan = 'enterprise'", "email = 'x@example.com'", "is_active = false"],
)
def test_authenticated_cannot_write_server_owned_profile_columns(alice, assignment):
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("authenticated", alice) as cursor:
        cursor.execute(f"UPDATE public.users SET {assignment} WHERE id = %s", [alice.pk])


def test_authenticated_can_edit_its_own_name_but_not_anothers(alice, bob, sql):
    with as_role("authenticated", alice) as cursor:
        cursor.execute("UPDATE public.users SET full_name = 'Mine' WHERE id = %s", [alice.pk])
        assert cursor.rowcount == 1
        cursor.execute("UPDATE public.users SET full_name = 'Hacked' WHERE id = %s", [bob.pk])
        assert cursor.rowcount == 0
    assert sql("SELECT full_name FROM public.users WHERE id = %s", [bob.pk]) == [("Bob Stranger",)]
    assert sql("SELECT full_name FROM public.users WHERE id = %s", [alice.pk]) == [("Mine",)]


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO public.credit_transactions (user_id, type, amount, balance_after) VALUES (%s, 'grant', 5, 105)",
        "UPDATE public.credit_transactions SET amount = 1000 WHERE user_id = %s",
        "DELETE FROM public.credit_transactions WHERE user_id = %s",
        "INSERT INTO public.users (id, email) VALUES (%s, 'dup@example.com')",
        "DELETE FROM public.users WHERE id = %s",
    ],
)
def test_authenticated_cannot_write_the_ledger_or_create_profiles(alice, statement):
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("authenticated", alice) as cursor:
        cursor.execute(statement, [alice.pk])


def test_no_api_role_has_privileges_on_djangos_tables_or_identities(db, sql):
    """Supabase's advisor flags any table the API roles can touch without RLS. The API
    roles get grants only on tables that have RLS and policies."""
    rows = sql(
        """
        SELECT n.nspname || '.' || c.relname, r.rolname, c.relrowsecurity
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        CROSS JOIN (VALUES ('anon'), ('authenticated')) AS r(rolname)
        WHERE c.relkind IN ('r', 'p', 'v', 'm') AND n.nspname IN ('public', 'auth')
          AND (has_table_privilege(r.rolname, c.oid, 'SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER')
               OR has_any_column_privilege(r.rolname, c.oid, 'SELECT,INSERT,UPDATE,REFERENCES'))
        ORDER BY 1, 2
        """
    )
    assert rows == [
        ("auth.sessions", "authenticated", True),
        ("public.ai_models", "anon", True),
        ("public.ai_models", "authenticated", True),
        ("public.billing_credit_packs", "anon", True),
        ("public.billing_credit_packs", "authenticated", True),
        ("public.billing_orders", "authenticated", True),
        ("public.billing_plans", "anon", True),
        ("public.billing_plans", "authenticated", True),
        ("public.credit_transactions", "authenticated", True),
        ("public.generation_events", "authenticated", True),
        ("public.generation_stats", "authenticated", True),
        ("public.generations", "authenticated", True),
        ("public.projects", "anon", True),
        ("public.projects", "authenticated", True),
        ("public.stack_contributors", "authenticated", True),
        ("public.stack_invites", "authenticated", True),
        ("public.style_stack_presets", "anon", True),
        ("public.style_stack_presets", "authenticated", True),
        ("public.style_stack_versions", "authenticated", True),
        ("public.style_stacks", "authenticated", True),
        ("public.users", "authenticated", True),
    ]


def test_every_public_table_with_api_grants_has_rls_and_policies(db, sql):
    rows = sql(
        """
        SELECT c.relname, c.relrowsecurity, count(p.polname)
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_policy p ON p.polrelid = c.oid
        WHERE n.nspname = 'public' AND c.relkind = 'r'
          AND NOT c.relname LIKE ANY (ARRAY['django\\_%', 'auth\\_%'])
        GROUP BY 1, 2 ORDER BY 1
        """
    )
    assert rows, "expected the project's own tables"
    for name, rls, policies in rows:
        assert rls and policies > 0, f"public.{name}: RLS enabled={rls}, policies={policies}"


def test_policies_call_auth_uid_once_per_statement(db, sql):
    bare = sql(
        """
        SELECT tablename, policyname FROM pg_policies
        WHERE schemaname = 'public'
          AND (coalesce(qual, '') || coalesce(with_check, '')) ~ 'auth\\.uid\\(\\)'
          AND (coalesce(qual, '') || coalesce(with_check, '')) !~* 'select auth\\.uid\\(\\)'
        """
    )
    assert bare == []
    untargeted = sql(
        "SELECT tablename, policyname FROM pg_policies WHERE schemaname = 'public' AND 'public' = ANY(roles)"
    )
    assert untargeted == []


def test_every_function_has_a_fixed_search_path(db, sql):
    loose = sql(
        """
        SELECT n.nspname || '.' || p.proname
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname IN ('public', 'auth', 'private')
          AND NOT EXISTS (SELECT 1 FROM unnest(coalesce(p.proconfig, '{}')) c WHERE c LIKE 'search_path=%')
        """
    )
    assert loose == []


# SECURITY DEFINER functions the API role may call: each takes the caller from
# auth.uid(), never from a parameter, and checks ownership itself. They live in the
# schema ``private`` (not exposed to a Supabase client's /rest/v1/rpc); the API calls
# the SECURITY INVOKER wrappers of the same names in ``public``.
CALLABLE_BY_AUTHENTICATED = {
    "private.generation_create",
    "private.generation_cancel",
    "private.stack_role",  # used by the style stack policies
    "private.stack_is_visible",  # used by the style stack insert policy
    "private.stack_contributor_add",
    "private.style_stacks_explore",  # public stacks only, built in
}


def test_security_definer_functions_are_not_executable_by_api_roles(db, sql):
    rows = sql(
        """
        SELECT n.nspname || '.' || p.proname, r.rolname
        FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        CROSS JOIN (VALUES ('anon'), ('authenticated'), ('public')) AS r(rolname)
        WHERE p.prosecdef AND n.nspname IN ('public', 'auth', 'private')
          AND CASE WHEN r.rolname = 'public'
                   THEN EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                                WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
                   ELSE has_function_privilege(r.rolname, p.oid, 'EXECUTE') END
        """
    )
    assert sorted(rows) == sorted((name, "authenticated") for name in CALLABLE_BY_AUTHENTICATED)
    definers = sql(
        "SELECT n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE p.prosecdef AND n.nspname IN ('public', 'private') ORDER BY 1, 2"
    )
    assert definers == [
        ("private", "generation_cancel"),
        ("private", "generation_create"),
        ("private", "generation_events_inserted"),
        ("private", "generation_stats_deleted"),
        ("private", "generation_stats_inserted"),
        ("private", "generation_stats_updated"),
        ("private", "generation_status_changed"),
        ("private", "generations_count_in_project"),
        ("private", "generations_count_style_usage"),
        ("private", "generations_storage_bytes"),
        ("private", "handle_new_user"),
        ("private", "handle_updated_user"),
        ("private", "stack_contributor_add"),
        ("private", "stack_invites_accept"),
        ("private", "stack_is_visible"),
        ("private", "stack_role"),
        ("private", "style_stack_presets_keep_version"),
        ("private", "style_stacks_count_fork"),
        ("private", "style_stacks_explore"),
        ("private", "style_stacks_keep_version"),
    ]
    # Supabase's lints 0028/0029: nothing in the exposed schema acts beyond its caller.
    assert not [row for row in definers if row[0] == "public"]


def test_the_api_calls_invoker_wrappers_in_public(db, sql):
    """What the API calls by name in ``public`` runs with the caller's rights."""
    rows = sql(
        "SELECT p.proname, p.prosecdef FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
        "WHERE n.nspname = 'public' AND p.proname IN ('generation_create', 'generation_cancel', "
        "'stack_contributor_add', 'style_stacks_explore') ORDER BY 1"
    )
    assert rows == [
        ("generation_cancel", False),
        ("generation_create", False),
        ("stack_contributor_add", False),
        ("style_stacks_explore", False),
    ]


def test_the_roles_exist_with_the_right_attributes(db, sql):
    rows = sql(
        "SELECT rolname, rolcanlogin, rolbypassrls FROM pg_roles "
        "WHERE rolname IN ('anon', 'authenticated', 'service_role') ORDER BY 1"
    )
    assert rows == [("anon", False, False), ("authenticated", False, False), ("service_role", False, True)]
    member_of = sql(
        "SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles "
        "WHERE rolname IN ('anon', 'authenticated', 'service_role') AND pg_has_role(current_user, oid, 'MEMBER')"
    )
    assert member_of == [("anon,authenticated,service_role",)]


def test_service_role_bypasses_rls(alice, bob):
    with as_role("service_role") as cursor:
        cursor.execute("SELECT count(*) FROM public.users")
        assert cursor.fetchone()[0] == 2


def test_as_role_leaves_the_owner_role_behind(alice):
    with as_role("authenticated", alice):
        pass
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user = session_user, auth.uid()")
        assert cursor.fetchone() == (True, None)
