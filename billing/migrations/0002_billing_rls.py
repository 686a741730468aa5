"""Row Level Security on billing's tables: anyone reads the active packs and plans; a
person reads their own orders and never writes one (checkout and the webhooks write as
the service side); Stripe events and customers are the service side's alone."""

from django.db import migrations

RLS = """
ALTER TABLE public.billing_credit_packs ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_plans ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_orders ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_stripe_events ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_stripe_customers ENABLE ROW LEVEL SECURITY;

-- The catalog: active rows only (credit_pack_active_idx / plan_active_idx are partial on it).
CREATE POLICY billing_credit_packs_select ON public.billing_credit_packs
  FOR SELECT TO anon, authenticated USING (active);
CREATE POLICY billing_plans_select ON public.billing_plans
  FOR SELECT TO anon, authenticated USING (active);
GRANT SELECT ON public.billing_credit_packs, public.billing_plans TO anon, authenticated;

-- A person's own orders (billing_order_user_created_idx leads with user_id). No
-- INSERT/UPDATE/DELETE grant: states and amounts are the server's.
CREATE POLICY billing_orders_select_own ON public.billing_orders
  FOR SELECT TO authenticated USING ((SELECT auth.uid()) = user_id);
GRANT SELECT ON public.billing_orders TO authenticated;

-- The service side (checkout, signed Stripe webhooks). Says in the catalog what
-- BYPASSRLS already allows.
CREATE POLICY billing_credit_packs_service ON public.billing_credit_packs
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY billing_plans_service ON public.billing_plans
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY billing_orders_service ON public.billing_orders
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY billing_stripe_events_service ON public.billing_stripe_events
  FOR ALL TO service_role USING (true) WITH CHECK (true);
CREATE POLICY billing_stripe_customers_service ON public.billing_stripe_customers
  FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT ON public.billing_credit_packs, public.billing_plans TO service_role;
GRANT SELECT, INSERT, UPDATE ON public.billing_orders, public.billing_stripe_events,
  public.billing_stripe_customers TO service_role;
"""

RLS_REVERSE = """
REVOKE ALL ON public.billing_credit_packs, public.billing_plans, public.billing_orders,
  public.billing_stripe_events, public.billing_stripe_customers FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS billing_stripe_customers_service ON public.billing_stripe_customers;
DROP POLICY IF EXISTS billing_stripe_events_service ON public.billing_stripe_events;
DROP POLICY IF EXISTS billing_orders_service ON public.billing_orders;
DROP POLICY IF EXISTS billing_plans_service ON public.billing_plans;
DROP POLICY IF EXISTS billing_credit_packs_service ON public.billing_credit_packs;
DROP POLICY IF EXISTS billing_orders_select_own ON public.billing_orders;
DROP POLICY IF EXISTS billing_plans_select ON public.billing_plans;
DROP POLICY IF EXISTS billing_credit_packs_select ON public.billing_credit_packs;
ALTER TABLE public.billing_stripe_customers DISABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_stripe_events DISABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_orders DISABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_plans DISABLE ROW LEVEL SECURITY;
ALTER TABLE public.billing_credit_packs DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial"), ("velro", "0001_supabase_conventions")]

    operations = [migrations.RunSQL(RLS, reverse_sql=RLS_REVERSE)]
