"""The sign-up bonus goes through public.credits_apply(), the one function that changes
balances, instead of its own UPDATE + INSERT. Behaviour is unchanged: one bonus per
person under a lock on the profile row, backed by credit_tx_one_signup_bonus."""

from django.conf import settings
from django.db import migrations

BODY = """
CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  bonus constant integer := {bonus};
  meta jsonb := CASE WHEN jsonb_typeof(NEW.raw_user_meta_data) = 'object'
                     THEN NEW.raw_user_meta_data ELSE '{{}}'::jsonb END;
BEGIN
  INSERT INTO public.users AS p (id, email, full_name, avatar_url, is_active, metadata)
  VALUES (NEW.id, NEW.email, public.user_display_name(meta, NEW.email),
          public.user_avatar_url(meta), NEW.is_active, meta)
  ON CONFLICT (id) DO UPDATE
    SET email = EXCLUDED.email, is_active = EXCLUDED.is_active;

  PERFORM 1 FROM public.users AS p WHERE p.id = NEW.id FOR UPDATE;
  IF NOT EXISTS (SELECT 1 FROM public.credit_transactions AS t
                 WHERE t.user_id = NEW.id AND t.type = 'signup_bonus') THEN
    PERFORM public.credits_apply(NEW.id, bonus, 'signup_bonus', 'Sign-up bonus');
  END IF;
  RETURN NULL;
END
$$;
"""

OLD_BODY = """
CREATE OR REPLACE FUNCTION public.handle_new_user() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  bonus constant integer := {bonus};
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
"""

# CREATE OR REPLACE keeps the function's ACL (EXECUTE revoked from the API roles).


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0003_profile_rls"),
        ("credits", "0003_ledger_generation_and_refunds"),
    ]

    operations = [
        migrations.RunSQL(
            BODY.format(bonus=settings.SIGNUP_BONUS_CREDITS),
            reverse_sql=OLD_BODY.format(bonus=settings.SIGNUP_BONUS_CREDITS),
        ),
    ]
