"""The database conventions every other migration builds on, in Supabase's shape.

Django has no operations for roles, schemas or SQL functions, hence RunSQL.
"""

from django.db import migrations

# Roles are cluster-wide: another database on the same server (the test database, a
# second checkout) may already have created them, or be creating them right now. Create
# each only if missing, and swallow the race. BYPASSRLS can only be given at creation
# (by a superuser); on a managed server, create the roles beforehand (README, "Deploy").
ROLES = """
DO $$
DECLARE
  spec text[];
BEGIN
  FOREACH spec SLICE 1 IN ARRAY ARRAY[
    ARRAY['anon', 'NOLOGIN NOINHERIT'],
    ARRAY['authenticated', 'NOLOGIN NOINHERIT'],
    ARRAY['service_role', 'NOLOGIN NOINHERIT BYPASSRLS']
  ] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = spec[1]) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', spec[1], spec[2]);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- a concurrent migration of another database created it first
      END;
    END IF;
  END LOOP;
END
$$;
-- The app's connection role switches to these per request (SET LOCAL ROLE).
GRANT anon, authenticated, service_role TO CURRENT_USER;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;
"""

# Never DROP ROLE: other databases on the server depend on the roles. The reverse takes
# back only what this database granted.
ROLES_REVERSE = """
REVOKE USAGE ON SCHEMA public FROM anon, authenticated, service_role;
"""

# auth.uid() / auth.role() / auth.jwt() read the claims the RLS glue publishes with
# set_config('request.jwt.claims', …, true). After a transaction that set them, the same
# session reads '' instead of NULL, hence nullif. Fixed empty search_path and
# schema-qualified names: a caller cannot shadow what they resolve to.
AUTH_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;

CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb
LANGUAGE sql STABLE SET search_path = ''
AS $$
  SELECT nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb
$$;

CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid
LANGUAGE sql STABLE SET search_path = ''
AS $$
  SELECT nullif(auth.jwt() ->> 'sub', '')::uuid
$$;

CREATE OR REPLACE FUNCTION auth.role() RETURNS text
LANGUAGE sql STABLE SET search_path = ''
AS $$
  SELECT nullif(auth.jwt() ->> 'role', '')
$$;

COMMENT ON FUNCTION auth.uid() IS 'The caller''s user id from request.jwt.claims (sub), or NULL.';
COMMENT ON FUNCTION auth.role() IS 'The caller''s role from request.jwt.claims, or NULL.';
COMMENT ON FUNCTION auth.jwt() IS 'The caller''s JWT claims (request.jwt.claims), or NULL.';

-- Shared BEFORE UPDATE trigger function for every updated_at column, so raw SQL
-- updates keep it right too.
CREATE OR REPLACE FUNCTION public.set_updated_at() RETURNS trigger
LANGUAGE plpgsql SET search_path = ''
AS $$
BEGIN
  NEW.updated_at := pg_catalog.now();
  RETURN NEW;
END
$$;
"""

AUTH_SCHEMA_REVERSE = """
DROP FUNCTION IF EXISTS public.set_updated_at();
DROP FUNCTION IF EXISTS auth.role();
DROP FUNCTION IF EXISTS auth.uid();
DROP FUNCTION IF EXISTS auth.jwt();
DROP SCHEMA IF EXISTS auth;
"""


class Migration(migrations.Migration):
    initial = True
    dependencies = []

    operations = [
        migrations.RunSQL(ROLES, reverse_sql=ROLES_REVERSE),
        migrations.RunSQL(AUTH_SCHEMA, reverse_sql=AUTH_SCHEMA_REVERSE),
    ]
