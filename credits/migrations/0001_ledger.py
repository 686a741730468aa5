"""The append-only credit ledger, public.credit_transactions."""

import uuid

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models

# Database-level ON DELETE actions (Django 5.2 emulates them in Python only), so a raw
# SQL delete of an identity behaves like an ORM delete.
LEDGER_FKS = """
ALTER TABLE public.credit_transactions
  ADD CONSTRAINT credit_transactions_user_id_fkey
    FOREIGN KEY (user_id) REFERENCES auth.users (id) ON DELETE CASCADE,
  ADD CONSTRAINT credit_transactions_created_by_id_fkey
    FOREIGN KEY (created_by_id) REFERENCES auth.users (id) ON DELETE SET NULL;
"""
LEDGER_FKS_REVERSE = """
ALTER TABLE public.credit_transactions
  DROP CONSTRAINT IF EXISTS credit_transactions_user_id_fkey,
  DROP CONSTRAINT IF EXISTS credit_transactions_created_by_id_fkey;
"""


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="CreditTransaction",
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
                    "type",
                    models.CharField(
                        choices=[
                            ("signup_bonus", "Sign-up bonus"),
                            ("grant", "Grant"),
                            ("purchase", "Purchase"),
                            ("usage", "Usage"),
                            ("refund", "Refund"),
                            ("adjustment", "Adjustment"),
                        ],
                        max_length=20,
                    ),
                ),
                ("amount", models.IntegerField()),
                ("balance_after", models.IntegerField()),
                ("description", models.CharField(blank=True, db_default="", max_length=500)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        db_constraint=False,
                        help_text="The staff member or user who caused this change; empty for the system.",
                        null=True,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="credit_transactions",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "credit_transactions",
                "ordering": ["-created_at", "-id"],
                "indexes": [models.Index(fields=["user", "-created_at", "-id"], name="credit_tx_user_created_idx")],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            ("type__in", ["signup_bonus", "grant", "purchase", "usage", "refund", "adjustment"])
                        ),
                        name="credit_tx_type_valid",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("amount", 0), _negated=True), name="credit_tx_amount_non_zero"
                    ),
                    models.CheckConstraint(
                        condition=models.Q(("balance_after__gte", 0)), name="credit_tx_balance_after_non_negative"
                    ),
                    models.UniqueConstraint(
                        condition=models.Q(("type", "signup_bonus")),
                        fields=("user",),
                        name="credit_tx_one_signup_bonus",
                    ),
                ],
            },
        ),
        migrations.RunSQL(LEDGER_FKS, reverse_sql=LEDGER_FKS_REVERSE),
    ]
