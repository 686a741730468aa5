"""The identity-sync trigger functions move out of the exposed schema.

public.handle_new_user() and public.handle_updated_user() are SECURITY DEFINER (the
identity may be written by a role with no rights on the profile) and nobody calls them
by name: only the triggers on auth.users do, and a trigger follows its function by oid.
In ``private`` a Supabase client cannot reach them through /rest/v1/rpc (Supabase lint
0029). Bodies, grants (none) and triggers are unchanged.
"""

from django.db import migrations

MOVE = """
ALTER FUNCTION public.handle_new_user() SET SCHEMA private;
ALTER FUNCTION public.handle_updated_user() SET SCHEMA private;
"""
MOVE_REVERSE = """
ALTER FUNCTION private.handle_updated_user() SET SCHEMA public;
ALTER FUNCTION private.handle_new_user() SET SCHEMA public;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0005_cache_table"),
        ("velro", "0002_private_schema"),
    ]

    operations = [migrations.RunSQL(MOVE, reverse_sql=MOVE_REVERSE)]
