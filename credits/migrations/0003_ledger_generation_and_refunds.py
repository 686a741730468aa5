"""The ledger gains its generation reference, the refund-once rule, the single
balance-changing function public.credits_apply() and its append-only guard."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

GENERATION_FK = """
ALTER TABLE public.credit_transactions
  ADD CONSTRAINT credit_transactions_generation_id_fkey
    FOREIGN KEY (generation_id) REFERENCES public.generations (id) ON DELETE SET NULL;
"""
GENERATION_FK_REVERSE = (
    "ALTER TABLE public.credit_transactions DROP CONSTRAINT IF EXISTS credit_transactions_generation_id_fkey;"
)

# Every change of a balance goes through this one function: it locks the profile row,
# refuses to go below zero (SQLSTATE VL402, before the CHECK constraint would), changes
# the balance and writes the ledger row with balance_after, in the caller's transaction.
# Not SECURITY DEFINER: callers need rights of their own (the owner connection,
# service_role, or a SECURITY DEFINER function that has checked who is asking). The API
# roles cannot execute it.
CREDITS_APPLY = """
CREATE OR REPLACE FUNCTION public.credits_apply(
  p_user_id uuid,
  p_amount integer,
  p_type text,
  p_description text DEFAULT '',
  p_generation_id uuid DEFAULT NULL,
  p_created_by uuid DEFAULT NULL
) RETURNS public.credit_transactions
LANGUAGE plpgsql SET search_path = ''
AS $$
DECLARE
  balance integer;
  entry public.credit_transactions;
BEGIN
  IF p_amount IS NULL OR p_amount = 0 THEN
    RAISE EXCEPTION 'A credit change needs a non-zero amount.' USING ERRCODE = 'VL422', HINT = 'amount';
  END IF;
  SELECT u.credits_balance INTO balance FROM public.users AS u WHERE u.id = p_user_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'No profile for user %.', p_user_id USING ERRCODE = 'VL404', HINT = 'user';
  END IF;
  IF balance + p_amount < 0 THEN
    RAISE EXCEPTION 'Insufficient credits: the balance is %, this needs %.', balance, -p_amount
      USING ERRCODE = 'VL402', DETAIL = pg_catalog.json_build_object('balance', balance, 'required', -p_amount)::text;
  END IF;
  UPDATE public.users SET credits_balance = balance + p_amount WHERE id = p_user_id;
  -- clock_timestamp(), not now(): two changes in one transaction (a charge, then a
  -- refund) must still sort in the order they happened. The row lock above orders
  -- concurrent changes of one balance.
  INSERT INTO public.credit_transactions (
    user_id, type, amount, balance_after, description, generation_id, created_by_id, created_at)
  VALUES (
    p_user_id, p_type, p_amount, balance + p_amount, coalesce(p_description, ''), p_generation_id,
    p_created_by, pg_catalog.clock_timestamp())
  RETURNING * INTO entry;
  RETURN entry;
END
$$;
REVOKE ALL ON FUNCTION public.credits_apply(uuid, integer, text, text, uuid, uuid) FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.credits_apply(uuid, integer, text, text, uuid, uuid) TO service_role;

-- Append-only, even for the app's own connection. Row changes that come from a
-- foreign key action (trigger depth > 1: deleting a person, or SET NULL when a staff
-- member or a generation goes) are the only exception.
CREATE OR REPLACE FUNCTION public.credit_transactions_append_only() RETURNS trigger
LANGUAGE plpgsql SET search_path = ''
AS $$
BEGIN
  IF pg_catalog.pg_trigger_depth() > 1 THEN
    RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
  END IF;
  RAISE EXCEPTION 'The credit ledger is append-only: % is not allowed.', TG_OP USING ERRCODE = 'VL409';
END
$$;
CREATE TRIGGER append_only BEFORE UPDATE OR DELETE ON public.credit_transactions
  FOR EACH ROW EXECUTE FUNCTION public.credit_transactions_append_only();
"""

CREDITS_APPLY_REVERSE = """
DROP TRIGGER IF EXISTS append_only ON public.credit_transactions;
DROP FUNCTION IF EXISTS public.credit_transactions_append_only();
DROP FUNCTION IF EXISTS public.credits_apply(uuid, integer, text, text, uuid, uuid);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("credits", "0002_ledger_rls"),
        ("generations", "0001_catalog_and_generations"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="credittransaction",
            name="generation",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="credit_transactions",
                to="generations.generation",
            ),
        ),
        migrations.AddConstraint(
            model_name="credittransaction",
            constraint=models.UniqueConstraint(
                condition=models.Q(("type", "refund")),
                fields=("generation",),
                name="credit_tx_one_refund_per_generation",
            ),
        ),
        migrations.RunSQL(GENERATION_FK, reverse_sql=GENERATION_FK_REVERSE),
        migrations.RunSQL(CREDITS_APPLY, reverse_sql=CREDITS_APPLY_REVERSE),
    ]
