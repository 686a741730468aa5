"""Explore (public stacks: full-text search, tags, category, sort) as a SECURITY DEFINER
function.

Under RLS, PostgreSQL applies the policy before any qual that is not LEAKPROOF, and the
full-text (@@) and array-containment (@>) operators are not: run as the API role, the
search could not use its GIN indexes and scanned every row. Explore only ever shows
public stacks, which every signed-in person may read, so the function runs as the owner
with `visibility = 'public'` built in and uses the indexes. The query is assembled from
the filters actually given (EXECUTE … USING: values are never spliced into the SQL) so
each call gets a plan for its own conditions.
"""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION public.style_stacks_explore(
  p_query text DEFAULT NULL,
  p_tags text[] DEFAULT NULL,
  p_category text DEFAULT NULL,
  p_sort text DEFAULT 'usage',
  p_limit integer DEFAULT 50,
  p_offset integer DEFAULT 0
) RETURNS TABLE (id uuid, total bigint)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  conditions text := 's.visibility = ''public''';
  ordering text;
BEGIN
  IF p_sort NOT IN ('usage', 'forks', 'newest') THEN
    RAISE EXCEPTION 'sort must be usage, forks or newest.' USING ERRCODE = 'VL422', HINT = 'sort';
  END IF;
  IF p_query IS NOT NULL THEN
    conditions := conditions || ' AND s.search_vector @@ pg_catalog.websearch_to_tsquery(''english'', $1)';
  END IF;
  IF p_tags IS NOT NULL THEN
    conditions := conditions || ' AND s.tags @> $2::character varying[]';
  END IF;
  IF p_category IS NOT NULL THEN
    conditions := conditions || ' AND s.category = $3';
  END IF;
  ordering := CASE p_sort
    WHEN 'usage' THEN 's.is_featured DESC, s.usage_count DESC, s.created_at DESC, s.id DESC'
    WHEN 'forks' THEN 's.is_featured DESC, s.fork_count DESC, s.created_at DESC, s.id DESC'
    ELSE 's.is_featured DESC, s.created_at DESC, s.id DESC'
  END;
  RETURN QUERY EXECUTE
    'SELECT s.id, pg_catalog.count(*) OVER () FROM public.style_stacks AS s WHERE ' || conditions
    || ' ORDER BY ' || ordering || ' LIMIT $4 OFFSET $5'
    USING p_query, p_tags, p_category, greatest(1, least(p_limit, 100)), greatest(0, p_offset);
END
$$;
REVOKE ALL ON FUNCTION public.style_stacks_explore(text, text[], text, text, integer, integer) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.style_stacks_explore(text, text[], text, text, integer, integer) TO authenticated;
"""
SQL_REVERSE = "DROP FUNCTION IF EXISTS public.style_stacks_explore(text, text[], text, text, integer, integer);"


class Migration(migrations.Migration):
    dependencies = [("stylestacks", "0004_seed_presets")]

    operations = [migrations.RunSQL(SQL, reverse_sql=SQL_REVERSE)]
