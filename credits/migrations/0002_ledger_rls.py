"""Row Level Security on the ledger: a signed-in person reads their own rows; nobody
but the owner connection writes (no INSERT/UPDATE/DELETE grant to any API role)."""

from django.db import migrations

RLS = """
ALTER TABLE public.credit_transactions ENABLE ROW LEVEL SECURITY;

-- Served by credit_tx_user_created_idx (user_id, created_at DESC, id DESC).
CREATE POLICY credit_transactions_select_own ON public.credit_transactions
  FOR SELECT TO authenticated
  USING ((SELECT auth.uid()) = user_id);

GRANT SELECT ON public.credit_transactions TO authenticated;
GRANT SELECT, INSERT ON public.credit_transactions TO service_role;
"""

RLS_REVERSE = """
REVOKE ALL ON public.credit_transactions FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS credit_transactions_select_own ON public.credit_transactions;
ALTER TABLE public.credit_transactions DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [("credits", "0001_ledger")]

    operations = [migrations.RunSQL(RLS, reverse_sql=RLS_REVERSE)]
