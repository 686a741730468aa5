"""Presets keep their previous style documents, as style stacks do.

``style_preset_versions`` gets a row, from the trigger keep_version on the presets, every
time a preset's ``style`` changes: the previous document, its number (counted per
preset: presets have no version column, and the UPDATE's row lock orders concurrent
changes of one preset) and who changed it. Staff-only data: RLS is on with no policy
for ``anon`` or ``authenticated``, which get no grant either; ``service_role`` reads and
writes it as it does stack versions.

Who changed it: the API caller (``auth.uid()``) or, in the admin, which runs as the
owner with no caller, the staff member named in the transaction setting
``velro.style_changed_by`` (stylestacks.services.style_change_author_set). The stacks'
keep_version learns the same fallback, so admin edits of a stack name their author too.
"""

import uuid

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

CHANGED_BY = "coalesce(auth.uid(), nullif(pg_catalog.current_setting('velro.style_changed_by', true), '')::uuid)"

# Foreign keys with database ON DELETE actions (Django emulates them in Python only),
# RLS without policies, grants, and the trigger (SECURITY DEFINER in ``private``: whoever
# may update a preset keeps its version, without any right on the versions table).
PRESET_VERSIONS = f"""
ALTER TABLE public.style_preset_versions
  ADD CONSTRAINT style_preset_versions_preset_id_fkey
    FOREIGN KEY (preset_id) REFERENCES public.style_stack_presets (id) ON DELETE CASCADE,
  ADD CONSTRAINT style_preset_versions_changed_by_id_fkey
    FOREIGN KEY (changed_by_id) REFERENCES auth.users (id) ON DELETE SET NULL;

ALTER TABLE public.style_preset_versions ENABLE ROW LEVEL SECURITY;
-- Staff-only: a policy for service_role alone (as billing's tables), none for the API roles.
CREATE POLICY style_preset_versions_service ON public.style_preset_versions
  FOR ALL TO service_role USING (true) WITH CHECK (true);
REVOKE ALL ON public.style_preset_versions FROM PUBLIC, anon, authenticated;
GRANT SELECT, INSERT ON public.style_preset_versions TO service_role;

CREATE OR REPLACE FUNCTION private.style_stack_presets_keep_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
BEGIN
  INSERT INTO public.style_preset_versions (preset_id, version, style, changed_by_id, created_at)
  SELECT OLD.id, coalesce(max(v.version), 0) + 1, OLD.style, {CHANGED_BY}, pg_catalog.now()
    FROM public.style_preset_versions AS v
   WHERE v.preset_id = OLD.id;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION private.style_stack_presets_keep_version() FROM PUBLIC, anon, authenticated;
CREATE TRIGGER keep_version AFTER UPDATE OF style ON public.style_stack_presets
  FOR EACH ROW WHEN (OLD.style IS DISTINCT FROM NEW.style)
  EXECUTE FUNCTION private.style_stack_presets_keep_version();
"""

PRESET_VERSIONS_REVERSE = """
DROP TRIGGER IF EXISTS keep_version ON public.style_stack_presets;
DROP FUNCTION IF EXISTS private.style_stack_presets_keep_version();
REVOKE ALL ON public.style_preset_versions FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS style_preset_versions_service ON public.style_preset_versions;
ALTER TABLE public.style_preset_versions DISABLE ROW LEVEL SECURITY;
ALTER TABLE public.style_preset_versions
  DROP CONSTRAINT IF EXISTS style_preset_versions_preset_id_fkey,
  DROP CONSTRAINT IF EXISTS style_preset_versions_changed_by_id_fkey;
"""


def _stack_keep_version(changed_by: str) -> str:
    """The stacks' keep_version (0002, moved to ``private`` by 0007) with ``changed_by``."""
    return f"""
CREATE OR REPLACE FUNCTION private.style_stacks_keep_version() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
BEGIN
  IF NEW.style IS DISTINCT FROM OLD.style THEN
    INSERT INTO public.style_stack_versions (stack_id, version, style, changed_by_id, created_at)
    VALUES (OLD.id, OLD.version, OLD.style, {changed_by}, pg_catalog.now());
    NEW.version := OLD.version + 1;
  ELSE
    NEW.version := OLD.version;
  END IF;
  RETURN NEW;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("stylestacks", "0007_definer_functions_to_private"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="StylePresetVersion",
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
                    "preset",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="versions",
                        to="stylestacks.stylepreset",
                    ),
                ),
            ],
            options={
                "db_table": "style_preset_versions",
                "ordering": ["-version"],
                "constraints": [
                    models.UniqueConstraint(
                        fields=("preset", "version"), name="style_preset_versions_preset_version_key"
                    )
                ],
            },
        ),
        migrations.RunSQL(PRESET_VERSIONS, reverse_sql=PRESET_VERSIONS_REVERSE),
        # CREATE OR REPLACE keeps the function's owner and (revoked) grants.
        migrations.RunSQL(_stack_keep_version(CHANGED_BY), reverse_sql=_stack_keep_version("auth.uid()")),
    ]
