"""Issue 15: owners delete their finished generations, and storage used is counted.

* ``generations.storage_bytes``: bytes of the files a row points at, written by the code
  that stores them (the reference upload, the worker's outputs and thumbnails); a
  trigger adds every change to the owner's ``users.storage_bytes``, so deleting a row
  (or a person) can never leave the count behind.
* ``DELETE`` for the owner, of a generation that is finished (completed, failed,
  cancelled): a pending one is cancelled first (refunded), a processing one is the
  worker's. Its files are deleted by a task after the transaction commits.
"""

from django.db import migrations, models

SQL = """
CREATE FUNCTION private.generations_storage_bytes() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
AS $$
DECLARE
  delta bigint := CASE TG_OP
    WHEN 'INSERT' THEN NEW.storage_bytes
    WHEN 'DELETE' THEN -OLD.storage_bytes
    ELSE NEW.storage_bytes - OLD.storage_bytes END;
  owner uuid := CASE WHEN TG_OP = 'DELETE' THEN OLD.user_id ELSE NEW.user_id END;
BEGIN
  IF delta <> 0 THEN
    UPDATE public.users SET storage_bytes = storage_bytes + delta WHERE id = owner;
  END IF;
  RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION private.generations_storage_bytes() FROM PUBLIC, anon, authenticated;
CREATE TRIGGER count_storage_bytes
  AFTER INSERT OR DELETE OR UPDATE OF storage_bytes ON public.generations
  FOR EACH ROW EXECUTE FUNCTION private.generations_storage_bytes();

CREATE POLICY generations_delete_own ON public.generations
  FOR DELETE TO authenticated
  USING ((SELECT auth.uid()) = user_id AND status IN ('completed', 'failed', 'cancelled'));
GRANT DELETE ON public.generations TO authenticated;
"""

SQL_REVERSE = """
REVOKE DELETE ON public.generations FROM authenticated;
DROP POLICY IF EXISTS generations_delete_own ON public.generations;
DROP TRIGGER IF EXISTS count_storage_bytes ON public.generations;
DROP FUNCTION IF EXISTS private.generations_storage_bytes();
"""


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0010_webhook_delivery_outcome"),
        ("accounts", "0007_storage_bytes"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="storage_bytes",
            field=models.BigIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.RunSQL(SQL, reverse_sql=SQL_REVERSE),
    ]
