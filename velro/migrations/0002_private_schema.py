"""The schema ``private``: where SECURITY DEFINER functions live, out of the exposed API.

Supabase's advisor (lints 0028/0029) flags every SECURITY DEFINER function in an
exposed schema (``public``) that ``anon`` or ``authenticated`` may execute: a Supabase
client could call it through ``/rest/v1/rpc``. Functions that act beyond the caller's
rights therefore live here; the few the API roles must reach (RLS policy helpers, and
the functions behind the API's invoker wrappers in ``public``) get EXECUTE by name, and
nothing else does. Each migration that creates a function here revokes EXECUTE from
PUBLIC itself: per-schema default privileges can only add to the global ones, never
take PUBLIC's EXECUTE away. ``manage.py dbhealth`` reports any that is left executable.

Django has no operations for schemas, hence RunSQL.
"""

from django.db import migrations

PRIVATE_SCHEMA = """
CREATE SCHEMA IF NOT EXISTS private;
REVOKE ALL ON SCHEMA private FROM PUBLIC;
-- USAGE only lets a role name the schema's objects; EXECUTE on each function is granted
-- one by one (policy helpers, the definer halves of the API's public wrappers).
GRANT USAGE ON SCHEMA private TO anon, authenticated, service_role;
"""

# Fails (rightly) while any object is left in the schema: the migrations that moved
# functions here are reversed first.
PRIVATE_SCHEMA_REVERSE = """
DROP SCHEMA IF EXISTS private;
"""


class Migration(migrations.Migration):
    dependencies = [("velro", "0001_supabase_conventions")]

    operations = [migrations.RunSQL(PRIVATE_SCHEMA, reverse_sql=PRIVATE_SCHEMA_REVERSE)]
