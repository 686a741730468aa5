"""The AI model catalog (public.ai_models) and generations (public.generations)."""

import uuid

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

# Database-level ON DELETE actions (Django 5.2 emulates them in Python only) and the
# updated_at triggers.
SQL = """
ALTER TABLE public.generations
  ADD CONSTRAINT generations_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
  ADD CONSTRAINT generations_project_id_fkey
    FOREIGN KEY (project_id) REFERENCES public.projects (id) ON DELETE SET NULL,
  ADD CONSTRAINT generations_parent_id_fkey
    FOREIGN KEY (parent_id) REFERENCES public.generations (id) ON DELETE SET NULL;

CREATE TRIGGER set_updated_at BEFORE UPDATE ON public.ai_models
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON public.generations
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
"""
SQL_REVERSE = """
DROP TRIGGER IF EXISTS set_updated_at ON public.generations;
DROP TRIGGER IF EXISTS set_updated_at ON public.ai_models;
ALTER TABLE public.generations
  DROP CONSTRAINT IF EXISTS generations_user_id_fkey,
  DROP CONSTRAINT IF EXISTS generations_project_id_fkey,
  DROP CONSTRAINT IF EXISTS generations_parent_id_fkey;
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("projects", "0001_projects"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="AIModel",
            fields=[
                ("id", models.CharField(max_length=200, primary_key=True, serialize=False)),
                (
                    "provider",
                    models.CharField(
                        choices=[("local", "Local renderer (no network)"), ("fal", "fal.ai queue API")],
                        default="local",
                        max_length=20,
                    ),
                ),
                ("display_name", models.CharField(max_length=120)),
                ("description", models.CharField(blank=True, default="", max_length=500)),
                ("kind", models.CharField(choices=[("image", "Image"), ("video", "Video")], max_length=10)),
                ("credits_cost", models.PositiveIntegerField()),
                ("max_prompt_length", models.PositiveIntegerField(default=2000)),
                ("parameter_schema", models.JSONField(blank=True, default=dict)),
                ("prompt_guide", models.JSONField(blank=True, default=dict)),
                ("supports_lora", models.BooleanField(default=False)),
                ("supports_negative_prompt", models.BooleanField(default=False)),
                ("supports_reference_image", models.BooleanField(default=False)),
                ("is_active", models.BooleanField(default=True)),
                ("sort_order", models.IntegerField(default=0)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "updated_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
            ],
            options={
                "verbose_name": "AI model",
                "db_table": "ai_models",
                "ordering": ["sort_order", "id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("is_active", True)),
                        fields=["sort_order", "id"],
                        name="ai_models_active_idx",
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("kind__in", ["image", "video"])), name="ai_models_kind_valid"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("credits_cost__gt", 0)), name="ai_models_credits_cost_positive"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("max_prompt_length__gte", 1), ("max_prompt_length__lte", 10000)),
                        name="ai_models_max_prompt_length_range",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="Generation",
            fields=[
                (
                    "id",
                    models.UUIDField(
                        db_default=django.contrib.postgres.functions.RandomUUID(),
                        default=uuid.uuid4,
                        editable=False,
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("prompt", models.TextField()),
                ("negative_prompt", models.TextField(blank=True, db_default="")),
                ("parameters", models.JSONField(blank=True, default=dict)),
                (
                    "reference_image",
                    models.FileField(blank=True, db_default="", max_length=300, upload_to="references/%Y/%m/"),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("processing", "Processing"),
                            ("completed", "Completed"),
                            ("failed", "Failed"),
                            ("cancelled", "Cancelled"),
                        ],
                        db_default="pending",
                        default="pending",
                        max_length=12,
                    ),
                ),
                ("credits_charged", models.PositiveIntegerField(db_default=0, default=0)),
                (
                    "outputs",
                    models.JSONField(blank=True, db_default=models.Value([], models.JSONField()), default=list),
                ),
                ("error_message", models.TextField(blank=True, db_default="")),
                ("provider_request_id", models.CharField(blank=True, db_default="", max_length=200)),
                ("attempts", models.PositiveIntegerField(db_default=0, default=0)),
                ("is_favorite", models.BooleanField(db_default=False, default=False)),
                ("idempotency_key", models.CharField(blank=True, max_length=100, null=True)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("completed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "updated_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "ai_model",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="generations",
                        to="generations.aimodel",
                    ),
                ),
                (
                    "parent",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="children",
                        to="generations.generation",
                    ),
                ),
                (
                    "project",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="generations",
                        to="projects.project",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="generations",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "generations",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(fields=["user", "-created_at", "-id"], name="generations_user_created_idx"),
                    models.Index(
                        condition=models.Q(("status", "pending")), fields=["created_at"], name="generations_pending_idx"
                    ),
                    models.Index(
                        condition=models.Q(("status", "processing")),
                        fields=["started_at"],
                        name="generations_processing_idx",
                    ),
                    models.Index(
                        condition=models.Q(("provider_request_id", ""), _negated=True),
                        fields=["provider_request_id"],
                        name="generations_provider_req_idx",
                    ),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("status__in", ["pending", "processing", "completed", "failed", "cancelled"])
                        ),
                        name="generations_status_valid",
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("idempotency_key__isnull", False)),
                        fields=("user", "idempotency_key"),
                        name="generations_user_idempotency_key",
                    ),
                ],
            },
        ),
        migrations.RunSQL(SQL, reverse_sql=SQL_REVERSE),
    ]
