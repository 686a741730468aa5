"""Keep public.users in sync with auth.users, whatever wrote the identity.

Triggers rather than Django signals: the sign-up API, the admin, createsuperuser and a
raw SQL INSERT all get the same profile, bonus and ledger row, in the same transaction.
"""

from django.conf import settings
from django.db import migrations

SIGNUP_BONUS = settings.SIGNUP_BONUS_CREDITS

SYNC = f"""
-- Name and avatar as derived from an identity's metadata. Pure helpers, used by both
-- triggers so the insert and update rules cannot drift apart. Truncated to the
-- profile's column sizes: an oversized name must never block a sign-up.
CREATE OR REPLACE FUNCTION public.user_display_name(meta jsonb, email text) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = ''
AS $$
  SELECT pg_catalog.left(coalesce(
    nullif(pg_catalog.btrim(meta ->> 'full_name'), ''),
    nullif(pg_catalog.btrim(meta ->> 'name'), ''),
    nullif(pg_catalog.btrim(meta ->> 'display_name'), ''),
    pg_catalog.split_part(email, '@', 1)
  ), 255)
$$;

CREATE OR REPLACE FUNCTION public.user_avatar_url(meta jsonb) RETURNS text
LANGUAGE sql IMMUTABLE SET search_path = ''
AS $$
  SELECT pg_catalog.left(coalesce(
    nullif(pg_catalog.btrim(meta ->> 'avatar_url'), ''),
    nullif(pg_catalog.btrim(meta ->> 'picture'), ''),
    ''
  ), 2048)
$$;

-- AFTER INSERT on auth.users: create the profile and give the sign-up bonus once.
-- * UPSERT: a profile that already exists (a retry, a profile made first) is updated,
--   never duplicated, and the insert never fails because of it.
-- * The bonus is written only if the person has none yet, under a lock on the profile
--   row; the partial unique index credit_tx_one_signup_bonus backs that up.
-- * SECURITY DEFINER: the identity may be inserted by a role with no rights on
--   public.users or the ledger.
CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  bonus constant integer := {SIGNUP_BONUS};
  meta jsonb := CASE WHEN jsonb_typeof(NEW.raw_user_meta_data) = 'object'
                     THEN NEW.raw_user_meta_data ELSE '{{}}'::jsonb END;
  balance integer;
BEGIN
  INSERT INTO public.users AS p (id, email, full_name, avatar_url, is_active, metadata)
  VALUES (NEW.id, NEW.email, public.user_display_name(meta, NEW.email),
          public.user_avatar_url(meta), NEW.is_active, meta)
  ON CONFLICT (id) DO UPDATE
    SET email = EXCLUDED.email, is_active = EXCLUDED.is_active;

  SELECT p.credits_balance INTO balance FROM public.users AS p WHERE p.id = NEW.id FOR UPDATE;

  IF NOT EXISTS (SELECT 1 FROM public.credit_transactions AS t
                 WHERE t.user_id = NEW.id AND t.type = 'signup_bonus') THEN
    INSERT INTO public.credit_transactions (user_id, type, amount, balance_after, description)
    VALUES (NEW.id, 'signup_bonus', bonus, balance + bonus, 'Sign-up bonus');
    UPDATE public.users SET credits_balance = balance + bonus WHERE id = NEW.id;
  END IF;
  RETURN NULL;
END
$$;

-- AFTER UPDATE on auth.users: carry email, is_active and metadata changes into the
-- profile. Never touches credits or plan.
-- The name rule: full_name (and avatar_url) follow the identity's metadata only while
-- the profile still shows what the identity's previous metadata gave. Once the person
-- has set their own name (PATCH /api/v1/me), identity changes leave it alone.
-- Metadata: the identity's keys are merged over the profile's (identity wins).
CREATE OR REPLACE FUNCTION public.handle_updated_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  old_meta jsonb := CASE WHEN jsonb_typeof(OLD.raw_user_meta_data) = 'object'
                         THEN OLD.raw_user_meta_data ELSE '{{}}'::jsonb END;
  new_meta jsonb := CASE WHEN jsonb_typeof(NEW.raw_user_meta_data) = 'object'
                         THEN NEW.raw_user_meta_data ELSE '{{}}'::jsonb END;
BEGIN
  UPDATE public.users AS p SET
    email = NEW.email,
    is_active = NEW.is_active,
    full_name = CASE
      WHEN p.full_name = public.user_display_name(old_meta, OLD.email)
      THEN public.user_display_name(new_meta, NEW.email) ELSE p.full_name END,
    avatar_url = CASE
      WHEN p.avatar_url = public.user_avatar_url(old_meta)
      THEN public.user_avatar_url(new_meta) ELSE p.avatar_url END,
    metadata = CASE
      WHEN jsonb_typeof(p.metadata) = 'object' THEN p.metadata || new_meta ELSE new_meta END
  WHERE p.id = NEW.id;
  RETURN NULL;
END
$$;

-- SECURITY DEFINER functions are executable by PUBLIC by default; nobody needs to
-- call these directly (triggers run them regardless of EXECUTE rights).
REVOKE ALL ON FUNCTION public.handle_new_user() FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION public.handle_updated_user() FROM PUBLIC, anon, authenticated;

CREATE TRIGGER on_auth_user_created
  AFTER INSERT ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.handle_new_user();

-- Only when something the profile mirrors changed: a sign-in (last_sign_in_at) or a
-- password change does not touch the profile.
CREATE TRIGGER on_auth_user_updated
  AFTER UPDATE ON auth.users
  FOR EACH ROW
  WHEN (OLD.email IS DISTINCT FROM NEW.email
        OR OLD.raw_user_meta_data IS DISTINCT FROM NEW.raw_user_meta_data
        OR OLD.is_active IS DISTINCT FROM NEW.is_active)
  EXECUTE FUNCTION public.handle_updated_user();
"""

SYNC_REVERSE = """
DROP TRIGGER IF EXISTS on_auth_user_updated ON auth.users;
DROP TRIGGER IF EXISTS on_auth_user_created ON auth.users;
DROP FUNCTION IF EXISTS public.handle_updated_user();
DROP FUNCTION IF EXISTS public.handle_new_user();
DROP FUNCTION IF EXISTS public.user_avatar_url(jsonb);
DROP FUNCTION IF EXISTS public.user_display_name(jsonb, text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("credits", "0001_ledger"),
    ]

    operations = [
        migrations.RunSQL(SYNC, reverse_sql=SYNC_REVERSE),
    ]
