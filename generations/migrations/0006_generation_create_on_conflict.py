"""generation_create without a subtransaction on every call.

Its INSERT ran inside ``BEGIN … EXCEPTION WHEN unique_violation`` to catch a concurrent
request with the same Idempotency-Key. A PL/pgSQL exception block starts a
subtransaction on every call, keys or not: measurable on the hottest write of the API
(make bench, POST generations). ``INSERT … ON CONFLICT (user_id, idempotency_key) WHERE
idempotency_key IS NOT NULL DO NOTHING`` does the same without one: it waits for a
concurrent insert of the same key to commit, then inserts nothing, and the function
returns the first generation (tests/generations/test_races.py: concurrent idempotent
creates charge once). Everything else is the function of 0005, unchanged.
"""

import importlib

from django.db import migrations

_0005 = importlib.import_module("generations.migrations.0005_style_references")

_OLD_INSERT = """  BEGIN
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
"""
_NEW_INSERT = """  INSERT INTO public.generations (
    user_id, project_id, ai_model_id, parent_id, prompt, negative_prompt, parameters,
    reference_image, status, credits_charged, idempotency_key, style_stack_id, preset_id,
    adapted_prompt, adaptation)
  VALUES (
    caller, p_project_id, model.id, p_parent_id, p_prompt, coalesce(p_negative_prompt, ''),
    coalesce(p_parameters, '{}'), coalesce(p_reference_image, ''), 'pending', model.credits_cost,
    p_idempotency_key, p_style_stack_id, p_preset_id, coalesce(p_adapted_prompt, ''),
    coalesce(p_adaptation, '{}'))
  ON CONFLICT (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
  RETURNING id INTO new_id;
  IF new_id IS NULL THEN
    -- A concurrent request with the same Idempotency-Key committed first: its generation.
    SELECT g.id INTO new_id FROM public.generations AS g
     WHERE g.user_id = caller AND g.idempotency_key = p_idempotency_key;
    RETURN new_id;
  END IF;
"""
assert _OLD_INSERT in _0005.CREATE_FUNCTION, "0005's generation_create is not the one this migration rewrites"
CREATE_FUNCTION = _0005.CREATE_FUNCTION.replace(_OLD_INSERT, _NEW_INSERT)


class Migration(migrations.Migration):
    dependencies = [("generations", "0005_style_references")]

    operations = [migrations.RunSQL(CREATE_FUNCTION, reverse_sql=_0005.CREATE_FUNCTION)]
