"""Identity (auth.users) and profile (public.users) tables."""

import uuid

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
import django.db.models.functions.text
from django.conf import settings
from django.db import migrations, models

import accounts.models

# Database-level ON DELETE CASCADE (Django 5.2 emulates cascades in Python only): a
# profile disappears with its identity however the identity is deleted.
PROFILE_FK = """
ALTER TABLE public.users
  ADD CONSTRAINT users_id_fkey FOREIGN KEY (id) REFERENCES auth.users (id) ON DELETE CASCADE
    DEFERRABLE INITIALLY IMMEDIATE;
"""
PROFILE_FK_REVERSE = "ALTER TABLE public.users DROP CONSTRAINT IF EXISTS users_id_fkey;"

UPDATED_AT = """
CREATE TRIGGER set_updated_at BEFORE UPDATE ON auth.users
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON public.users
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
"""
UPDATED_AT_REVERSE = """
DROP TRIGGER IF EXISTS set_updated_at ON public.users;
DROP TRIGGER IF EXISTS set_updated_at ON auth.users;
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("velro", "0001_supabase_conventions"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.CreateModel(
            name="User",
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
                ("email", models.EmailField(max_length=254, unique=True, verbose_name="email")),
                (
                    "password",
                    models.CharField(
                        db_column="encrypted_password", db_default="", max_length=128, verbose_name="password"
                    ),
                ),
                (
                    "last_login",
                    models.DateTimeField(
                        blank=True, db_column="last_sign_in_at", null=True, verbose_name="last sign-in"
                    ),
                ),
                (
                    "raw_user_meta_data",
                    models.JSONField(blank=True, db_default=models.Value({}, models.JSONField()), default=dict),
                ),
                (
                    "raw_app_meta_data",
                    models.JSONField(blank=True, db_default=models.Value({}, models.JSONField()), default=dict),
                ),
                ("is_staff", models.BooleanField(db_default=False, default=False)),
                ("is_superuser", models.BooleanField(db_default=False, default=False)),
                ("is_active", models.BooleanField(db_default=True, default=True)),
                ("email_confirmed_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "updated_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "groups",
                    models.ManyToManyField(
                        blank=True,
                        help_text="The groups this user belongs to. A user will get all permissions granted to each of their groups.",
                        related_name="user_set",
                        related_query_name="user",
                        to="auth.group",
                        verbose_name="groups",
                    ),
                ),
                (
                    "user_permissions",
                    models.ManyToManyField(
                        blank=True,
                        help_text="Specific permissions for this user.",
                        related_name="user_set",
                        related_query_name="user",
                        to="auth.permission",
                        verbose_name="user permissions",
                    ),
                ),
            ],
            options={
                "verbose_name": "user",
                "verbose_name_plural": "users",
                "db_table": 'auth"."users',
            },
            managers=[
                ("objects", accounts.models.UserManager()),
            ],
        ),
        migrations.CreateModel(
            name="Profile",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        db_column="id",
                        db_constraint=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="profile",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("email", models.EmailField(max_length=254)),
                ("full_name", models.CharField(blank=True, db_default="", max_length=255)),
                ("avatar_url", models.URLField(blank=True, db_default="", max_length=2048)),
                ("credits_balance", models.IntegerField(db_default=0, default=0)),
                (
                    "current_plan",
                    models.CharField(
                        choices=[("free", "Free"), ("basic", "Basic"), ("pro", "Pro"), ("enterprise", "Enterprise")],
                        db_default="free",
                        default="free",
                        max_length=20,
                    ),
                ),
                ("is_active", models.BooleanField(db_default=True, default=True)),
                (
                    "metadata",
                    models.JSONField(blank=True, db_default=models.Value({}, models.JSONField()), default=dict),
                ),
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
                "db_table": 'public"."users',
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("credits_balance__gte", 0)),
                        name="users_credits_balance_non_negative",
                        violation_error_message="The credit balance cannot go below zero.",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("current_plan__in", ["free", "basic", "pro", "enterprise"])),
                        name="users_current_plan_valid",
                    ),
                ],
            },
        ),
        migrations.AddConstraint(
            model_name="user",
            constraint=models.UniqueConstraint(
                django.db.models.functions.text.Lower("email"),
                name="users_email_ci_key",
                violation_error_message="A user with this email already exists.",
            ),
        ),
        migrations.RunSQL(PROFILE_FK, reverse_sql=PROFILE_FK_REVERSE),
        migrations.RunSQL(UPDATED_AT, reverse_sql=UPDATED_AT_REVERSE),
    ]
