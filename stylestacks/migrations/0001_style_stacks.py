"""Style stacks, their versions and contributors, and the preset library."""

import uuid

import django.contrib.postgres.fields
import django.contrib.postgres.functions
import django.contrib.postgres.indexes
import django.contrib.postgres.search
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

# Foreign keys with database ON DELETE actions (Django 5.2 emulates them in Python
# only), updated_at triggers, the full-text search vector, and the server-owned columns
# reset on insert by the API role.
SQL = """
ALTER TABLE public.style_stacks
  ADD CONSTRAINT style_stacks_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
  ADD CONSTRAINT style_stacks_parent_id_fkey
    FOREIGN KEY (parent_id) REFERENCES public.style_stacks (id) ON DELETE SET NULL,
  ADD CONSTRAINT style_stacks_created_from_preset_id_fkey
    FOREIGN KEY (created_from_preset_id) REFERENCES public.style_stack_presets (id) ON DELETE SET NULL;
ALTER TABLE public.stack_contributors
  ADD CONSTRAINT stack_contributors_stack_id_fkey
    FOREIGN KEY (stack_id) REFERENCES public.style_stacks (id) ON DELETE CASCADE,
  ADD CONSTRAINT stack_contributors_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
  ADD CONSTRAINT stack_contributors_invited_by_id_fkey
    FOREIGN KEY (invited_by_id) REFERENCES auth.users (id) ON DELETE SET NULL;
ALTER TABLE public.style_stack_versions
  ADD CONSTRAINT style_stack_versions_stack_id_fkey
    FOREIGN KEY (stack_id) REFERENCES public.style_stacks (id) ON DELETE CASCADE,
  ADD CONSTRAINT style_stack_versions_changed_by_id_fkey
    FOREIGN KEY (changed_by_id) REFERENCES auth.users (id) ON DELETE SET NULL;

CREATE TRIGGER set_updated_at BEFORE UPDATE ON public.style_stacks
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();
CREATE TRIGGER set_updated_at BEFORE UPDATE ON public.style_stack_presets
  FOR EACH ROW EXECUTE FUNCTION public.set_updated_at();

CREATE OR REPLACE FUNCTION public.style_stacks_search() RETURNS trigger
LANGUAGE plpgsql SET search_path = ''
AS $$
BEGIN
  NEW.search_vector :=
       pg_catalog.setweight(pg_catalog.to_tsvector('english', coalesce(NEW.name, '')), 'A')
    || pg_catalog.setweight(pg_catalog.to_tsvector('english', coalesce(pg_catalog.array_to_string(NEW.tags, ' '), '')), 'B')
    || pg_catalog.setweight(pg_catalog.to_tsvector('english', coalesce(NEW.description, '')), 'C');
  RETURN NEW;
END
$$;
CREATE TRIGGER search BEFORE INSERT OR UPDATE OF name, description, tags ON public.style_stacks
  FOR EACH ROW EXECUTE FUNCTION public.style_stacks_search();

-- The API role needs an INSERT grant on every column Django lists; what the server
-- owns is reset here whatever the client sent.
CREATE OR REPLACE FUNCTION public.style_stacks_before_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path = ''
AS $$
BEGIN
  IF current_user = 'authenticated' THEN
    NEW.usage_count := 0;
    NEW.fork_count := 0;
    NEW.last_used_at := NULL;
    NEW.is_featured := false;
    NEW.is_marketplace := false;
    NEW.price_credits := 0;
  END IF;
  NEW.version := 1;
  NEW.created_at := pg_catalog.now();
  NEW.updated_at := pg_catalog.now();
  RETURN NEW;
END
$$;
CREATE TRIGGER server_columns BEFORE INSERT ON public.style_stacks
  FOR EACH ROW EXECUTE FUNCTION public.style_stacks_before_insert();

CREATE OR REPLACE FUNCTION public.stack_contributors_before_insert() RETURNS trigger
LANGUAGE plpgsql SET search_path = ''
AS $$
BEGIN
  IF current_user = 'authenticated' THEN
    NEW.invited_by_id := auth.uid();
  END IF;
  NEW.created_at := pg_catalog.now();
  RETURN NEW;
END
$$;
CREATE TRIGGER server_columns BEFORE INSERT ON public.stack_contributors
  FOR EACH ROW EXECUTE FUNCTION public.stack_contributors_before_insert();
"""

SQL_REVERSE = """
DROP TRIGGER IF EXISTS server_columns ON public.stack_contributors;
DROP FUNCTION IF EXISTS public.stack_contributors_before_insert();
DROP TRIGGER IF EXISTS server_columns ON public.style_stacks;
DROP FUNCTION IF EXISTS public.style_stacks_before_insert();
DROP TRIGGER IF EXISTS search ON public.style_stacks;
DROP FUNCTION IF EXISTS public.style_stacks_search();
DROP TRIGGER IF EXISTS set_updated_at ON public.style_stack_presets;
DROP TRIGGER IF EXISTS set_updated_at ON public.style_stacks;
ALTER TABLE public.style_stack_versions
  DROP CONSTRAINT IF EXISTS style_stack_versions_stack_id_fkey,
  DROP CONSTRAINT IF EXISTS style_stack_versions_changed_by_id_fkey;
ALTER TABLE public.stack_contributors
  DROP CONSTRAINT IF EXISTS stack_contributors_stack_id_fkey,
  DROP CONSTRAINT IF EXISTS stack_contributors_user_id_fkey,
  DROP CONSTRAINT IF EXISTS stack_contributors_invited_by_id_fkey;
ALTER TABLE public.style_stacks
  DROP CONSTRAINT IF EXISTS style_stacks_user_id_fkey,
  DROP CONSTRAINT IF EXISTS style_stacks_parent_id_fkey,
  DROP CONSTRAINT IF EXISTS style_stacks_created_from_preset_id_fkey;
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("velro", "0001_supabase_conventions"),
    ]

    operations = [
        migrations.CreateModel(
            name="StylePreset",
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
                ("slug", models.SlugField(max_length=80, unique=True)),
                ("name", models.CharField(max_length=100)),
                (
                    "category",
                    models.CharField(
                        choices=[
                            ("general", "General"),
                            ("director", "Director"),
                            ("genre", "Genre"),
                            ("technique", "Technique"),
                            ("cinematic", "Cinematic"),
                            ("photographic", "Photographic"),
                            ("artistic", "Artistic"),
                        ],
                        default="general",
                        max_length=20,
                    ),
                ),
                ("subcategory", models.CharField(blank=True, default="", max_length=50)),
                ("description", models.CharField(blank=True, default="", max_length=1000)),
                ("creator", models.CharField(default="Velro", max_length=100)),
                (
                    "style",
                    models.JSONField(
                        default=dict, help_text="The style document (schema at /api/v1/style-stacks/schema)."
                    ),
                ),
                (
                    "tags",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=40), blank=True, default=list, size=20
                    ),
                ),
                (
                    "complexity_level",
                    models.CharField(
                        choices=[
                            ("beginner", "Beginner"),
                            ("intermediate", "Intermediate"),
                            ("advanced", "Advanced"),
                            ("expert", "Expert"),
                        ],
                        default="beginner",
                        max_length=20,
                    ),
                ),
                (
                    "recommended_models",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=200), blank=True, default=list, size=None
                    ),
                ),
                ("preview_image_url", models.URLField(blank=True, default="", max_length=2048)),
                ("is_active", models.BooleanField(default=True)),
                ("is_featured", models.BooleanField(default=False)),
                ("rating", models.DecimalField(decimal_places=2, default=0, max_digits=3)),
                ("sort_order", models.IntegerField(default=0)),
                ("usage_count", models.PositiveIntegerField(db_default=0, default=0, editable=False)),
                ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True)),
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
                "db_table": "style_stack_presets",
                "ordering": ["sort_order", "name"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("is_active", True)),
                        fields=["sort_order", "name"],
                        name="presets_active_idx",
                    ),
                    django.contrib.postgres.indexes.GinIndex(fields=["tags"], name="presets_tags_gin"),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("rating__gte", 0), ("rating__lte", 5)), name="presets_rating_range"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            (
                                "category__in",
                                ["general", "director", "genre", "technique", "cinematic", "photographic", "artistic"],
                            )
                        ),
                        name="presets_category_valid",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="StyleStack",
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
                ("name", models.CharField(max_length=100)),
                ("description", models.CharField(blank=True, default="", max_length=1000)),
                (
                    "tags",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=40), blank=True, default=list, size=20
                    ),
                ),
                (
                    "category",
                    models.CharField(
                        choices=[
                            ("general", "General"),
                            ("director", "Director"),
                            ("genre", "Genre"),
                            ("technique", "Technique"),
                            ("cinematic", "Cinematic"),
                            ("photographic", "Photographic"),
                            ("artistic", "Artistic"),
                        ],
                        default="general",
                        max_length=20,
                    ),
                ),
                (
                    "visibility",
                    models.CharField(
                        choices=[
                            ("private", "Private"),
                            ("unlisted", "Unlisted (anyone with the id)"),
                            ("public", "Public"),
                        ],
                        default="private",
                        max_length=10,
                    ),
                ),
                ("is_featured", models.BooleanField(db_default=False, default=False)),
                ("is_marketplace", models.BooleanField(db_default=False, default=False)),
                ("price_credits", models.PositiveIntegerField(db_default=0, default=0)),
                ("style", models.JSONField(default=dict)),
                (
                    "compatible_models",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.CharField(max_length=200), blank=True, default=list, size=None
                    ),
                ),
                ("version", models.PositiveIntegerField(db_default=1, default=1, editable=False)),
                (
                    "created_from",
                    models.CharField(
                        choices=[("manual", "Manual"), ("preset", "Preset"), ("fork", "Fork"), ("import", "Import")],
                        default="manual",
                        max_length=10,
                    ),
                ),
                ("usage_count", models.PositiveIntegerField(db_default=0, default=0, editable=False)),
                ("fork_count", models.PositiveIntegerField(db_default=0, default=0, editable=False)),
                ("last_used_at", models.DateTimeField(blank=True, editable=False, null=True)),
                ("search_vector", django.contrib.postgres.search.SearchVectorField(editable=False, null=True)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "updated_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "created_from_preset",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="stacks",
                        to="stylestacks.stylepreset",
                    ),
                ),
                (
                    "parent",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        db_index=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="forks",
                        to="stylestacks.stylestack",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="style_stacks",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "style_stacks",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="StackContributor",
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
                (
                    "role",
                    models.CharField(
                        choices=[("viewer", "Viewer"), ("editor", "Editor")], default="viewer", max_length=10
                    ),
                ),
                ("email", models.EmailField(blank=True, default="", max_length=254)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "invited_by",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="stack_contributions",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "stack",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="contributors",
                        to="stylestacks.stylestack",
                    ),
                ),
            ],
            options={
                "db_table": "stack_contributors",
            },
        ),
        migrations.CreateModel(
            name="StyleStackVersion",
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
                ("version", models.PositiveIntegerField()),
                ("style", models.JSONField()),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "changed_by",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "stack",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="versions",
                        to="stylestacks.stylestack",
                    ),
                ),
            ],
            options={
                "db_table": "style_stack_versions",
                "ordering": ["-version"],
            },
        ),
        migrations.AddIndex(
            model_name="stylestack",
            index=models.Index(fields=["user", "-created_at"], name="style_stacks_user_idx"),
        ),
        migrations.AddIndex(
            model_name="stylestack",
            index=models.Index(fields=["parent"], name="style_stacks_parent_idx"),
        ),
        migrations.AddIndex(
            model_name="stylestack",
            index=models.Index(
                condition=models.Q(("visibility", "public")),
                fields=["-is_featured", "-usage_count"],
                name="style_stacks_explore_idx",
            ),
        ),
        migrations.AddIndex(
            model_name="stylestack",
            index=django.contrib.postgres.indexes.GinIndex(fields=["search_vector"], name="style_stacks_search_gin"),
        ),
        migrations.AddIndex(
            model_name="stylestack",
            index=django.contrib.postgres.indexes.GinIndex(fields=["tags"], name="style_stacks_tags_gin"),
        ),
        migrations.AddIndex(
            model_name="stylestack",
            index=django.contrib.postgres.indexes.GinIndex(
                fields=["style"], name="style_stacks_style_gin", opclasses=["jsonb_path_ops"]
            ),
        ),
        migrations.AddConstraint(
            model_name="stylestack",
            constraint=models.CheckConstraint(
                condition=models.Q(("visibility__in", ["private", "unlisted", "public"])),
                name="style_stacks_visibility_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="stylestack",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    ("category__in", ["general", "director", "genre", "technique", "cinematic", "photographic"])
                ),
                name="style_stacks_category_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="stylestack",
            constraint=models.CheckConstraint(
                condition=models.Q(("name", ""), _negated=True), name="style_stacks_name_not_blank"
            ),
        ),
        migrations.AddIndex(
            model_name="stackcontributor",
            index=models.Index(fields=["user"], name="stack_contributors_user_idx"),
        ),
        migrations.AddConstraint(
            model_name="stackcontributor",
            constraint=models.UniqueConstraint(fields=("stack", "user"), name="stack_contributors_stack_user_key"),
        ),
        migrations.AddConstraint(
            model_name="stackcontributor",
            constraint=models.CheckConstraint(
                condition=models.Q(("role__in", ["viewer", "editor"])), name="stack_contributors_role_valid"
            ),
        ),
        migrations.AddConstraint(
            model_name="stylestackversion",
            constraint=models.UniqueConstraint(
                fields=("stack", "version"), name="style_stack_versions_stack_version_key"
            ),
        ),
        migrations.RunSQL(SQL, reverse_sql=SQL_REVERSE),
    ]
