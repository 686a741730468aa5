"""The style stacks' SECURITY DEFINER functions move out of the exposed schema.

Supabase's advisor (lint 0029) flagged the policy helpers stack_role() and
stack_is_visible() and style_stacks_explore(): SECURITY DEFINER in ``public`` and
executable by ``authenticated``, so a Supabase client could call them through
/rest/v1/rpc. The version and fork-count trigger functions are called by no one by name.
All five move to ``private``:

* policies and triggers follow a function by its oid, so they keep working unchanged;
* stack_is_visible() named public.stack_role() in its body: it is recreated to name
  private.stack_role() (CREATE OR REPLACE keeps its grants);
* the API calls style_stacks_explore() by name: ``public`` keeps a SECURITY INVOKER
  wrapper with the same arguments, which runs the definer half in ``private``.

EXECUTE stays as it was: the two policy helpers and explore for ``authenticated``, the
triggers for no API role.
"""

from django.db import migrations

EXPLORE_ARGS = "text, text[], text, text, integer, integer"


def _stack_is_visible(schema: str) -> str:
    """stack_is_visible() in ``schema``, asking stack_role() of the same schema."""
    return f"""CREATE OR REPLACE FUNCTION {schema}.stack_is_visible(p_stack_id uuid) RETURNS boolean
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = ''
AS $$
  SELECT EXISTS (
    SELECT 1 FROM public.style_stacks AS s
     WHERE s.id = p_stack_id
       AND (s.user_id = auth.uid() OR s.visibility IN ('public', 'unlisted') OR {schema}.stack_role(s.id) IS NOT NULL)
  )
$$;
"""


MOVE = f"""
ALTER FUNCTION public.stack_role(uuid) SET SCHEMA private;
ALTER FUNCTION public.stack_is_visible(uuid) SET SCHEMA private;
{_stack_is_visible("private")}ALTER FUNCTION public.style_stacks_keep_version() SET SCHEMA private;
ALTER FUNCTION public.style_stacks_count_fork() SET SCHEMA private;

ALTER FUNCTION public.style_stacks_explore({EXPLORE_ARGS}) SET SCHEMA private;
CREATE FUNCTION public.style_stacks_explore(
  p_query text DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_category text DEFAULT NULL,
  p_sort text DEFAULT 'usage',
  p_limit integer DEFAULT 50,
  p_offset integer DEFAULT 0
) RETURNS TABLE (id uuid, total bigint)
LANGUAGE sql STABLE SECURITY INVOKER SET search_path = ''
AS $$
  SELECT e.id, e.total FROM private.style_stacks_explore(p_query, p_tags, p_category, p_sort, p_limit, p_offset) AS e
$$;
REVOKE ALL ON FUNCTION public.style_stacks_explore({EXPLORE_ARGS}) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.style_stacks_explore({EXPLORE_ARGS}) TO authenticated;
"""

MOVE_REVERSE = f"""
DROP FUNCTION IF EXISTS public.style_stacks_explore({EXPLORE_ARGS});
ALTER FUNCTION private.style_stacks_explore({EXPLORE_ARGS}) SET SCHEMA public;
ALTER FUNCTION private.style_stacks_count_fork() SET SCHEMA public;
ALTER FUNCTION private.style_stacks_keep_version() SET SCHEMA public;
ALTER FUNCTION private.stack_is_visible(uuid) SET SCHEMA public;
ALTER FUNCTION private.stack_role(uuid) SET SCHEMA public;
{_stack_is_visible("public")}"""


class Migration(migrations.Migration):
    dependencies = [
        ("stylestacks", "0006_stack_invites"),
        ("velro", "0002_private_schema"),
    ]

    operations = [migrations.RunSQL(MOVE, reverse_sql=MOVE_REVERSE)]
