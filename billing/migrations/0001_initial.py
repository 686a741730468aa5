"""Billing's tables: credit packs, plans, orders, Stripe customers and events."""

import uuid

import django.contrib.postgres.functions
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("accounts", "0010_email_tokens"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="StripeCustomer",
            fields=[
                (
                    "user",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        primary_key=True,
                        related_name="stripe_customer",
                        serialize=False,
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                ("customer_id", models.CharField(max_length=100, unique=True)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
            ],
            options={
                "db_table": "billing_stripe_customers",
            },
        ),
        migrations.CreateModel(
            name="StripeEvent",
            fields=[
                ("id", models.CharField(max_length=255, primary_key=True, serialize=False)),
                ("type", models.CharField(max_length=100)),
                (
                    "outcome",
                    models.CharField(
                        choices=[
                            ("applied", "Applied"),
                            ("nothing_to_do", "Nothing to do"),
                            ("ignored", "Ignored (type not handled)"),
                        ],
                        max_length=20,
                    ),
                ),
                ("detail", models.CharField(blank=True, db_default="", max_length=500)),
                ("livemode", models.BooleanField(db_default=False, default=False)),
                (
                    "received_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
            ],
            options={
                "db_table": "billing_stripe_events",
                "ordering": ["-received_at"],
            },
        ),
        migrations.CreateModel(
            name="CreditPack",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("slug", models.SlugField(max_length=40, unique=True)),
                ("name", models.CharField(max_length=100)),
                ("credits", models.PositiveIntegerField()),
                ("price", models.PositiveIntegerField(help_text="In the currency's minor unit (cents).")),
                ("currency", models.CharField(db_default="usd", default="usd", max_length=3)),
                ("stripe_price_id", models.CharField(blank=True, db_default="", max_length=100)),
                ("active", models.BooleanField(db_default=True, default=True)),
                ("sort_order", models.IntegerField(db_default=0, default=0)),
            ],
            options={
                "db_table": "billing_credit_packs",
                "ordering": ["sort_order", "price", "id"],
                "indexes": [
                    models.Index(
                        condition=models.Q(("active", True)), fields=["sort_order"], name="credit_pack_active_idx"
                    )
                ],
                "constraints": [
                    models.CheckConstraint(condition=models.Q(("credits__gt", 0)), name="credit_pack_credits_positive"),
                    models.CheckConstraint(condition=models.Q(("price__gt", 0)), name="credit_pack_price_positive"),
                ],
            },
        ),
        migrations.CreateModel(
            name="Plan",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                (
                    "slug",
                    models.CharField(
                        choices=[("free", "Free"), ("basic", "Basic"), ("pro", "Pro")], max_length=20, unique=True
                    ),
                ),
                ("name", models.CharField(max_length=100)),
                ("monthly_price", models.PositiveIntegerField(help_text="In the currency's minor unit (cents).")),
                ("currency", models.CharField(db_default="usd", default="usd", max_length=3)),
                ("monthly_credits", models.PositiveIntegerField()),
                ("stripe_price_id", models.CharField(blank=True, db_default="", max_length=100)),
                ("active", models.BooleanField(db_default=True, default=True)),
                ("sort_order", models.IntegerField(db_default=0, default=0)),
            ],
            options={
                "db_table": "billing_plans",
                "ordering": ["sort_order", "monthly_price", "id"],
                "indexes": [
                    models.Index(condition=models.Q(("active", True)), fields=["sort_order"], name="plan_active_idx")
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("slug__in", ["free", "basic", "pro"])), name="plan_slug_valid"
                    )
                ],
            },
        ),
        migrations.CreateModel(
            name="Order",
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
                ("kind", models.CharField(choices=[("pack", "Credit pack"), ("plan", "Plan")], max_length=10)),
                (
                    "state",
                    models.CharField(
                        choices=[
                            ("pending", "Pending"),
                            ("paid", "Paid"),
                            ("failed", "Failed"),
                            ("expired", "Expired"),
                            ("refunded", "Refunded"),
                            ("partially_refunded", "Partially refunded"),
                            ("disputed", "Disputed"),
                            ("canceled", "Canceled"),
                        ],
                        db_default="pending",
                        default="pending",
                        max_length=20,
                    ),
                ),
                ("amount", models.PositiveIntegerField(help_text="In the currency's minor unit.")),
                ("currency", models.CharField(max_length=3)),
                ("credits", models.PositiveIntegerField()),
                ("credits_taken_back", models.PositiveIntegerField(db_default=0, default=0)),
                (
                    "shortfall",
                    models.PositiveIntegerField(
                        db_default=0,
                        default=0,
                        help_text="Credits a refund or dispute could not take back: already spent.",
                    ),
                ),
                ("checkout_session_id", models.CharField(blank=True, max_length=255, null=True, unique=True)),
                ("payment_intent_id", models.CharField(blank=True, db_default="", db_index=True, max_length=255)),
                ("charge_id", models.CharField(blank=True, db_default="", max_length=255)),
                ("subscription_id", models.CharField(blank=True, db_default="", db_index=True, max_length=255)),
                ("invoice_id", models.CharField(blank=True, db_default="", max_length=255)),
                (
                    "created_at",
                    models.DateTimeField(db_default=django.db.models.functions.datetime.Now(), editable=False),
                ),
                (
                    "updated_at",
                    models.DateTimeField(auto_now=True, db_default=django.db.models.functions.datetime.Now()),
                ),
                ("paid_at", models.DateTimeField(blank=True, null=True)),
                (
                    "pack",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="orders",
                        to="billing.creditpack",
                    ),
                ),
                (
                    "user",
                    models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="orders",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "plan",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="orders",
                        to="billing.plan",
                    ),
                ),
            ],
            options={
                "db_table": "billing_orders",
                "ordering": ["-created_at", "-id"],
                "indexes": [
                    models.Index(fields=["user", "-created_at", "-id"], name="billing_order_user_created_idx"),
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("kind", "pack"), ("pack__isnull", False), ("plan__isnull", True)),
                            models.Q(("kind", "plan"), ("pack__isnull", True), ("plan__isnull", False)),
                            _connector="OR",
                        ),
                        name="billing_order_kind_matches",
                    )
                ],
            },
        ),
    ]
