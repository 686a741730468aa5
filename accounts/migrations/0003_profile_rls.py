"""Row Level Security on public.users.

A signed-in person reads and updates only their own profile, and may write only
full_name, avatar_url and metadata (column grants): never credits_balance, current_plan,
is_active or email. anon gets nothing. The owner connection (admin, commands) bypasses
RLS; service_role has BYPASSRLS.
"""

from django.db import migrations

RLS = """
ALTER TABLE public.users ENABLE ROW LEVEL SECURITY;

-- (select auth.uid()) is evaluated once per statement, not once per row. The policy
-- filters on id, the primary key.
CREATE POLICY users_select_own ON public.users
  FOR SELECT TO authenticated
  USING ((SELECT auth.uid()) = id);

CREATE POLICY users_update_own ON public.users
  FOR UPDATE TO authenticated
  USING ((SELECT auth.uid()) = id)
  WITH CHECK ((SELECT auth.uid()) = id);

GRANT SELECT ON public.users TO authenticated;
GRANT UPDATE (full_name, avatar_url, metadata) ON public.users TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.users TO service_role;
"""

RLS_REVERSE = """
REVOKE ALL ON public.users FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS users_update_own ON public.users;
DROP POLICY IF EXISTS users_select_own ON public.users;
ALTER TABLE public.users DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_user_sync")]

    operations = [migrations.RunSQL(RLS, reverse_sql=RLS_REVERSE)]
