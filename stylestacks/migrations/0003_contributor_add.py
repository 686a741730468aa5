"""Adding a contributor by email. The API role cannot read identities (auth.users), so
the lookup happens in a SECURITY DEFINER function that first checks the caller
(auth.uid()) owns the stack; it answers only the stack's owner."""

from django.db import migrations

SQL = """
CREATE OR REPLACE FUNCTION public.stack_contributor_add(p_stack_id uuid, p_email text, p_role text)
RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  invitee uuid;
  invitee_email text;
  row_id uuid;
BEGIN
  IF public.stack_role(p_stack_id) IS DISTINCT FROM 'owner' THEN
    RAISE EXCEPTION 'Not found.' USING ERRCODE = 'VL404';
  END IF;
  IF p_role NOT IN ('viewer', 'editor') THEN
    RAISE EXCEPTION 'Role must be viewer or editor.' USING ERRCODE = 'VL422', HINT = 'role';
  END IF;
  SELECT u.id, u.email INTO invitee, invitee_email FROM auth.users AS u
   WHERE pg_catalog.lower(u.email) = pg_catalog.lower(pg_catalog.btrim(p_email)) AND u.is_active;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'No active user with this email.' USING ERRCODE = 'VL422', HINT = 'email';
  END IF;
  IF invitee = auth.uid() THEN
    RAISE EXCEPTION 'You own this stack already.' USING ERRCODE = 'VL422', HINT = 'email';
  END IF;
  INSERT INTO public.stack_contributors (stack_id, user_id, role, email, invited_by_id, created_at)
  VALUES (p_stack_id, invitee, p_role, invitee_email, auth.uid(), pg_catalog.now())
  ON CONFLICT (stack_id, user_id) DO UPDATE SET role = EXCLUDED.role, email = EXCLUDED.email
  RETURNING id INTO row_id;
  RETURN row_id;
END
$$;
REVOKE ALL ON FUNCTION public.stack_contributor_add(uuid, text, text) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.stack_contributor_add(uuid, text, text) TO authenticated;
"""
SQL_REVERSE = "DROP FUNCTION IF EXISTS public.stack_contributor_add(uuid, text, text);"


class Migration(migrations.Migration):
    dependencies = [("stylestacks", "0002_rls_and_triggers")]

    operations = [migrations.RunSQL(SQL, reverse_sql=SQL_REVERSE)]
