"""Status events of generations, for ``GET generations/events`` (Server-Sent Events).

``public.generation_events`` gets one row per status change of a generation — its
creation (``pending``) and every later change of ``status`` — written by triggers in the
same transaction as the change, and each row is announced with ``pg_notify`` on the
``velro_generation_events`` channel. The payload is the event id, owner id, generation id
and status (~150 bytes, far below NOTIFY's 8000): never the prompt or outputs, which the
stream reads as the owner under RLS. The id (bigserial) is the SSE event id, so a client
resumes with ``Last-Event-ID`` from this table.

Write cost, which ``POST generations`` pays (make bench): inserts are one statement-level
trigger over the transition table (as the stats triggers already capture it), one event
row and one NOTIFY per generation; updates are a row trigger on ``UPDATE OF status`` with
``WHEN (OLD.status IS DISTINCT FROM NEW.status)``, so a favourite, progress or any other
update never even calls the function. SECURITY DEFINER in ``private``: whoever may change
a generation records its event, without any right on the events table.

The owner reads their own events under RLS (resuming a stream); nobody writes them but
the triggers; the owner connection prunes them (generations.tasks).
"""

import django.db.models.functions.datetime
from django.conf import settings
from django.contrib.postgres.indexes import BrinIndex
from django.db import migrations, models

TRIGGERS = """
-- The owner's id; the events go with the person (generation_events_user_idx leads with it).
ALTER TABLE public.generation_events
  ADD CONSTRAINT generation_events_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;

ALTER TABLE public.generation_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY generation_events_select_own ON public.generation_events
  FOR SELECT TO authenticated
  USING ((SELECT auth.uid()) = user_id);
REVOKE ALL ON public.generation_events FROM PUBLIC, anon, authenticated, service_role;
GRANT SELECT ON public.generation_events TO authenticated;
REVOKE ALL ON SEQUENCE public.generation_events_id_seq FROM PUBLIC, anon, authenticated, service_role;

-- Created generations (statement level: one call per INSERT statement, however many rows).
CREATE OR REPLACE FUNCTION private.generation_events_inserted() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  e record;
BEGIN
  FOR e IN
    INSERT INTO public.generation_events (user_id, generation_id, status)
    SELECT user_id, id, status FROM new_rows
    RETURNING id, user_id, generation_id, status
  LOOP
    PERFORM pg_notify('velro_generation_events', json_build_object(
      'id', e.id, 'user_id', e.user_id, 'generation_id', e.generation_id, 'status', e.status)::text);
  END LOOP;
  RETURN NULL;
END
$$;

-- A change of status (the trigger's WHEN clause lets only those through).
CREATE OR REPLACE FUNCTION private.generation_status_changed() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  event_id bigint;
BEGIN
  INSERT INTO public.generation_events (user_id, generation_id, status)
  VALUES (NEW.user_id, NEW.id, NEW.status)
  RETURNING id INTO event_id;
  PERFORM pg_notify('velro_generation_events', json_build_object(
    'id', event_id, 'user_id', NEW.user_id, 'generation_id', NEW.id, 'status', NEW.status)::text);
  RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION private.generation_events_inserted() FROM PUBLIC, anon, authenticated;
REVOKE ALL ON FUNCTION private.generation_status_changed() FROM PUBLIC, anon, authenticated;

CREATE TRIGGER status_events_insert AFTER INSERT ON public.generations
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION private.generation_events_inserted();
CREATE TRIGGER status_events_update AFTER UPDATE OF status ON public.generations
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status)
  EXECUTE FUNCTION private.generation_status_changed();
"""

TRIGGERS_REVERSE = """
DROP TRIGGER IF EXISTS status_events_update ON public.generations;
DROP TRIGGER IF EXISTS status_events_insert ON public.generations;
DROP FUNCTION IF EXISTS private.generation_status_changed();
DROP FUNCTION IF EXISTS private.generation_events_inserted();
DROP POLICY IF EXISTS generation_events_select_own ON public.generation_events;
ALTER TABLE public.generation_events DROP CONSTRAINT IF EXISTS generation_events_user_id_fkey;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0018_worker_heartbeats"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="GenerationEvent",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("generation_id", models.UUIDField()),
                ("status", models.CharField(max_length=12)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "generation_events",
                "indexes": [
                    models.Index(fields=["user", "id"], name="generation_events_user_idx"),
                    BrinIndex(fields=["created_at"], name="generation_events_created_brin"),
                ],
            },
        ),
        migrations.RunSQL(TRIGGERS, reverse_sql=TRIGGERS_REVERSE),
    ]
