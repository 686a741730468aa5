"""generation_create returns the generation's row instead of its id.

Every POST generations read the row back right after the call (a second round trip to
the server, make bench); the function has the row in hand from its INSERT … RETURNING.
Call it as ``SELECT * FROM public.generation_create(…)`` (velro.db.call_row_function).
An idempotent retry returns the first generation's row, as it returned its id. Nothing
updates a generation after its insert within the call (credits_apply writes the ledger
and the balance only), so the returned row is the stored one. Everything else is the
function of 0006, unchanged; the return type changes, so it is dropped and recreated
(with its grants).
"""

import importlib

from django.db import migrations

_0006 = importlib.import_module("generations.migrations.0006_generation_create_on_conflict")

SIGNATURE = "public.generation_create(text, text, text, jsonb, uuid, uuid, text, text, uuid, uuid, text, jsonb)"

_CHANGES = [
    (") RETURNS uuid\n", ") RETURNS public.generations\n"),
    ("  new_id uuid;\n", "  created public.generations;\n"),
    (
        """    SELECT g.id INTO new_id FROM public.generations AS g
     WHERE g.user_id = caller AND g.idempotency_key = p_idempotency_key;
    IF FOUND THEN
      RETURN new_id;  -- a retry: the first request's generation, charged once
""",
        """    SELECT g.* INTO created FROM public.generations AS g
     WHERE g.user_id = caller AND g.idempotency_key = p_idempotency_key;
    IF FOUND THEN
      RETURN created;  -- a retry: the first request's generation, charged once
""",
    ),
    (
        """  RETURNING id INTO new_id;
  IF new_id IS NULL THEN
    -- A concurrent request with the same Idempotency-Key committed first: its generation.
    SELECT g.id INTO new_id FROM public.generations AS g
     WHERE g.user_id = caller AND g.idempotency_key = p_idempotency_key;
    RETURN new_id;
""",
        """  RETURNING * INTO created;
  IF NOT FOUND THEN
    -- A concurrent request with the same Idempotency-Key committed first: its generation.
    SELECT g.* INTO created FROM public.generations AS g
     WHERE g.user_id = caller AND g.idempotency_key = p_idempotency_key;
    RETURN created;
""",
    ),
    (
        """'Generation with ' || model.display_name, new_id, caller);
  RETURN new_id;
""",
        """'Generation with ' || model.display_name, created.id, caller);
  RETURN created;
""",
    ),
]

CREATE_FUNCTION = _0006.CREATE_FUNCTION
for old, new in _CHANGES:
    assert CREATE_FUNCTION.count(old) == 1, f"0006's generation_create is not the one this migration rewrites: {old!r}"
    CREATE_FUNCTION = CREATE_FUNCTION.replace(old, new)
assert "new_id" not in CREATE_FUNCTION

DROP = f"DROP FUNCTION IF EXISTS {SIGNATURE};"


class Migration(migrations.Migration):
    dependencies = [("generations", "0006_generation_create_on_conflict")]

    operations = [migrations.RunSQL(DROP + CREATE_FUNCTION, reverse_sql=DROP + _0006.CREATE_FUNCTION)]
