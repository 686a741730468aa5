"""Every webhook delivery is recorded, refused ones too, with what became of it.

Only accepted deliveries used to be kept: a refused one (unknown generation, wrong
state, bad payload) rolled back with its request, so the same delivery replayed later —
once the generation existed or had moved on — was applied. Now each delivery id (its
signature's digest) is recorded once whatever its outcome; the service side writes the
outcome columns.
"""

from django.db import migrations, models

GRANTS = """
GRANT UPDATE (outcome, status_code, reason, generation_id) ON public.webhook_deliveries TO service_role;
"""
GRANTS_REVERSE = """
REVOKE UPDATE (outcome, status_code, reason, generation_id) ON public.webhook_deliveries FROM service_role;
"""


class Migration(migrations.Migration):
    dependencies = [("generations", "0009_parameter_defaults_within_limits")]

    operations = [
        migrations.AddField(
            model_name="webhookdelivery",
            name="outcome",
            field=models.CharField(
                choices=[("applied", "Applied"), ("refused", "Refused")], db_default="applied", max_length=10
            ),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="status_code",
            field=models.PositiveSmallIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="reason",
            field=models.CharField(blank=True, db_default="", max_length=300),
        ),
        migrations.AddField(
            model_name="webhookdelivery",
            name="generation_id",
            field=models.UUIDField(blank=True, null=True),
        ),
        migrations.RunSQL(GRANTS, reverse_sql=GRANTS_REVERSE),
    ]
