"""Email flows of issue 16: tokens sent by email (``auth.one_time_tokens``), PKCE flows
(``auth.flow_state``), and GoTrue's bookkeeping columns on ``auth.users`` (emails sent,
a pending change of address, bans).

Accounts made before this migration were never asked to confirm their address (sign-up
signed them straight in): they are marked confirmed as of their creation, so turning
AUTH_EMAIL_CONFIRM on never locks them out.
"""

import uuid

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

SQL = """
ALTER TABLE auth.flow_state
  ADD CONSTRAINT flow_state_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE;
ALTER TABLE auth.one_time_tokens
  ADD CONSTRAINT one_time_tokens_user_id_fkey FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
  ADD CONSTRAINT one_time_tokens_flow_state_id_fkey
    FOREIGN KEY (flow_state_id) REFERENCES auth.flow_state (id) ON DELETE SET NULL;
CREATE INDEX one_time_tokens_flow_state_idx ON auth.one_time_tokens (flow_state_id);
ALTER TABLE auth.flow_state ENABLE ROW LEVEL SECURITY;
ALTER TABLE auth.one_time_tokens ENABLE ROW LEVEL SECURITY;
GRANT SELECT, INSERT, UPDATE, DELETE ON auth.flow_state, auth.one_time_tokens TO service_role;
"""

SQL_REVERSE = """
REVOKE ALL ON auth.flow_state, auth.one_time_tokens FROM anon, authenticated, service_role;
ALTER TABLE auth.one_time_tokens DISABLE ROW LEVEL SECURITY;
ALTER TABLE auth.flow_state DISABLE ROW LEVEL SECURITY;
DROP INDEX IF EXISTS auth.one_time_tokens_flow_state_idx;
ALTER TABLE auth.one_time_tokens DROP CONSTRAINT IF EXISTS one_time_tokens_flow_state_id_fkey;
ALTER TABLE auth.one_time_tokens DROP CONSTRAINT IF EXISTS one_time_tokens_user_id_fkey;
ALTER TABLE auth.flow_state DROP CONSTRAINT IF EXISTS flow_state_user_id_fkey;
"""

CONFIRM_EXISTING = "UPDATE auth.users SET email_confirmed_at = created_at WHERE email_confirmed_at IS NULL"


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0009_sessions"),
    ]

    operations = [
        migrations.AddField(
            model_name="user",
            name="banned_until",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="user",
            name="confirmation_sent_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="user",
            name="email_change",
            field=models.CharField(blank=True, db_default="", max_length=254, verbose_name="new email (pending)"),
        ),
        migrations.AddField(
            model_name="user",
            name="email_change_confirm_status",
            field=models.SmallIntegerField(db_default=0, default=0, editable=False),
        ),
        migrations.AddField(
            model_name="user",
            name="email_change_sent_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.AddField(
            model_name="user",
            name="recovery_sent_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.CreateModel(
            name="FlowState",
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
                ("auth_code_hash", models.CharField(blank=True, db_default="", max_length=64)),
                ("code_challenge", models.CharField(max_length=128)),
                ("code_challenge_method", models.CharField(max_length=8)),
                ("authentication_method", models.CharField(max_length=16)),
                ("auth_code_issued_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": 'auth"."flow_state',
            },
        ),
        migrations.CreateModel(
            name="OneTimeToken",
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
                    "token_type",
                    models.CharField(
                        choices=[
                            ("confirmation_token", "Sign-up confirmation"),
                            ("recovery_token", "Recovery or magic link"),
                            ("email_change_token_new", "Email change (new address)"),
                            ("email_change_token_current", "Email change (current address)"),
                        ],
                        max_length=32,
                    ),
                ),
                ("token_hash", models.CharField(max_length=64, unique=True)),
                ("relates_to", models.CharField(max_length=254)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "flow_state",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to="accounts.flowstate",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": 'auth"."one_time_tokens',
            },
        ),
        migrations.AddIndex(
            model_name="flowstate",
            index=models.Index(fields=["auth_code_hash"], name="flow_state_auth_code_idx"),
        ),
        migrations.AddConstraint(
            model_name="onetimetoken",
            constraint=models.UniqueConstraint(fields=("user", "token_type"), name="one_time_tokens_user_type_key"),
        ),
        migrations.RunSQL(SQL, reverse_sql=SQL_REVERSE),
        # Which accounts were confirmed this way cannot be told apart afterwards.
        migrations.RunSQL(CONFIRM_EXISTING, reverse_sql=migrations.RunSQL.noop),
    ]
