"""Row Level Security on public.projects: owners do everything with their own rows;
public projects are readable by everyone signed in and by anon."""

from django.db import migrations

RLS = """
ALTER TABLE public.projects ENABLE ROW LEVEL SECURITY;

-- user_id: projects_user_created_idx; visibility: projects_public_idx (partial).
CREATE POLICY projects_select ON public.projects
  FOR SELECT TO authenticated
  USING ((SELECT auth.uid()) = user_id OR visibility = 'public');
CREATE POLICY projects_select_public ON public.projects
  FOR SELECT TO anon
  USING (visibility = 'public');
CREATE POLICY projects_insert_own ON public.projects
  FOR INSERT TO authenticated
  WITH CHECK ((SELECT auth.uid()) = user_id);
CREATE POLICY projects_update_own ON public.projects
  FOR UPDATE TO authenticated
  USING ((SELECT auth.uid()) = user_id)
  WITH CHECK ((SELECT auth.uid()) = user_id);
CREATE POLICY projects_delete_own ON public.projects
  FOR DELETE TO authenticated
  USING ((SELECT auth.uid()) = user_id);

GRANT SELECT ON public.projects TO anon;
-- INSERT on every column (Django lists them all); the BEFORE INSERT trigger resets the
-- server-owned ones. UPDATE only on what an owner may change.
GRANT SELECT, INSERT, DELETE ON public.projects TO authenticated;
GRANT UPDATE (name, description, visibility, archived_at) ON public.projects TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.projects TO service_role;
"""

RLS_REVERSE = """
REVOKE ALL ON public.projects FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS projects_delete_own ON public.projects;
DROP POLICY IF EXISTS projects_update_own ON public.projects;
DROP POLICY IF EXISTS projects_insert_own ON public.projects;
DROP POLICY IF EXISTS projects_select_public ON public.projects;
DROP POLICY IF EXISTS projects_select ON public.projects;
ALTER TABLE public.projects DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [("projects", "0001_projects"), ("velro", "0001_supabase_conventions")]

    operations = [migrations.RunSQL(RLS, reverse_sql=RLS_REVERSE)]
