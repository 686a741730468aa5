"""Sessions and refresh tokens in the database (issue 16), shaped like Supabase's
``auth.sessions`` and ``auth.refresh_tokens``.

* The database owns the cascades: deleting a person deletes their sessions, deleting a
  session (sign-out, token theft) deletes its refresh tokens, whatever ran the DELETE.
* A signed-in person reads and deletes their own sessions (``/api/v1/me/sessions``) under
  RLS; nobody but the service side reads refresh tokens (RLS on, no policy, no grant).
"""

import uuid

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

SQL = """
ALTER TABLE auth.sessions
  ADD CONSTRAINT sessions_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;
ALTER TABLE auth.refresh_tokens
  ADD CONSTRAINT refresh_tokens_session_id_fkey FOREIGN KEY (session_id) REFERENCES auth.sessions (id) ON DELETE CASCADE;

ALTER TABLE auth.sessions ENABLE ROW LEVEL SECURITY;
CREATE POLICY sessions_select_own ON auth.sessions
  FOR SELECT TO authenticated USING ((SELECT auth.uid()) = user_id);
CREATE POLICY sessions_delete_own ON auth.sessions
  FOR DELETE TO authenticated USING ((SELECT auth.uid()) = user_id);
GRANT SELECT, DELETE ON auth.sessions TO authenticated;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth.sessions TO service_role;

ALTER TABLE auth.refresh_tokens ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth.refresh_tokens TO service_role;
GRANT USAGE ON SEQUENCE auth.refresh_tokens_id_seq TO service_role;
"""

SQL_REVERSE = """
REVOKE ALL ON auth.refresh_tokens FROM anon, authenticated, service_role;
REVOKE ALL ON SEQUENCE auth.refresh_tokens_id_seq FROM service_role;
ALTER TABLE auth.refresh_tokens DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON auth.sessions FROM anon, authenticated, service_role;
DROP POLICY IF EXISTS sessions_delete_own ON auth.sessions;
DROP POLICY IF EXISTS sessions_select_own ON auth.sessions;
ALTER TABLE auth.sessions DISABLE ROW LEVEL SECURITY;
ALTER TABLE auth.refresh_tokens DROP CONSTRAINT IF EXISTS refresh_tokens_session_id_fkey;
ALTER TABLE auth.sessions DROP CONSTRAINT IF EXISTS sessions_user_id_fkey;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0008_avatar_path"),
    ]

    operations = [
        migrations.CreateModel(
            name="Session",
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
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "updated_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                ("refreshed_at", models.DateTimeField(blank=True, null=True)),
                ("user_agent", models.CharField(blank=True, db_default="", max_length=512)),
                ("ip", models.GenericIPAddressField(blank=True, null=True)),
                ("aal", models.CharField(db_default="aal1", editable=False, max_length=8)),
                (
                    "method",
                    models.CharField(
                        choices=[
                            ("password", "Password"),
                            ("otp", "Emailed link or code"),
                            ("recovery", "Password recovery"),
                        ],
                        db_default="password",
                        max_length=16,
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="sessions",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": 'auth"."sessions',
            },
        ),
        migrations.CreateModel(
            name="RefreshToken",
            fields=[
                ("id", models.BigAutoField(primary_key=True, serialize=False)),
                ("token", models.CharField(max_length=32, unique=True)),
                ("parent", models.CharField(blank=True, db_default="", max_length=32)),
                ("revoked", models.BooleanField(db_default=False, default=False)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "updated_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "session",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="refresh_tokens",
                        to="accounts.session",
                    ),
                ),
            ],
            options={
                "db_table": 'auth"."refresh_tokens',
            },
        ),
        migrations.AddIndex(
            model_name="session",
            index=models.Index(fields=["user", "-created_at"], name="sessions_user_created_idx"),
        ),
        migrations.AddIndex(
            model_name="refreshtoken",
            index=models.Index(fields=["session", "-id"], name="refresh_tokens_session_idx"),
        ),
        migrations.RunSQL(SQL, reverse_sql=SQL_REVERSE),
    ]
