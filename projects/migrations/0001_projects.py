"""public.projects: a person's folders of generations."""

import uuid

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

# ON DELETE CASCADE in the database (Django 5.2 emulates it in Python only).
# updated_at by trigger; and on INSERT the server-owned columns are reset whatever the
# client sent (the API role needs an INSERT grant on every column Django lists).
SQL = """
ALTER TABLE public.projects
  ADD CONSTRAINT projects_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;

CREATE TRIGGER set_updated_at BEFORE UPDATE ON public.projects
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

CREATE OR REPLACE FUNCTION public.projects_before_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path = ''
AS $$
BEGIN
  NEW.generation_count := 0;
  NEW.created_at := pg_catalog.now();
  NEW.updated_at := pg_catalog.now();
  RETURN NEW;
END
$$;
CREATE TRIGGER server_columns BEFORE INSERT ON public.projects
  FOR EACH ROW EXECUTE FUNCTION public.projects_before_insert();
"""
SQL_REVERSE = """
DROP TRIGGER IF EXISTS server_columns ON public.projects;
DROP FUNCTION IF EXISTS public.projects_before_insert();
DROP TRIGGER IF EXISTS set_updated_at ON public.projects;
ALTER TABLE public.projects DROP CONSTRAINT IF EXISTS projects_user_id_fkey;
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Project",
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
                ("name", models.CharField(max_length=120)),
                ("description", models.CharField(blank=True, db_default="", max_length=500)),
                (
                    "visibility",
                    models.CharField(
                        choices=[("private", "Private"), ("public", "Public")],
                        db_default="private",
                        default="private",
                        max_length=10,
                    ),
                ),
                ("generation_count", models.IntegerField(db_default=0, default=0, editable=False)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "updated_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                ("archived_at", models.DateTimeField(blank=True, null=True)),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="projects",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "projects",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(fields=["user", "-created_at"], name="projects_user_created_idx"),
                    models.Index(
                        condition=models.Q(("visibility", "public")), fields=["-created_at"], name="projects_public_idx"
                    ),
                ],
                "constraints": [
                    models.UniqueConstraint(
                        models.F("user"),
                        django.db.models.functions.text.Lower("name"),
                        name="projects_user_name_ci_key",
                        violation_error_message="You already have a project with this name.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("visibility__in", ["private", "public"])), name="projects_visibility_valid"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("name", ""), _negated=True),
                        name="projects_name_not_blank",
                        violation_error_message="Name is required.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("generation_count__gte", 0)), name="projects_generation_count_gte_0"
                    ),
                ],
            },
        ),
        migrations.RunSQL(SQL, reverse_sql=SQL_REVERSE),
    ]
