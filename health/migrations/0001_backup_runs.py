"""The record of backups (issue 21), held to the rules of every table in ``public``.

Only the owner (``manage.py backup``, the scheduled task, the admin) and the service side
read or write it: RLS on with one ``service_role`` policy, nothing for ``anon`` or
``authenticated`` (it names where the copies of the whole database are). Django has no
operations for RLS, policies or grants, hence RunSQL.
"""

from django.db import migrations, models

LOCKDOWN = """
ALTER TABLE public.backup_runs ENABLE ROW LEVEL SECURITY;
CREATE POLICY backup_runs_service ON public.backup_runs FOR ALL TO service_role USING (true) WITH CHECK (true);
REVOKE ALL ON public.backup_runs FROM anon, authenticated;
REVOKE ALL ON SEQUENCE public.backup_runs_id_seq FROM anon, authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON public.backup_runs TO service_role;
"""

LOCKDOWN_REVERSE = """
REVOKE ALL ON public.backup_runs FROM service_role;
DROP POLICY IF EXISTS backup_runs_service ON public.backup_runs;
ALTER TABLE public.backup_runs DISABLE ROW LEVEL SECURITY;
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        # The roles anon, authenticated and service_role.
        ("velro", "0001_supabase_conventions"),
    ]

    operations = [
        migrations.CreateModel(
            name="BackupRun",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(blank=True, db_default="", max_length=200)),
                (
                    "storage",
                    models.CharField(
                        choices=[("local", "Data folder"), ("s3", "S3 bucket"), ("file", "A file given by --output")],
                        max_length=10,
                    ),
                ),
                ("location", models.CharField(blank=True, db_default="", max_length=1000)),
                (
                    "status",
                    models.CharField(
                        choices=[("running", "Running"), ("taken", "Taken"), ("failed", "Failed")],
                        default="running",
                        max_length=10,
                    ),
                ),
                ("size", models.BigIntegerField(blank=True, null=True)),
                ("sha256", models.CharField(blank=True, db_default="", max_length=64)),
                ("row_counts", models.JSONField(blank=True, default=dict)),
                ("started_at", models.DateTimeField()),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("error", models.TextField(blank=True, db_default="")),
                ("verified_at", models.DateTimeField(blank=True, null=True)),
                ("verify_ok", models.BooleanField(blank=True, null=True)),
                ("verify_detail", models.TextField(blank=True, db_default="")),
                ("pruned_at", models.DateTimeField(blank=True, null=True)),
            ],
            options={
                "db_table": "backup_runs",
                "ordering": ["-started_at", "-id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("verify_ok", True)),
                        fields=["-finished_at"],
                        name="backup_runs_verified_idx",
                    ),
                    models.Index(fields=["-started_at", "-id"], name="backup_runs_started_idx"),
                ],
            },
        ),
        migrations.RunSQL(sql=LOCKDOWN, reverse_sql=LOCKDOWN_REVERSE),
    ]
