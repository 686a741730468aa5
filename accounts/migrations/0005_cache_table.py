"""Django's database cache table (``CACHES`` in settings), where the rate limits of the
auth endpoints keep their counters, shared by every worker and machine.

The table is exactly what ``manage.py createcachetable`` makes (which then finds it and
does nothing). RLS on, one policy for the service side, no grants to anon or
authenticated: the app writes it as the owner, outside the RLS role switch.
"""

from django.db import migrations

TABLE = """
CREATE TABLE public.cache_entries (
    "cache_key" varchar(255) NOT NULL PRIMARY KEY,
    "value" text NOT NULL,
    "expires" timestamp with time zone NOT NULL
);
CREATE INDEX "cache_entries_expires" ON public.cache_entries ("expires");

ALTER TABLE public.cache_entries ENABLE ROW LEVEL SECURITY;
-- Says in the catalog what BYPASSRLS already allows: only the service side.
CREATE POLICY cache_entries_service ON public.cache_entries
  FOR ALL TO service_role USING (true) WITH CHECK (true);
REVOKE ALL ON public.cache_entries FROM anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.cache_entries TO service_role;
"""

TABLE_REVERSE = """
DROP TABLE IF EXISTS public.cache_entries;
"""


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_signup_bonus_via_credits_apply")]

    operations = [migrations.RunSQL(TABLE, reverse_sql=TABLE_REVERSE)]
