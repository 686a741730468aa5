"""django-otp's tables, held to the rules of every other table in ``public``.

django-otp's own migrations create its device tables (authenticator apps, recovery code
devices and their codes) in ``public``, the schema the API roles can reach, with RLS off.
They hold second-factor secrets and are only ever read by the admin's sign-in, which runs
as the owner (RLS bypassed). So, as ``cache_entries``: RLS on, one policy for the service
side that says in the catalog what BYPASSRLS already allows, nothing for ``anon`` or
``authenticated``. Django has no operations for RLS, policies or grants, hence RunSQL.
"""

from django.db import migrations

TABLES = ("otp_totp_totpdevice", "otp_static_staticdevice", "otp_static_statictoken")

LOCKDOWN = "\n".join(
    f"""
ALTER TABLE public.{table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY {table}_service ON public.{table} FOR ALL TO service_role USING (true) WITH CHECK (true);
REVOKE ALL ON public.{table} FROM anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.{table} TO service_role;
"""
    for table in TABLES
)

LOCKDOWN_REVERSE = "\n".join(
    f"""
REVOKE ALL ON public.{table} FROM service_role;
DROP POLICY IF EXISTS {table}_service ON public.{table};
ALTER TABLE public.{table} DISABLE ROW LEVEL SECURITY;
"""
    for table in TABLES
)


class Migration(migrations.Migration):
    dependencies = [
        ("staffauth", "0001_two_factor_device"),
        ("otp_totp", "0003_add_timestamps"),
        ("otp_static", "0003_add_timestamps"),
        # The roles anon, authenticated and service_role.
        ("velro", "0001_supabase_conventions"),
    ]

    operations = [migrations.RunSQL(sql=LOCKDOWN, reverse_sql=LOCKDOWN_REVERSE)]
