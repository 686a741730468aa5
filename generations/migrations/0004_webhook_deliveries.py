"""Accepted provider webhooks, to refuse replays. RLS on, no policies: only the
service side (service_role, the owner) touches it."""

import django.db.models.functions.datetime
from django.db import migrations, models

RLS = """
ALTER TABLE public.webhook_deliveries ENABLE ROW LEVEL SECURITY;
-- Says in the catalog what BYPASSRLS already allows: only the service side.
CREATE POLICY webhook_deliveries_service ON public.webhook_deliveries
  FOR ALL TO service_role USING (true) WITH CHECK (true);
GRANT SELECT, INSERT ON public.webhook_deliveries TO service_role;
GRANT USAGE ON SEQUENCE public.webhook_deliveries_id_seq TO service_role;
"""
RLS_REVERSE = """
REVOKE ALL ON SEQUENCE public.webhook_deliveries_id_seq FROM service_role;
REVOKE ALL ON public.webhook_deliveries FROM service_role;
DROP POLICY IF EXISTS webhook_deliveries_service ON public.webhook_deliveries;
ALTER TABLE public.webhook_deliveries DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0003_seed_catalog"),
    ]

    operations = [
        migrations.CreateModel(
            name="WebhookDelivery",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("provider", models.CharField(max_length=40)),
                ("signature", models.CharField(max_length=200, unique=True)),
                (
                    "received_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
            ],
            options={
                "verbose_name_plural": "webhook deliveries",
                "db_table": "webhook_deliveries",
            },
        ),
        migrations.RunSQL(RLS, reverse_sql=RLS_REVERSE),
    ]
