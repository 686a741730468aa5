"""worker_heartbeats: one row per running generation worker, written by that worker
every few seconds, read by /metrics for the "no worker heartbeat" alert (README,
"Operating it: metrics and alerts"). RLS on with one service_role policy, as
webhook_deliveries: only the service side reads or writes it; no API role has a grant."""

from django.db import migrations, models

RLS = """
-- Django cannot enable RLS or write policies: the table is the service side's alone.
ALTER TABLE public.worker_heartbeats ENABLE ROW LEVEL SECURITY;
CREATE POLICY worker_heartbeats_service ON public.worker_heartbeats
  FOR ALL TO service_role USING (true) WITH CHECK (true);
REVOKE ALL ON public.worker_heartbeats FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.worker_heartbeats TO service_role;
"""
RLS_REVERSE = """
REVOKE ALL ON public.worker_heartbeats FROM service_role;
DROP POLICY IF EXISTS worker_heartbeats_service ON public.worker_heartbeats;
ALTER TABLE public.worker_heartbeats DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [("generations", "0017_provider_held_index")]

    operations = [
        migrations.CreateModel(
            name="WorkerHeartbeat",
            fields=[
                ("worker", models.CharField(help_text="host:pid", max_length=200, primary_key=True, serialize=False)),
                ("hostname", models.CharField(max_length=200)),
                ("pid", models.IntegerField()),
                ("started_at", models.DateTimeField()),
                ("seen_at", models.DateTimeField()),
                ("last_claim_at", models.DateTimeField(blank=True, null=True)),
                (
                    "claims",
                    models.BigIntegerField(default=0, help_text="Generations claimed since the worker started."),
                ),
            ],
            options={"db_table": "worker_heartbeats"},
        ),
        migrations.RunSQL(RLS, reverse_sql=RLS_REVERSE),
    ]
