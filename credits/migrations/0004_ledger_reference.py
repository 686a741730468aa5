"""The ledger gains ``reference``: a unique key naming what a row answers for (a paid
order, an invoice, a refund of a charge), so the same outside event can never move a
balance twice — whatever retries, replays or races deliver it. credits_apply() takes it
as a seventh, optional argument."""

from django.db import migrations, models

# The six-argument function is dropped, not overloaded: with p_reference DEFAULT NULL a
# call with six or fewer arguments would match both and be ambiguous. Callers in SQL
# (the sign-up trigger, generation_create/cancel) name the function, not its signature,
# so they resolve to the new one.
CREDITS_APPLY = """
DROP FUNCTION IF EXISTS public.credits_apply(uuid, integer, text, text, uuid, uuid);
CREATE FUNCTION public.credits_apply(
  p_user_id uuid,
  p_amount integer,
  p_type text,
  p_description text DEFAULT '',
  p_generation_id uuid DEFAULT NULL,
  p_created_by uuid DEFAULT NULL,
  p_reference text DEFAULT NULL
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
  -- clock_timestamp(): two changes in one transaction still sort in the order they
  -- happened. A second row with the same reference fails on credit_tx_reference_unique
  -- and takes the balance change above with it.
  INSERT INTO public.credit_transactions (
    user_id, type, amount, balance_after, description, generation_id, created_by_id, created_at, reference)
  VALUES (
    p_user_id, p_type, p_amount, balance + p_amount, coalesce(p_description, ''), p_generation_id,
    p_created_by, pg_catalog.clock_timestamp(), p_reference)
  RETURNING * INTO entry;
  RETURN entry;
END
$$;
REVOKE ALL ON FUNCTION public.credits_apply(uuid, integer, text, text, uuid, uuid, text)
  FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.credits_apply(uuid, integer, text, text, uuid, uuid, text) TO service_role;
"""

# Back to credits 0003's function, without the reference.
CREDITS_APPLY_REVERSE = """
DROP FUNCTION IF EXISTS public.credits_apply(uuid, integer, text, text, uuid, uuid, text);
CREATE FUNCTION public.credits_apply(
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
"""


class Migration(migrations.Migration):
    dependencies = [("credits", "0003_ledger_generation_and_refunds")]

    operations = [
        migrations.AddField(
            model_name="credittransaction",
            name="reference",
            field=models.CharField(
                blank=True,
                editable=False,
                help_text="What this row answers for (an order, an invoice, a refund); unique when set.",
                max_length=200,
                null=True,
            ),
        ),
        migrations.AddConstraint(
            model_name="credittransaction",
            constraint=models.UniqueConstraint(fields=("reference",), name="credit_tx_reference_unique"),
        ),
        migrations.RunSQL(CREDITS_APPLY, reverse_sql=CREDITS_APPLY_REVERSE),
    ]
