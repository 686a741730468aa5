import uuid

from django.conf import settings
from django.contrib.postgres.functions import RandomUUID
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.db import models
from django.db.models import F
from django.db.models.functions import Now

from velro.expressions import UTCTimestamp, words


class CreditTransaction(models.Model):
    """One row of the append-only credit ledger (``public.credit_transactions``).

    ``amount`` is signed (a grant is positive, usage negative) and ``balance_after`` is
    the profile's balance right after this row. For every user, at any time:
    balance == sum(amount) and the newest row's balance_after == balance. Rows are
    written only by the sign-up trigger and the credits service, never through the API.
    """

    class Type(models.TextChoices):
        SIGNUP_BONUS = "signup_bonus", "Sign-up bonus"
        GRANT = "grant", "Grant"
        PURCHASE = "purchase", "Purchase"
        USAGE = "usage", "Usage"
        REFUND = "refund", "Refund"
        ADJUSTMENT = "adjustment", "Adjustment"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    # The foreign keys below are created by the migration with database-level
    # ON DELETE actions (Django 5.2 cannot express them). Django is told DO_NOTHING so
    # that it leaves them to the database: the append-only trigger refuses direct
    # UPDATE/DELETE of ledger rows and lets only those foreign-key actions through.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,  # ON DELETE CASCADE in the database
        db_constraint=False,
        db_index=False,  # credit_tx_user_created_idx leads with user_id
        related_name="credit_transactions",
    )
    type = models.CharField(max_length=20, choices=Type.choices)
    amount = models.IntegerField()
    balance_after = models.IntegerField()
    generation = models.ForeignKey(
        "generations.Generation",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,  # ON DELETE SET NULL in the database
        db_constraint=False,
        related_name="credit_transactions",
    )
    description = models.CharField(max_length=500, blank=True, db_default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,  # ON DELETE SET NULL in the database
        db_constraint=False,
        related_name="+",
        help_text="The staff member or user who caused this change; empty for the system.",
    )
    # What the row answers for when an outside event caused it ("order:<id>",
    # "invoice:<in_…>", "refund:<ch_…>:<amount>"): unique, so a webhook delivered twice,
    # replayed or raced cannot move a balance twice (billing).
    reference = models.CharField(
        max_length=200,
        null=True,
        blank=True,
        editable=False,
        help_text="What this row answers for (an order, an invoice, a refund); unique when set.",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "credit_transactions"
        ordering = ["-created_at", "-id"]
        indexes = [
            # "my ledger, newest first" and the RLS policy's user_id filter.
            models.Index(fields=["user", "-created_at", "-id"], name="credit_tx_user_created_idx"),
            # The admin dashboard's credits spent and granted per day (health/dashboard.py):
            # a range scan on created_at. BRIN: the ledger is append-only in created_at
            # order, and a BRIN index cannot be taken for a person's newest-first ledger
            # page in place of credit_tx_user_created_idx.
            BrinIndex(fields=["created_at"], name="credit_tx_created_brin"),
            # The admin's changelist, newest first; on an expression so that the API's
            # per-person pages can never be planned on it (velro.expressions.UTCTimestamp).
            models.Index(UTCTimestamp("created_at").desc(), F("id").desc(), name="credit_tx_admin_order_idx"),
            # The admin's search by the words of the description.
            GinIndex(words("description"), name="credit_tx_desc_words_idx"),
            # "my ledger, of one type" (?type=refund): led by the owner, then the type, so
            # a rare type reads only its rows (credits 0007).
            models.Index(fields=["user", "type", "-created_at", "-id"], name="credit_tx_user_type_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(type__in=["signup_bonus", "grant", "purchase", "usage", "refund", "adjustment"]),
                name="credit_tx_type_valid",
            ),
            models.CheckConstraint(condition=~models.Q(amount=0), name="credit_tx_amount_non_zero"),
            models.CheckConstraint(
                condition=models.Q(balance_after__gte=0), name="credit_tx_balance_after_non_negative"
            ),
            # A failed or cancelled generation is refunded at most once, whoever races.
            models.UniqueConstraint(
                fields=["generation"],
                condition=models.Q(type="refund"),
                name="credit_tx_one_refund_per_generation",
            ),
            # One ledger row per outside event (billing's grants and take-backs).
            models.UniqueConstraint(fields=["reference"], name="credit_tx_reference_unique"),
            # At most one sign-up bonus per person, whatever races the triggers see.
            models.UniqueConstraint(
                fields=["user"],
                condition=models.Q(type="signup_bonus"),
                name="credit_tx_one_signup_bonus",
            ),
        ]

    def __str__(self):
        return f"{self.get_type_display()} {self.amount:+d} → {self.balance_after}"
