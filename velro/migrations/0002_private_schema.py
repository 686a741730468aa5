"""The schema ``private``: where SECURITY DEFINER functions live, out of the exposed API.

Supabase's advisor (lints 0028/0029) flags every SECURITY DEFINER function in an
exposed schema (``public``) that ``anon`` or ``authenticated`` may execute: a Supabase
client could call it through ``/rest/v1/rpc``. Functions that act beyond the caller's
rights therefore live here; the few the API roles must reach (RLS policy helpers, and
the functions behind the API's invoker wrappers in ``public``) get EXECUTE by name, and
nothing else does: new functions in this schema are not executable by PUBLIC.

Django has no operations for schemas or default privileges, hence RunSQL.
"""

from django.db import migrations

PRIVATE_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS private;
REVOKE ALL ON SCHEMA private FROM PUBLIC;
-- USAGE only lets a role name the schema's objects; EXECUTE on each function is granted
-- one by one (policy helpers, the definer halves of the API's public wrappers).
GRANT USAGE ON SCHEMA private TO anon, authenticated, service_role;
-- Functions are executable by PUBLIC unless revoked: here they start revoked.
ALTER DEFAULT PRIVILEGES IN SCHEMA private REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
"""

# Fails (rightly) while any object is left in the schema: the migrations that moved
# functions here are reversed first.
PRIVATE_SCHEMA_REVERSE = """
ALTER DEFAULT PRIVILEGES IN SCHEMA private GRANT EXECUTE ON FUNCTIONS TO PUBLIC;
DROP SCHEMA IF EXISTS private;
"""


class Migration(migrations.Migration):
    dependencies = [("velro", "0001_supabase_conventions")]

    operations = [migrations.RunSQL(PRIVATE_SCHEMA, reverse_sql=PRIVATE_SCHEMA_REVERSE)]
