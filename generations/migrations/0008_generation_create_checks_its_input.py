"""generation_create no longer trusts its caller, and moves out of the exposed schema.

* **Parameters are checked by the database.** Anyone with a direct connection as
  ``authenticated`` (as a Supabase client has) could call the function with parameters
  the API refuses (4096×4096, 1000 images) and be charged for them. The function now
  checks them against the model's ``parameter_schema`` itself (the JSON Schema keywords
  that carry limits: type, enum, const, minimum/maximum (exclusive too), multipleOf,
  min/maxLength, pattern, properties, required, additionalProperties, items,
  min/maxItems, min/maxProperties), with a VL422 naming ``parameters``. The API's
  jsonschema check stays, for friendlier messages.
* **A project cannot be deleted under a generation being created in it.** The project
  is checked ``FOR KEY SHARE``: a concurrent ``projects.services.project_delete`` (which
  locks the row FOR UPDATE first) either waits for this create and then archives the
  project, or wins, and this create finds no project (a clean 400), never an orphan.
* **The Idempotency-Key remembers its request.** A new argument,
  ``p_request_fingerprint``, is stored with the generation; the service refuses the same
  key with another request (422).
* **Out of the exposed schema** (Supabase lint 0029): the SECURITY DEFINER halves of
  generation_create and generation_cancel live in ``private``; ``public`` keeps
  SECURITY INVOKER wrappers of the same names, which the API calls. The counter trigger
  functions move to ``private`` too (triggers follow a function by its oid).
"""

import importlib

from django.db import migrations, models

_0002 = importlib.import_module("generations.migrations.0002_rls_and_functions")
_0007 = importlib.import_module("generations.migrations.0007_generation_create_returns_the_row")

OLD_CREATE = "public.generation_create(text, text, text, jsonb, uuid, uuid, text, text, uuid, uuid, text, jsonb)"
ARGS = "text, text, text, jsonb, uuid, uuid, text, text, uuid, uuid, text, jsonb, text"

# The first way ``p_value`` breaks ``p_schema``, as "<path>: <problem>", or NULL. Only
# the keywords that set limits; others (formats, $ref …) are the API's alone. Invoker:
# reads nothing.
SCHEMA_PROBLEM = r"""
CREATE FUNCTION private.json_schema_problem(p_schema jsonb, p_value jsonb, p_path text DEFAULT '')
RETURNS text
LANGUAGE plpgsql IMMUTABLE SET search_path = ''
AS $$
DECLARE
  here text := CASE WHEN p_path = '' THEN 'parameters' ELSE p_path END;
  kind text := pg_catalog.jsonb_typeof(p_value);
  types jsonb;
  num numeric;
  bound numeric;
  item record;
  problem text;
BEGIN
  IF p_schema IS NULL OR p_schema = 'true'::jsonb THEN
    RETURN NULL;
  END IF;
  IF p_schema = 'false'::jsonb THEN
    RETURN here || ': is not allowed';
  END IF;
  IF pg_catalog.jsonb_typeof(p_schema) <> 'object' THEN
    RETURN NULL;
  END IF;
  IF kind = 'number' THEN
    num := (p_value #>> '{}')::numeric;
  END IF;

  IF p_schema ? 'type' THEN
    types := CASE WHEN pg_catalog.jsonb_typeof(p_schema -> 'type') = 'array' THEN p_schema -> 'type'
                  ELSE pg_catalog.jsonb_build_array(p_schema -> 'type') END;
    IF NOT EXISTS (
      SELECT 1 FROM pg_catalog.jsonb_array_elements_text(types) AS t(name)
       WHERE t.name = kind OR (t.name = 'integer' AND kind = 'number' AND num = pg_catalog.trunc(num))
    ) THEN
      RETURN pg_catalog.format('%s: %s is not of type %s', here, p_value, types);
    END IF;
  END IF;
  IF p_schema ? 'enum' AND NOT EXISTS (
    SELECT 1 FROM pg_catalog.jsonb_array_elements(p_schema -> 'enum') AS e(value) WHERE e.value = p_value
  ) THEN
    RETURN pg_catalog.format('%s: %s is not one of %s', here, p_value, p_schema -> 'enum');
  END IF;
  IF p_schema ? 'const' AND p_schema -> 'const' <> p_value THEN
    RETURN pg_catalog.format('%s: %s was expected', here, p_schema -> 'const');
  END IF;

  IF kind = 'number' THEN
    bound := (p_schema ->> 'minimum')::numeric;
    IF num < bound THEN
      RETURN pg_catalog.format('%s: %s is less than the minimum of %s', here, num, bound);
    END IF;
    bound := (p_schema ->> 'maximum')::numeric;
    IF num > bound THEN
      RETURN pg_catalog.format('%s: %s is greater than the maximum of %s', here, num, bound);
    END IF;
    bound := (p_schema ->> 'exclusiveMinimum')::numeric;
    IF num <= bound THEN
      RETURN pg_catalog.format('%s: %s is less than or equal to the minimum of %s', here, num, bound);
    END IF;
    bound := (p_schema ->> 'exclusiveMaximum')::numeric;
    IF num >= bound THEN
      RETURN pg_catalog.format('%s: %s is greater than or equal to the maximum of %s', here, num, bound);
    END IF;
    bound := (p_schema ->> 'multipleOf')::numeric;
    IF bound > 0 AND num % bound <> 0 THEN
      RETURN pg_catalog.format('%s: %s is not a multiple of %s', here, num, bound);
    END IF;
  ELSIF kind = 'string' THEN
    IF pg_catalog.char_length(p_value #>> '{}') < (p_schema ->> 'minLength')::integer THEN
      RETURN pg_catalog.format('%s: is shorter than %s characters', here, p_schema ->> 'minLength');
    END IF;
    IF pg_catalog.char_length(p_value #>> '{}') > (p_schema ->> 'maxLength')::integer THEN
      RETURN pg_catalog.format('%s: is longer than %s characters', here, p_schema ->> 'maxLength');
    END IF;
    IF p_schema ? 'pattern' AND NOT (p_value #>> '{}') ~ (p_schema ->> 'pattern') THEN
      RETURN pg_catalog.format('%s: does not match %s', here, p_schema ->> 'pattern');
    END IF;
  ELSIF kind = 'array' THEN
    IF pg_catalog.jsonb_array_length(p_value) < (p_schema ->> 'minItems')::integer THEN
      RETURN pg_catalog.format('%s: has fewer than %s items', here, p_schema ->> 'minItems');
    END IF;
    IF pg_catalog.jsonb_array_length(p_value) > (p_schema ->> 'maxItems')::integer THEN
      RETURN pg_catalog.format('%s: has more than %s items', here, p_schema ->> 'maxItems');
    END IF;
    IF p_schema ? 'items' THEN
      FOR item IN SELECT e.value, e.n FROM pg_catalog.jsonb_array_elements(p_value) WITH ORDINALITY AS e(value, n) LOOP
        problem := private.json_schema_problem(p_schema -> 'items', item.value, here || '.' || (item.n - 1));
        IF problem IS NOT NULL THEN
          RETURN problem;
        END IF;
      END LOOP;
    END IF;
  ELSIF kind = 'object' THEN
    IF (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(p_value)) < (p_schema ->> 'minProperties')::integer THEN
      RETURN pg_catalog.format('%s: has fewer than %s properties', here, p_schema ->> 'minProperties');
    END IF;
    IF (SELECT pg_catalog.count(*) FROM pg_catalog.jsonb_object_keys(p_value)) > (p_schema ->> 'maxProperties')::integer THEN
      RETURN pg_catalog.format('%s: has more than %s properties', here, p_schema ->> 'maxProperties');
    END IF;
    IF pg_catalog.jsonb_typeof(p_schema -> 'required') = 'array' THEN
      FOR item IN SELECT r.name FROM pg_catalog.jsonb_array_elements_text(p_schema -> 'required') AS r(name) LOOP
        IF NOT p_value ? item.name THEN
          RETURN pg_catalog.format('%s: %L is a required property', here, item.name);
        END IF;
      END LOOP;
    END IF;
    FOR item IN SELECT o.key, o.value FROM pg_catalog.jsonb_each(p_value) AS o(key, value) ORDER BY o.key LOOP
      IF p_schema -> 'properties' ? item.key THEN
        problem := private.json_schema_problem(
          p_schema -> 'properties' -> item.key, item.value,
          CASE WHEN p_path = '' THEN item.key ELSE p_path || '.' || item.key END);
      ELSIF p_schema ? 'additionalProperties' THEN
        IF p_schema -> 'additionalProperties' = 'false'::jsonb THEN
          RETURN pg_catalog.format('%s: additional property %L is not allowed', here, item.key);
        END IF;
        problem := private.json_schema_problem(
          p_schema -> 'additionalProperties', item.value,
          CASE WHEN p_path = '' THEN item.key ELSE p_path || '.' || item.key END);
      ELSE
        problem := NULL;
      END IF;
      IF problem IS NOT NULL THEN
        RETURN problem;
      END IF;
    END LOOP;
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION private.json_schema_problem(jsonb, jsonb, text) FROM PUBLIC, anon, authenticated;
"""

# The arguments and defaults both functions take (the wrapper passes them through).
PARAMETERS = """  p_ai_model_id text,
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
  p_adaptation jsonb DEFAULT '{}',
  p_request_fingerprint text DEFAULT ''
"""

CREATE_FUNCTION = f"""
DROP FUNCTION IF EXISTS {OLD_CREATE};
CREATE FUNCTION private.generation_create(
{PARAMETERS}) RETURNS public.generations
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  caller uuid := auth.uid();
  model public.ai_models;
  created public.generations;
  problem text;
BEGIN
  IF caller IS NULL THEN
    RAISE EXCEPTION 'Sign in to create generations.' USING ERRCODE = 'VL401';
  END IF;
  IF p_idempotency_key IS NOT NULL THEN
    SELECT g.* INTO created FROM public.generations AS g
     WHERE g.user_id = caller AND g.idempotency_key = p_idempotency_key;
    IF FOUND THEN
      -- A retry: the first request's generation, charged once. The service compares
      -- request_fingerprint and refuses the key for another request.
      RETURN created;
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
  IF pg_catalog.jsonb_typeof(coalesce(p_parameters, '{{}}')) <> 'object' THEN
    RAISE EXCEPTION 'Parameters must be a JSON object.' USING ERRCODE = 'VL422', HINT = 'parameters';
  END IF;
  problem := private.json_schema_problem(model.parameter_schema, coalesce(p_parameters, '{{}}'));
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION '%', problem USING ERRCODE = 'VL422', HINT = 'parameters';
  END IF;
  IF p_negative_prompt IS NOT NULL AND p_negative_prompt <> '' AND NOT model.supports_negative_prompt THEN
    RAISE EXCEPTION 'This model does not take a negative prompt.' USING ERRCODE = 'VL422', HINT = 'negative_prompt';
  END IF;
  IF p_project_id IS NOT NULL THEN
    -- KEY SHARE: a concurrent project_delete (FOR UPDATE first) waits for this insert
    -- and then archives the project, or has deleted or archived it, and then this
    -- row no longer qualifies: never a generation whose project is gone.
    PERFORM 1 FROM public.projects AS p
     WHERE p.id = p_project_id AND p.user_id = caller AND p.archived_at IS NULL
       FOR KEY SHARE;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'No such project of yours (or it is archived).' USING ERRCODE = 'VL422', HINT = 'project';
    END IF;
  END IF;
  IF p_parent_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM public.generations AS g WHERE g.id = p_parent_id AND g.user_id = caller
  ) THEN
    RAISE EXCEPTION 'No such generation of yours.' USING ERRCODE = 'VL422', HINT = 'parent';
  END IF;
  IF p_style_stack_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM public.style_stacks AS s
     WHERE s.id = p_style_stack_id
       AND (s.user_id = caller OR s.visibility IN ('public', 'unlisted') OR EXISTS (
         SELECT 1 FROM public.stack_contributors AS c WHERE c.stack_id = s.id AND c.user_id = caller))
  ) THEN
    RAISE EXCEPTION 'No such style stack.' USING ERRCODE = 'VL422', HINT = 'style_stack';
  END IF;
  IF p_preset_id IS NOT NULL AND NOT EXISTS (
    SELECT 1 FROM public.style_stack_presets AS p WHERE p.id = p_preset_id AND p.is_active
  ) THEN
    RAISE EXCEPTION 'No such preset.' USING ERRCODE = 'VL422', HINT = 'preset';
  END IF;

  INSERT INTO public.generations (
    user_id, project_id, ai_model_id, parent_id, prompt, negative_prompt, parameters,
    reference_image, status, credits_charged, idempotency_key, style_stack_id, preset_id,
    adapted_prompt, adaptation, request_fingerprint)
  VALUES (
    caller, p_project_id, model.id, p_parent_id, p_prompt, coalesce(p_negative_prompt, ''),
    coalesce(p_parameters, '{{}}'), coalesce(p_reference_image, ''), 'pending', model.credits_cost,
    p_idempotency_key, p_style_stack_id, p_preset_id, coalesce(p_adapted_prompt, ''),
    coalesce(p_adaptation, '{{}}'), CASE WHEN p_idempotency_key IS NULL THEN '' ELSE coalesce(p_request_fingerprint, '') END)
  ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING * INTO created;
  IF NOT FOUND THEN
    -- A concurrent request with the same Idempotency-Key committed first: its generation.
    SELECT g.* INTO created FROM public.generations AS g
     WHERE g.user_id = caller AND g.idempotency_key = p_idempotency_key;
    RETURN created;
  END IF;

  PERFORM public.credits_apply(
    caller, -model.credits_cost, 'usage', 'Generation with ' || model.display_name, created.id, caller);
  RETURN created;
END
$$;
REVOKE ALL ON FUNCTION private.generation_create({ARGS}) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION private.generation_create({ARGS}) TO authenticated;

-- What the API (and a Supabase client) calls: the caller's own rights, so it is not a
-- SECURITY DEFINER function in the exposed schema. Same arguments and defaults.
CREATE FUNCTION public.generation_create(
{PARAMETERS}) RETURNS public.generations
LANGUAGE sql SECURITY INVOKER SET search_path = ''
AS $$
  SELECT * FROM private.generation_create(
    p_ai_model_id, p_prompt, p_negative_prompt, p_parameters, p_project_id, p_parent_id,
    p_reference_image, p_idempotency_key, p_style_stack_id, p_preset_id, p_adapted_prompt,
    p_adaptation, p_request_fingerprint);
$$;
REVOKE ALL ON FUNCTION public.generation_create({ARGS}) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.generation_create({ARGS}) TO authenticated;
"""

CREATE_FUNCTION_REVERSE = f"""
DROP FUNCTION IF EXISTS public.generation_create({ARGS});
DROP FUNCTION IF EXISTS private.generation_create({ARGS});
{_0007.CREATE_FUNCTION}
"""

# The cancel function keeps its body; only its schema changes, behind an invoker wrapper.
CANCEL = """
ALTER FUNCTION public.generation_cancel(uuid) SET SCHEMA private;
CREATE FUNCTION public.generation_cancel(p_generation_id uuid) RETURNS text
LANGUAGE sql SECURITY INVOKER SET search_path = ''
AS $$ SELECT private.generation_cancel(p_generation_id); $$;
REVOKE ALL ON FUNCTION public.generation_cancel(uuid) FROM PUBLIC, anon;
GRANT EXECUTE ON FUNCTION public.generation_cancel(uuid) TO authenticated;
ALTER FUNCTION public.generations_count_in_project() SET SCHEMA private;
ALTER FUNCTION public.generations_count_style_usage() SET SCHEMA private;
"""
CANCEL_REVERSE = """
ALTER FUNCTION private.generations_count_style_usage() SET SCHEMA public;
ALTER FUNCTION private.generations_count_in_project() SET SCHEMA public;
DROP FUNCTION IF EXISTS public.generation_cancel(uuid);
ALTER FUNCTION private.generation_cancel(uuid) SET SCHEMA public;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0007_generation_create_returns_the_row"),
        ("velro", "0002_private_schema"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="request_fingerprint",
            field=models.CharField(blank=True, db_default="", editable=False, max_length=64),
        ),
        migrations.RunSQL(
            SCHEMA_PROBLEM, reverse_sql="DROP FUNCTION IF EXISTS private.json_schema_problem(jsonb, jsonb, text);"
        ),
        migrations.RunSQL(CREATE_FUNCTION, reverse_sql=CREATE_FUNCTION_REVERSE),
        migrations.RunSQL(CANCEL, reverse_sql=CANCEL_REVERSE),
    ]
