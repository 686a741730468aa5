"""Invites that do not reveal who has an account (issue 14, defect 8).

public.stack_contributor_add answered "No active user with this email." for an unknown
address and added a registered one: any signed-in person could test addresses against
it, through the API or a Supabase client's /rest/v1/rpc. Now it answers the same for
both. A registered address becomes a contributor as before; any other address is kept
in public.stack_invites until someone signs up with it, when the trigger
on_auth_user_created_accept_invites on auth.users turns each of its invites into a
contributor in the same transaction, whatever created the identity (the sign-up API,
the admin, createsuperuser, raw SQL).

The functions that act beyond the caller's rights live in the schema private (velro
0002): the invite (called through an invoker wrapper of the same name in public, so
Supabase's lint 0029 has no definer function to flag) and the trigger function.
"""

import importlib
import uuid

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

# The function this migration replaces, restored by its reverse (0003 never changes).
PREVIOUS_FUNCTION = importlib.import_module("stylestacks.migrations.0003_contributor_add").SQL

# Foreign keys with database ON DELETE actions (Django 5.2 emulates them in Python only):
# a stack's invites go with it; an inviter's deletion keeps the invite.
FOREIGN_KEYS = """
ALTER TABLE public.stack_invites
  ADD CONSTRAINT stack_invites_stack_id_fkey
    FOREIGN KEY (stack_id) REFERENCES public.style_stacks (id) ON DELETE CASCADE,
  ADD CONSTRAINT stack_invites_invited_by_id_fkey
    FOREIGN KEY (invited_by_id) REFERENCES auth.users (id) ON DELETE SET NULL;
"""
FOREIGN_KEYS_REVERSE = """
ALTER TABLE public.stack_invites
  DROP CONSTRAINT IF EXISTS stack_invites_invited_by_id_fkey,
  DROP CONSTRAINT IF EXISTS stack_invites_stack_id_fkey;
"""

# Row Level Security (Django has no operations for policies or grants). Only the stack's
# owner sees its pending addresses, and may withdraw them; contributors and everyone
# else see nothing. No API role inserts or updates: invites are written by
# private.stack_contributor_add alone, which checks the caller owns the stack.
RLS = """
ALTER TABLE public.stack_invites ENABLE ROW LEVEL SECURITY;
-- stack_id: stack_invites_stack_email_key leads with it.
CREATE POLICY stack_invites_select_by_owner ON public.stack_invites
  FOR SELECT TO authenticated
  USING (public.stack_role(stack_id) = 'owner');
CREATE POLICY stack_invites_delete_by_owner ON public.stack_invites
  FOR DELETE TO authenticated
  USING (public.stack_role(stack_id) = 'owner');
GRANT SELECT (id, stack_id, email, role, invited_by_id, created_at) ON public.stack_invites TO authenticated;
GRANT DELETE ON public.stack_invites TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.stack_invites TO service_role;
"""
RLS_REVERSE = """
REVOKE ALL ON public.stack_invites FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS stack_invites_delete_by_owner ON public.stack_invites;
DROP POLICY IF EXISTS stack_invites_select_by_owner ON public.stack_invites;
ALTER TABLE public.stack_invites DISABLE ROW LEVEL SECURITY;
"""

# pg_advisory_xact_lock(namespace, hashtext(address)): an invite and a sign-up of the
# same address take turns, so an invite made while that address is signing up is never
# left pending beside a registered account. The first key keeps these locks apart from
# other advisory locks (accounts/throttles.py uses 0x7E10429).
LOCK_NAMESPACE = 0x57AC_1408

# The invite, as the owner of the functions: only it may read auth.users and write
# stack_invites. Both outcomes answer the normalised address and nothing else, run the
# same statements up to the last write, and raise nothing that depends on whether the
# address is registered.
INVITE = f"""
DROP FUNCTION IF EXISTS public.stack_contributor_add(uuid, text, text);

CREATE FUNCTION private.stack_contributor_add(p_stack_id uuid, p_email text, p_role text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  address text := pg_catalog.lower(pg_catalog.btrim(p_email));
  invitee uuid;
  invitee_email text;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM public.style_stacks AS s WHERE s.id = p_stack_id AND s.user_id = auth.uid()) THEN
    RAISE EXCEPTION 'Not found.' USING ERRCODE = 'VL404';
  END IF;
  IF p_role IS NULL OR p_role NOT IN ('viewer', 'editor') THEN
    RAISE EXCEPTION 'Role must be viewer or editor.' USING ERRCODE = 'VL422', HINT = 'role';
  END IF;
  IF address IS NULL OR pg_catalog.length(address) > 254 OR address !~ '^[^@[:space:]]+@[^@[:space:]]+$' THEN
    RAISE EXCEPTION 'Enter a valid email address.' USING ERRCODE = 'VL422', HINT = 'email';
  END IF;
  -- The caller's own address: they know it is registered, so this reveals nothing.
  IF EXISTS (SELECT 1 FROM auth.users AS u WHERE u.id = auth.uid() AND pg_catalog.lower(u.email) = address) THEN
    RAISE EXCEPTION 'You own this stack already.' USING ERRCODE = 'VL422', HINT = 'email';
  END IF;

  PERFORM pg_catalog.pg_advisory_xact_lock({LOCK_NAMESPACE}, pg_catalog.hashtext(address));
  -- users_email_ci_key (lower(email)). An inactive account counts as registered: its
  -- contributor row gives nothing while it cannot sign in.
  SELECT u.id, u.email INTO invitee, invitee_email FROM auth.users AS u WHERE pg_catalog.lower(u.email) = address;
  IF FOUND THEN
    INSERT INTO public.stack_contributors (stack_id, user_id, role, email, invited_by_id, created_at)
    VALUES (p_stack_id, invitee, p_role, invitee_email, auth.uid(), pg_catalog.now())
    ON CONFLICT (stack_id, user_id) DO UPDATE SET role = EXCLUDED.role, email = EXCLUDED.email;
    -- An invite left from before the address was registered (an email change).
    DELETE FROM public.stack_invites AS i WHERE i.stack_id = p_stack_id AND i.email = address;
  ELSE
    INSERT INTO public.stack_invites AS i (stack_id, email, role, invited_by_id, created_at)
    VALUES (p_stack_id, address, p_role, auth.uid(), pg_catalog.now())
    ON CONFLICT (stack_id, email) DO UPDATE SET role = EXCLUDED.role;
  END IF;
  RETURN address;
END
$$;
REVOKE ALL ON FUNCTION private.stack_contributor_add(uuid, text, text) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION private.stack_contributor_add(uuid, text, text) TO authenticated;

-- What the API calls: runs as the caller, who may execute the private function above.
CREATE FUNCTION public.stack_contributor_add(p_stack_id uuid, p_email text, p_role text)
RETURNS text
LANGUAGE sql SECURITY INVOKER SET search_path = ''
AS $$
  SELECT private.stack_contributor_add(p_stack_id, p_email, p_role)
$$;
REVOKE ALL ON FUNCTION public.stack_contributor_add(uuid, text, text) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.stack_contributor_add(uuid, text, text) TO authenticated;
"""
INVITE_REVERSE = f"""
DROP FUNCTION IF EXISTS public.stack_contributor_add(uuid, text, text);
DROP FUNCTION IF EXISTS private.stack_contributor_add(uuid, text, text);
{PREVIOUS_FUNCTION}
"""

# AFTER INSERT on auth.users: every pending invite for the new address becomes a
# contributor row (role and inviter kept) and is removed. Beside on_auth_user_created
# (accounts 0002), which makes the profile; the two do not depend on each other.
# SECURITY DEFINER: whoever inserts the identity has no rights on either table. Nobody
# needs EXECUTE: a trigger runs its function regardless.
ACCEPT = f"""
CREATE FUNCTION private.stack_invites_accept() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  address text := pg_catalog.lower(pg_catalog.btrim(NEW.email));
BEGIN
  PERFORM pg_catalog.pg_advisory_xact_lock({LOCK_NAMESPACE}, pg_catalog.hashtext(address));
  -- stack_invites_email_idx.
  WITH accepted AS (
    DELETE FROM public.stack_invites AS i WHERE i.email = address
    RETURNING i.stack_id, i.role, i.invited_by_id
  )
  INSERT INTO public.stack_contributors (stack_id, user_id, role, email, invited_by_id, created_at)
  SELECT a.stack_id, NEW.id, a.role, NEW.email, a.invited_by_id, pg_catalog.now() FROM accepted AS a
  ON CONFLICT (stack_id, user_id) DO NOTHING;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION private.stack_invites_accept() FROM PUBLIC, anon, authenticated;

CREATE TRIGGER on_auth_user_created_accept_invites
  AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION private.stack_invites_accept();
"""
ACCEPT_REVERSE = """
DROP TRIGGER IF EXISTS on_auth_user_created_accept_invites ON auth.users;
DROP FUNCTION IF EXISTS private.stack_invites_accept();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("stylestacks", "0005_explore"),
        ("velro", "0002_private_schema"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="StackInvite",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        db_default=django.contrib.postgres.functions.RandomUUID(),
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("email", models.EmailField(max_length=254)),
                (
                    "role",
                    models.CharField(
                        choices=[("viewer", "Viewer"), ("editor", "Editor")], default="viewer", max_length=10
                    ),
                ),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "invited_by",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "stack",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="invites",
                        to="stylestacks.stylestack",
                    ),
                ),
            ],
            options={
                "db_table": "stack_invites",
                "ordering": ["created_at", "id"],
                "indexes": [models.Index(fields=["email"], name="stack_invites_email_idx")],
                "constraints": [
                    models.UniqueConstraint(fields=("stack", "email"), name="stack_invites_stack_email_key"),
                    models.CheckConstraint(
                        condition=models.Q(("role__in", ["viewer", "editor"])), name="stack_invites_role_valid"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("email", django.db.models.functions.text.Lower("email"))),
                        name="stack_invites_email_lower",
                    ),
                ],
            },
        ),
        migrations.RunSQL(FOREIGN_KEYS, reverse_sql=FOREIGN_KEYS_REVERSE),
        migrations.RunSQL(RLS, reverse_sql=RLS_REVERSE),
        migrations.RunSQL(INVITE, reverse_sql=INVITE_REVERSE),
        migrations.RunSQL(ACCEPT, reverse_sql=ACCEPT_REVERSE),
    ]
