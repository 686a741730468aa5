"""Issue 19, submit and release: a worker submits a generation to its provider (fal) and
moves on; the row then says which provider holds the request, its URLs, when a worker
should look at it next (generations_due_idx: poll, resubmit, or finish a result a
webhook or a poll brought), the latest progress, and what the provider reported it cost.
Written by the service side only: ``authenticated`` reads them (its table-wide SELECT)
and can write none of them (its only UPDATE grant is ``is_favorite``).
"""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0012_generations_created_brin"),
        ("projects", "0002_projects_rls"),
        ("stylestacks", "0007_definer_functions_to_private"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="next_poll_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="generation",
            name="progress",
            field=models.JSONField(blank=True, db_default=models.Value({}, models.JSONField()), default=dict),
        ),
        migrations.AddField(
            model_name="generation",
            name="provider",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=20),
        ),
        migrations.AddField(
            model_name="generation",
            name="provider_cost",
            field=models.DecimalField(blank=True, decimal_places=6, editable=False, max_digits=12, null=True),
        ),
        migrations.AddField(
            model_name="generation",
            name="provider_inference_seconds",
            field=models.FloatField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="generation",
            name="provider_result",
            field=models.JSONField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="generation",
            name="provider_urls",
            field=models.JSONField(
                blank=True, db_default=models.Value({}, models.JSONField()), default=dict, editable=False
            ),
        ),
        migrations.AddField(
            model_name="generation",
            name="submitted_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(
                condition=models.Q(("status", "processing")), fields=["next_poll_at"], name="generations_due_idx"
            ),
        ),
    ]
