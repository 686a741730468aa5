"""Row Level Security on the catalog and generations, the project counter trigger, and
the two SECURITY DEFINER functions through which the API creates and cancels
generations.

The API role ``authenticated`` has no INSERT grant on generations and no grant on
status, credits_charged, outputs or the provider fields: it can create a generation
only through public.generation_create(), which takes the caller from auth.uid() (never
a parameter), reads the cost from the catalog, checks the project, and charges through
public.credits_apply() in the same transaction — all or nothing.
"""

from django.db import migrations

RLS = """
ALTER TABLE public.ai_models ENABLE ROW LEVEL SECURITY;
-- is_active: ai_models_active_idx (partial).
CREATE POLICY ai_models_select_active ON public.ai_models
  FOR SELECT TO anon, authenticated
  USING (is_active);
GRANT SELECT ON public.ai_models TO anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.ai_models TO service_role;

ALTER TABLE public.generations ENABLE ROW LEVEL SECURITY;
-- user_id: generations_user_created_idx.
CREATE POLICY generations_select_own ON public.generations
  FOR SELECT TO authenticated
  USING ((SELECT auth.uid()) = user_id);
CREATE POLICY generations_update_own ON public.generations
  FOR UPDATE TO authenticated
  USING ((SELECT auth.uid()) = user_id)
  WITH CHECK ((SELECT auth.uid()) = user_id);
GRANT SELECT ON public.generations TO authenticated;
-- The owner may only mark favourites; everything else is the service side's.
GRANT UPDATE (is_favorite) ON public.generations TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.generations TO service_role;
"""

RLS_REVERSE = """
REVOKE ALL ON public.generations FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS generations_update_own ON public.generations;
DROP POLICY IF EXISTS generations_select_own ON public.generations;
ALTER TABLE public.generations DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON public.ai_models FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS ai_models_select_active ON public.ai_models;
ALTER TABLE public.ai_models DISABLE ROW LEVEL SECURITY;
"""

# projects.generation_count, kept by the database. SECURITY DEFINER: the row may be
# written by a role with no UPDATE grant on the counter (under RLS a caller-rights
# trigger would silently update nothing).
COUNTER = """
CREATE OR REPLACE FUNCTION public.generations_count_in_project() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND OLD.project_id IS NOT DISTINCT FROM NEW.project_id THEN
    RETURN NULL;
  END IF;
  IF TG_OP IN ('UPDATE', 'DELETE') AND OLD.project_id IS NOT NULL THEN
    UPDATE public.projects SET generation_count = generation_count - 1 WHERE id = OLD.project_id;
  END IF;
  IF TG_OP IN ('INSERT', 'UPDATE') AND NEW.project_id IS NOT NULL THEN
    UPDATE public.projects SET generation_count = generation_count + 1 WHERE id = NEW.project_id;
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION public.generations_count_in_project() FROM PUBLIC, anon, authenticated;
CREATE TRIGGER count_in_project
  AFTER INSERT OR DELETE OR UPDATE OF project_id ON public.generations
  FOR EACH ROW EXECUTE FUNCTION public.generations_count_in_project();
"""

COUNTER_REVERSE = """
DROP TRIGGER IF EXISTS count_in_project ON public.generations;
DROP FUNCTION IF EXISTS public.generations_count_in_project();
"""

# Errors carry SQLSTATEs of our own (class VL, listed in velro/db_errors.py) and the
# field at fault in HINT, so the API answers with a 4xx and a field message.
FUNCTIONS = """
CREATE OR REPLACE FUNCTION public.generation_create(
  p_ai_model_id text,
  p_prompt text,
  p_negative_prompt text DEFAULT '',
  p_parameters jsonb DEFAULT '{}',
  p_project_id uuid DEFAULT NULL,
  p_parent_id uuid DEFAULT NULL,
  p_reference_image text DEFAULT '',
  p_idempotency_key text DEFAULT NULL
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
  IF pg_catalog.char_length(p_prompt) > model.max_prompt_length THEN
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

  BEGIN
    INSERT INTO public.generations (
      user_id, project_id, ai_model_id, parent_id, prompt, negative_prompt, parameters,
      reference_image, status, credits_charged, idempotency_key)
    VALUES (
      caller, p_project_id, model.id, p_parent_id, p_prompt, coalesce(p_negative_prompt, ''),
      coalesce(p_parameters, '{}'), coalesce(p_reference_image, ''), 'pending', model.credits_cost,
      p_idempotency_key)
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

CREATE OR REPLACE FUNCTION public.generation_cancel(p_generation_id uuid) RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  caller uuid := auth.uid();
  g public.generations;
BEGIN
  UPDATE public.generations
     SET status = 'cancelled', completed_at = pg_catalog.now()
   WHERE id = p_generation_id AND user_id = caller AND status = 'pending'
  RETURNING * INTO g;
  IF NOT FOUND THEN
    SELECT * INTO g FROM public.generations WHERE id = p_generation_id AND user_id = caller;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'Not found.' USING ERRCODE = 'VL404';
    END IF;
    RAISE EXCEPTION 'Only a pending generation can be cancelled; this one is %.', g.status
      USING ERRCODE = 'VL409', HINT = 'status';
  END IF;
  -- The status change above is the claim: only one caller gets here per generation,
  -- and credit_tx_one_refund_per_generation backs that up.
  IF g.credits_charged > 0 THEN
    PERFORM public.credits_apply(
      g.user_id, g.credits_charged, 'refund', 'Refund: generation cancelled', g.id, caller);
  END IF;
  RETURN g.status;
END
$$;

REVOKE ALL ON FUNCTION public.generation_create(text, text, text, jsonb, uuid, uuid, text, text) FROM PUBLIC, anon;
REVOKE ALL ON FUNCTION public.generation_cancel(uuid) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.generation_create(text, text, text, jsonb, uuid, uuid, text, text) TO authenticated;
GRANT EXECUTE ON FUNCTION public.generation_cancel(uuid) TO authenticated;
"""

FUNCTIONS_REVERSE = """
DROP FUNCTION IF EXISTS public.generation_cancel(uuid);
DROP FUNCTION IF EXISTS public.generation_create(text, text, text, jsonb, uuid, uuid, text, text);
"""


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0001_catalog_and_generations"),
        ("credits", "0003_ledger_generation_and_refunds"),
        ("projects", "0002_projects_rls"),
    ]

    operations = [
        migrations.RunSQL(RLS, reverse_sql=RLS_REVERSE),
        migrations.RunSQL(COUNTER, reverse_sql=COUNTER_REVERSE),
        migrations.RunSQL(FUNCTIONS, reverse_sql=FUNCTIONS_REVERSE),
    ]
