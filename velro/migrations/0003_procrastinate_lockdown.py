"""procrastinate's tables and functions, held to the rules of every other object in ``public``.

procrastinate (the background task queue, velro/tasks.py) creates its tables, sequences
and functions in ``public``, the schema the API roles can reach, with none of the house
rules: RLS off, functions executable by PUBLIC, no fixed search_path. The queue is
server-side only — the app defers as the owner (after the request's transaction has
committed) and the worker connects as the owner — so here it is closed to ``anon`` and
``authenticated``:

* RLS on every procrastinate table, with one policy for ``service_role`` that says in the
  catalog what BYPASSRLS already allows (as ``webhook_deliveries`` and ``cache_entries``).
  The owner bypasses RLS, so procrastinate itself is unaffected.
* No privileges for ``anon`` / ``authenticated`` on the tables, sequences and functions;
  EXECUTE taken from PUBLIC too (the default grant). ``service_role`` gets them back, so
  code running as the service side (a provider webhook) can defer a job directly.
* A fixed search_path on every function (Supabase's lint 0011). procrastinate's SQL names
  its objects unqualified, so the path is ``pg_catalog, public``, not the house's ''.

The objects are found by their ``procrastinate_`` prefix rather than listed: they are
procrastinate's, and its version decides which exist. A later procrastinate migration
that adds or re-creates one (CREATE OR REPLACE FUNCTION drops the search_path set here)
needs a migration like this one after it: tests/db/test_procrastinate_lockdown.py and
``manage.py dbhealth`` fail until then.

Django has no operations for RLS, policies, grants or function settings, hence RunSQL.
"""

from django.db import migrations

# The procrastinate objects in public, by kind; each loop below reads one of these.
_TABLES = """
SELECT c.oid::regclass, c.relname FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p')
  AND c.relname LIKE 'procrastinate\\_%'
"""
_SEQUENCES = """
SELECT c.oid::regclass FROM pg_catalog.pg_class AS c
WHERE c.relnamespace = 'public'::regnamespace AND c.relkind = 'S'
  AND c.relname LIKE 'procrastinate\\_%'
"""
_FUNCTIONS = """
SELECT p.oid::regprocedure FROM pg_catalog.pg_proc AS p
WHERE p.pronamespace = 'public'::regnamespace AND p.prokind = 'f'
  AND p.proname LIKE 'procrastinate\\_%'
"""

LOCKDOWN = f"""
DO $$
DECLARE
  tbl regclass;
  tbl_name name;
  seq regclass;
  fn regprocedure;
BEGIN
  FOR tbl, tbl_name IN {_TABLES} LOOP
    EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
    EXECUTE format(
      'CREATE POLICY %I ON %s FOR ALL TO service_role USING (true) WITH CHECK (true)',
      tbl_name || '_service', tbl
    );
    EXECUTE format('REVOKE ALL ON %s FROM anon, authenticated', tbl);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %s TO service_role', tbl);
  END LOOP;
  FOR seq IN {_SEQUENCES} LOOP
    EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM anon, authenticated', seq);
    EXECUTE format('GRANT USAGE ON SEQUENCE %s TO service_role', seq);
  END LOOP;
  FOR fn IN {_FUNCTIONS} LOOP
    EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, public', fn);
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC, anon, authenticated', fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO service_role', fn);
  END LOOP;
END
$$;
"""

# Back to procrastinate's own state: RLS off, no policies, PUBLIC's default EXECUTE, no
# search_path, nothing granted to service_role.
LOCKDOWN_REVERSE = f"""
DO $$
DECLARE
  tbl regclass;
  tbl_name name;
  seq regclass;
  fn regprocedure;
BEGIN
  FOR fn IN {_FUNCTIONS} LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM service_role', fn);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO PUBLIC', fn);
    EXECUTE format('ALTER FUNCTION %s RESET search_path', fn);
  END LOOP;
  FOR seq IN {_SEQUENCES} LOOP
    EXECUTE format('REVOKE ALL ON SEQUENCE %s FROM service_role', seq);
  END LOOP;
  FOR tbl, tbl_name IN {_TABLES} LOOP
    EXECUTE format('REVOKE ALL ON %s FROM service_role', tbl);
    EXECUTE format('DROP POLICY IF EXISTS %I ON %s', tbl_name || '_service', tbl);
    EXECUTE format('ALTER TABLE %s DISABLE ROW LEVEL SECURITY', tbl);
  END LOOP;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("velro", "0002_private_schema"),
        # procrastinate's latest: every object it creates exists by now.
        ("procrastinate", "0041_post_retry_failed_job"),
    ]

    operations = [migrations.RunSQL(LOCKDOWN, reverse_sql=LOCKDOWN_REVERSE)]
