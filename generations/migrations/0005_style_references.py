"""Generations remember the style stack or preset they were made with and the prompt
actually sent; the usage counters follow by trigger; generation_create learns styles."""

import importlib

import django.db.models.deletion
from django.db import migrations, models

_0002 = importlib.import_module("generations.migrations.0002_rls_and_functions")

FKS = """
ALTER TABLE public.generations
  ADD CONSTRAINT generations_style_stack_id_fkey
    FOREIGN KEY (style_stack_id) REFERENCES public.style_stacks (id) ON DELETE SET NULL,
  ADD CONSTRAINT generations_preset_id_fkey
    FOREIGN KEY (preset_id) REFERENCES public.style_stack_presets (id) ON DELETE SET NULL;
"""
FKS_REVERSE = """
ALTER TABLE public.generations
  DROP CONSTRAINT IF EXISTS generations_style_stack_id_fkey,
  DROP CONSTRAINT IF EXISTS generations_preset_id_fkey;
"""

# Usage counters, by the database. SECURITY DEFINER: the caller has no grant on the
# counters (and, under RLS, a caller-rights trigger would update nothing). Each UPDATE
# names exactly one row by its primary key.
USAGE = """
CREATE OR REPLACE FUNCTION public.generations_count_style_usage() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
BEGIN
  IF NEW.style_stack_id IS NOT NULL THEN
    UPDATE public.style_stacks
       SET usage_count = usage_count + 1, last_used_at = pg_catalog.now()
     WHERE id = NEW.style_stack_id;
  END IF;
  IF NEW.preset_id IS NOT NULL THEN
    UPDATE public.style_stack_presets
       SET usage_count = usage_count + 1, last_used_at = pg_catalog.now()
     WHERE id = NEW.preset_id;
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.generations_count_style_usage() FROM PUBLIC, anon, authenticated;
CREATE TRIGGER count_style_usage AFTER INSERT ON public.generations
  FOR EACH ROW WHEN (NEW.style_stack_id IS NOT NULL OR NEW.preset_id IS NOT NULL)
  EXECUTE FUNCTION public.generations_count_style_usage();
"""
USAGE_REVERSE = """
DROP TRIGGER IF EXISTS count_style_usage ON public.generations;
DROP FUNCTION IF EXISTS public.generations_count_style_usage();
"""

# generation_create gains the style: the stack must be visible to the caller (own,
# shared, public or unlisted), the preset active. The composed prompt and parameters
# come from the service (stylestacks.compose); cost and owner still come from the
# catalog and auth.uid().
CREATE_FUNCTION = """
DROP FUNCTION IF EXISTS public.generation_create(text, text, text, jsonb, uuid, uuid, text, text);
CREATE OR REPLACE FUNCTION public.generation_create(
  p_ai_model_id text,
  p_prompt text,
  p_negative_prompt text DEFAULT '',
  p_parameters jsonb DEFAULT '{}',
  p_project_id uuid DEFAULT NULL,
  p_parent_id uuid DEFAULT NULL,
  p_reference_image text DEFAULT '',
  p_idempotency_key text DEFAULT NULL,
  p_style_stack_id uuid DEFAULT NULL,
  p_preset_id uuid DEFAULT NULL,
  p_adapted_prompt text DEFAULT '',
  p_adaptation jsonb DEFAULT '{}'
) RETURNS uuid
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  caller uuid := auth.uid();
  model public.ai_models;
  new_id uuid;
BEGIN
  IF caller IS NULL THEN
    RAISE EXCEPTION 'Sign in to create generations.' USING ERRCODE = 'VL401';
  END IF;
  IF p_idempotency_key IS NOT NULL THEN
    SELECT g.id INTO new_id FROM public.generations AS g
     WHERE g.user_id = caller AND g.idempotency_key = p_idempotency_key;
    IF FOUND THEN
      RETURN new_id;  -- a retry: the first request's generation, charged once
    END IF;
  END IF;

  SELECT * INTO model FROM public.ai_models AS m WHERE m.id = p_ai_model_id;
  IF NOT FOUND OR NOT model.is_active THEN
    RAISE EXCEPTION 'This model does not exist or is not available.' USING ERRCODE = 'VL422', HINT = 'ai_model';
  END IF;
  IF p_prompt IS NULL OR pg_catalog.btrim(p_prompt) = '' THEN
    RAISE EXCEPTION 'A prompt is required.' USING ERRCODE = 'VL422', HINT = 'prompt';
  END IF;
  IF pg_catalog.char_length(p_prompt) > model.max_prompt_length
     OR pg_catalog.char_length(coalesce(p_adapted_prompt, '')) > model.max_prompt_length THEN
    RAISE EXCEPTION 'The prompt is longer than this model accepts (% characters).', model.max_prompt_length
      USING ERRCODE = 'VL422', HINT = 'prompt';
  END IF;
  IF p_project_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM public.projects AS p
     WHERE p.id = p_project_id AND p.user_id = caller AND p.archived_at IS NULL
  ) THEN
    RAISE EXCEPTION 'No such project of yours (or it is archived).' USING ERRCODE = 'VL422', HINT = 'project';
  END IF;
  IF p_parent_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM public.generations AS g WHERE g.id = p_parent_id AND g.user_id = caller
  ) THEN
    RAISE EXCEPTION 'No such generation of yours.' USING ERRCODE = 'VL422', HINT = 'parent';
  END IF;
  IF p_style_stack_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM public.style_stacks AS s
     WHERE s.id = p_style_stack_id
       AND (s.user_id = caller OR s.visibility IN ('public', 'unlisted') OR public.stack_role(s.id) IS NOT NULL)
  ) THEN
    RAISE EXCEPTION 'No such style stack.' USING ERRCODE = 'VL422', HINT = 'style_stack';
  END IF;
  IF p_preset_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM public.style_stack_presets AS p WHERE p.id = p_preset_id AND p.is_active
  ) THEN
    RAISE EXCEPTION 'No such preset.' USING ERRCODE = 'VL422', HINT = 'preset';
  END IF;

  BEGIN
    INSERT INTO public.generations (
      user_id, project_id, ai_model_id, parent_id, prompt, negative_prompt, parameters,
      reference_image, status, credits_charged, idempotency_key, style_stack_id, preset_id,
      adapted_prompt, adaptation)
    VALUES (
      caller, p_project_id, model.id, p_parent_id, p_prompt, coalesce(p_negative_prompt, ''),
      coalesce(p_parameters, '{}'), coalesce(p_reference_image, ''), 'pending', model.credits_cost,
      p_idempotency_key, p_style_stack_id, p_preset_id, coalesce(p_adapted_prompt, ''),
      coalesce(p_adaptation, '{}'))
    RETURNING id INTO new_id;
  EXCEPTION WHEN unique_violation THEN
    -- A concurrent request with the same Idempotency-Key committed first.
    SELECT g.id INTO new_id FROM public.generations AS g
     WHERE g.user_id = caller AND g.idempotency_key = p_idempotency_key;
    RETURN new_id;
  END;

  PERFORM public.credits_apply(
    caller, -model.credits_cost, 'usage', 'Generation with ' || model.display_name, new_id, caller);
  RETURN new_id;
END
$$;
REVOKE ALL ON FUNCTION public.generation_create(text, text, text, jsonb, uuid, uuid, text, text, uuid, uuid, text, jsonb)
  FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.generation_create(text, text, text, jsonb, uuid, uuid, text, text, uuid, uuid, text, jsonb)
  TO authenticated;
"""

# The reverse restores the function of 0002 (without styles).
CREATE_FUNCTION_REVERSE = (
    "DROP FUNCTION IF EXISTS public.generation_create(text, text, text, jsonb, uuid, uuid, text, text, uuid, uuid, text, jsonb);"
    + _0002.FUNCTIONS
)


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0004_webhook_deliveries"),
        ("stylestacks", "0002_rls_and_triggers"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="adaptation",
            field=models.JSONField(blank=True, db_default=models.Value({}, models.JSONField()), default=dict),
        ),
        migrations.AddField(
            model_name="generation",
            name="adapted_prompt",
            field=models.TextField(blank=True, db_default=""),
        ),
        migrations.AddField(
            model_name="generation",
            name="preset",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="generations",
                to="stylestacks.stylepreset",
            ),
        ),
        migrations.AddField(
            model_name="generation",
            name="style_stack",
            field=models.ForeignKey(
                blank=True,
                db_constraint=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="generations",
                to="stylestacks.stylestack",
            ),
        ),
        migrations.AlterField(
            model_name="generation",
            name="prompt",
            field=models.TextField(help_text="What the person typed."),
        ),
        migrations.RunSQL(FKS, reverse_sql=FKS_REVERSE),
        migrations.RunSQL(USAGE, reverse_sql=USAGE_REVERSE),
        migrations.RunSQL(CREATE_FUNCTION, reverse_sql=CREATE_FUNCTION_REVERSE),
    ]
