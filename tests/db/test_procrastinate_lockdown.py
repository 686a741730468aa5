"""procrastinate's objects in public are closed to the API roles (velro migration 0003).

Read from the catalog, so a procrastinate upgrade that adds a table or re-creates a
function fails here until a migration locks it down too."""

import pytest

API_ROLES = ["anon", "authenticated"]


def test_every_procrastinate_table_has_rls_and_the_service_policy(db, sql):
    tables = sql(
        "SELECT c.relname, c.relrowsecurity, array_agg(p.polname ORDER BY p.polname) FILTER (WHERE p.oid IS NOT NULL) "
        "FROM pg_class AS c LEFT JOIN pg_policy AS p ON p.polrelid = c.oid "
        "WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') "
        "AND c.relname LIKE 'procrastinate\\_%%' GROUP BY c.oid ORDER BY 1"
    )
    assert {name for name, _, _ in tables} >= {"procrastinate_jobs", "procrastinate_events", "procrastinate_workers"}
    assert tables == [(name, True, [f"{name}_service"]) for name, _, _ in tables]


@pytest.mark.parametrize("kind", ["r", "S"])
def test_api_roles_hold_no_privilege_on_procrastinate_tables_or_sequences(db, sql, kind):
    privileges = "SELECT,INSERT,UPDATE,DELETE,TRUNCATE,REFERENCES,TRIGGER" if kind == "r" else "USAGE,SELECT,UPDATE"
    check = "has_table_privilege" if kind == "r" else "has_sequence_privilege"
    held = sql(
        f"SELECT c.relname, r FROM pg_class AS c, unnest(%s::text[]) AS r "
        f"WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = %s AND c.relname LIKE 'procrastinate\\_%%' "
        f"AND {check}(r, c.oid, %s)",
        [API_ROLES, kind, privileges],
    )
    assert held == []


def test_procrastinate_functions_are_the_service_sides_with_a_fixed_search_path(db, sql):
    functions = sql(
        "SELECT p.oid::regprocedure::text, p.proconfig, "
        "ARRAY(SELECT r FROM unnest(%s::text[]) AS r WHERE has_function_privilege(r, p.oid, 'EXECUTE')), "
        "EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS acl "
        "        WHERE acl.grantee = 0 AND acl.privilege_type = 'EXECUTE') "
        "FROM pg_proc AS p WHERE p.pronamespace = 'public'::regnamespace AND p.proname LIKE 'procrastinate\\_%%'",
        [API_ROLES],
    )
    assert any(name.startswith("procrastinate_defer_jobs_v1(") for name, *_ in functions)
    loose = [
        name
        for name, config, executable_by, public in functions
        if config != ["search_path=pg_catalog, public"] or executable_by or public
    ]
    assert loose == []
