"""Row Level Security for style stacks, contributors, versions and presets, and the
triggers that keep versions and fork counts.

Who may do what with a stack is answered by one SECURITY DEFINER helper,
public.stack_role(stack): 'owner', 'editor', 'viewer' or NULL for the caller
(auth.uid(), never a parameter). The policies on style_stacks and stack_contributors
both call it instead of querying each other, so no policy recurses into another.
"""

from django.db import migrations

HELPERS = """
CREATE OR REPLACE FUNCTION public.stack_role(p_stack_id uuid) RETURNS text
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
AS $$
  SELECT CASE WHEN s.user_id = auth.uid() THEN 'owner' ELSE c.role END
  FROM public.style_stacks AS s
  LEFT JOIN public.stack_contributors AS c ON c.stack_id = s.id AND c.user_id = auth.uid()
  WHERE s.id = p_stack_id
$$;
REVOKE ALL ON FUNCTION public.stack_role(uuid) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.stack_role(uuid) TO authenticated;

-- May the caller read this stack? (A fork's parent must be one the forker can see.)
CREATE OR REPLACE FUNCTION public.stack_is_visible(p_stack_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
AS $$
  SELECT EXISTS (
    SELECT 1 FROM public.style_stacks AS s
     WHERE s.id = p_stack_id
       AND (s.user_id = auth.uid() OR s.visibility IN ('public', 'unlisted') OR public.stack_role(s.id) IS NOT NULL)
  )
$$;
REVOKE ALL ON FUNCTION public.stack_is_visible(uuid) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.stack_is_visible(uuid) TO authenticated;
"""
HELPERS_REVERSE = """
DROP FUNCTION IF EXISTS public.stack_is_visible(uuid);
DROP FUNCTION IF EXISTS public.stack_role(uuid);
"""

RLS = """
ALTER TABLE public.style_stacks ENABLE ROW LEVEL SECURITY;
-- user_id: style_stacks_user_idx; visibility: style_stacks_explore_idx (partial).
-- Unlisted stacks are readable by anyone signed in who has the id; the API lists only
-- public ones (explore) and the caller's own or shared ones.
CREATE POLICY style_stacks_select ON public.style_stacks
  FOR SELECT TO authenticated
  USING ((SELECT auth.uid()) = user_id OR visibility IN ('public', 'unlisted') OR public.stack_role(id) IS NOT NULL);
-- A fork may only name a parent the caller can see (foreign-key checks ignore RLS, and
-- the fork counter trigger would count it).
CREATE POLICY style_stacks_insert_own ON public.style_stacks
  FOR INSERT TO authenticated
  WITH CHECK ((SELECT auth.uid()) = user_id AND (parent_id IS NULL OR public.stack_is_visible(parent_id)));
CREATE POLICY style_stacks_update_owner_or_editor ON public.style_stacks
  FOR UPDATE TO authenticated
  USING ((SELECT auth.uid()) = user_id OR public.stack_role(id) = 'editor')
  WITH CHECK ((SELECT auth.uid()) = user_id OR public.stack_role(id) = 'editor');
CREATE POLICY style_stacks_delete_own ON public.style_stacks
  FOR DELETE TO authenticated
  USING ((SELECT auth.uid()) = user_id);
GRANT SELECT, INSERT, DELETE ON public.style_stacks TO authenticated;
-- Never the counters, the version, the owner or the staff flags.
GRANT UPDATE (name, description, tags, category, visibility, style, compatible_models)
  ON public.style_stacks TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.style_stacks TO service_role;

ALTER TABLE public.stack_contributors ENABLE ROW LEVEL SECURITY;
-- (stack_id, user_id): stack_contributors_stack_user_key; user_id: stack_contributors_user_idx.
CREATE POLICY stack_contributors_select ON public.stack_contributors
  FOR SELECT TO authenticated
  USING ((SELECT auth.uid()) = user_id OR public.stack_role(stack_id) IS NOT NULL);
CREATE POLICY stack_contributors_insert_by_owner ON public.stack_contributors
  FOR INSERT TO authenticated
  WITH CHECK (public.stack_role(stack_id) = 'owner');
CREATE POLICY stack_contributors_update_by_owner ON public.stack_contributors
  FOR UPDATE TO authenticated
  USING (public.stack_role(stack_id) = 'owner')
  WITH CHECK (public.stack_role(stack_id) = 'owner');
-- The owner removes anyone; a contributor may leave.
CREATE POLICY stack_contributors_delete ON public.stack_contributors
  FOR DELETE TO authenticated
  USING (public.stack_role(stack_id) = 'owner' OR (SELECT auth.uid()) = user_id);
GRANT SELECT, INSERT, DELETE ON public.stack_contributors TO authenticated;
GRANT UPDATE (role) ON public.stack_contributors TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.stack_contributors TO service_role;

ALTER TABLE public.style_stack_versions ENABLE ROW LEVEL SECURITY;
-- stack_id: style_stack_versions_stack_version_key.
CREATE POLICY style_stack_versions_select ON public.style_stack_versions
  FOR SELECT TO authenticated
  USING (public.stack_role(stack_id) IS NOT NULL);
GRANT SELECT ON public.style_stack_versions TO authenticated;
GRANT SELECT, INSERT ON public.style_stack_versions TO service_role;

ALTER TABLE public.style_stack_presets ENABLE ROW LEVEL SECURITY;
-- is_active: presets_active_idx (partial).
CREATE POLICY style_stack_presets_select_active ON public.style_stack_presets
  FOR SELECT TO anon, authenticated
  USING (is_active);
GRANT SELECT ON public.style_stack_presets TO anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.style_stack_presets TO service_role;
"""

RLS_REVERSE = """
REVOKE ALL ON public.style_stack_presets FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS style_stack_presets_select_active ON public.style_stack_presets;
ALTER TABLE public.style_stack_presets DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.style_stack_versions FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS style_stack_versions_select ON public.style_stack_versions;
ALTER TABLE public.style_stack_versions DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.stack_contributors FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS stack_contributors_delete ON public.stack_contributors;
DROP POLICY IF EXISTS stack_contributors_update_by_owner ON public.stack_contributors;
DROP POLICY IF EXISTS stack_contributors_insert_by_owner ON public.stack_contributors;
DROP POLICY IF EXISTS stack_contributors_select ON public.stack_contributors;
ALTER TABLE public.stack_contributors DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.style_stacks FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS style_stacks_delete_own ON public.style_stacks;
DROP POLICY IF EXISTS style_stacks_update_owner_or_editor ON public.style_stacks;
DROP POLICY IF EXISTS style_stacks_insert_own ON public.style_stacks;
DROP POLICY IF EXISTS style_stacks_select ON public.style_stacks;
ALTER TABLE public.style_stacks DISABLE ROW LEVEL SECURITY;
"""

TRIGGERS = """
-- Editors change style and text, never visibility (column grants cannot tell an editor
-- from the owner: both are "authenticated").
CREATE OR REPLACE FUNCTION public.style_stacks_guard_editors() RETURNS trigger
LANGUAGE plpgsql SET search_path = ''
AS $$
BEGIN
  IF current_user = 'authenticated' AND auth.uid() IS DISTINCT FROM OLD.user_id
     AND NEW.visibility IS DISTINCT FROM OLD.visibility THEN
    RAISE EXCEPTION 'Only the owner can change who sees this stack.' USING ERRCODE = 'VL403', HINT = 'visibility';
  END IF;
  RETURN NEW;
END
$$;
CREATE TRIGGER guard_editors BEFORE UPDATE ON public.style_stacks
  FOR EACH ROW EXECUTE FUNCTION public.style_stacks_guard_editors();

-- Every change of the document keeps the previous one and bumps the version.
-- SECURITY DEFINER: the API role cannot write versions or the version column.
CREATE OR REPLACE FUNCTION public.style_stacks_keep_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
BEGIN
  IF NEW.style IS DISTINCT FROM OLD.style THEN
    INSERT INTO public.style_stack_versions (stack_id, version, style, changed_by_id, created_at)
    VALUES (OLD.id, OLD.version, OLD.style, auth.uid(), pg_catalog.now());
    NEW.version := OLD.version + 1;
  ELSE
    NEW.version := OLD.version;
  END IF;
  RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION public.style_stacks_keep_version() FROM PUBLIC, anon, authenticated;
CREATE TRIGGER keep_version BEFORE UPDATE ON public.style_stacks
  FOR EACH ROW EXECUTE FUNCTION public.style_stacks_keep_version();

-- A fork bumps its parent's fork_count (the forker usually cannot update the parent).
CREATE OR REPLACE FUNCTION public.style_stacks_count_fork() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
BEGIN
  UPDATE public.style_stacks SET fork_count = fork_count + 1 WHERE id = NEW.parent_id;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.style_stacks_count_fork() FROM PUBLIC, anon, authenticated;
CREATE TRIGGER count_fork AFTER INSERT ON public.style_stacks
  FOR EACH ROW WHEN (NEW.parent_id IS NOT NULL) EXECUTE FUNCTION public.style_stacks_count_fork();
"""

TRIGGERS_REVERSE = """
DROP TRIGGER IF EXISTS count_fork ON public.style_stacks;
DROP FUNCTION IF EXISTS public.style_stacks_count_fork();
DROP TRIGGER IF EXISTS keep_version ON public.style_stacks;
DROP FUNCTION IF EXISTS public.style_stacks_keep_version();
DROP TRIGGER IF EXISTS guard_editors ON public.style_stacks;
DROP FUNCTION IF EXISTS public.style_stacks_guard_editors();
"""


class Migration(migrations.Migration):
    dependencies = [("stylestacks", "0001_style_stacks")]

    operations = [
        migrations.RunSQL(HELPERS, reverse_sql=HELPERS_REVERSE),
        migrations.RunSQL(RLS, reverse_sql=RLS_REVERSE),
        migrations.RunSQL(TRIGGERS, reverse_sql=TRIGGERS_REVERSE),
    ]
