"""Every change of a balance, through the one database function that makes them:
public.credits_apply() locks the profile row, refuses to go below zero, changes the
balance and writes the ledger row with balance_after, in the caller's transaction."""

from django.core.exceptions import ValidationError
from django.db import transaction

from credits.models import CreditTransaction
from velro.db import call_function

MAX_CHANGE = 1_000_000


def _apply(*, user_id, amount: int, type: str, description: str = "", generation_id=None, created_by=None):
    entry_id = call_function(
        "credits_apply",
        user_id,
        amount,
        type,
        description,
        generation_id,
        created_by.pk if created_by is not None else None,
        field="id",  # credits_apply returns the new ledger row
    )
    return CreditTransaction.objects.get(pk=entry_id)


def _check_amount(amount, *, allow_negative: bool) -> None:
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise ValidationError({"amount": "Enter a whole number of credits."})
    if amount == 0 or (amount < 0 and not allow_negative):
        raise ValidationError(
            {
                "amount": "Enter a positive number of credits."
                if not allow_negative
                else "Enter a non-zero number of credits."
            }
        )
    if abs(amount) > MAX_CHANGE:
        raise ValidationError({"amount": f"At most {MAX_CHANGE:,} credits at a time."})


def _check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A reason is required."})
    return reason[:500]


@transaction.atomic
def credits_grant(*, user, amount: int, reason: str, created_by=None) -> CreditTransaction:
    """Add ``amount`` (> 0) credits to ``user``'s balance, with a ``grant`` ledger row.

    Raises ``ValidationError`` for a bad amount or a missing reason.
    """
    _check_amount(amount, allow_negative=False)
    return _apply(
        user_id=user.pk,
        amount=amount,
        type=CreditTransaction.Type.GRANT,
        description=_check_reason(reason),
        created_by=created_by,
    )


@transaction.atomic
def credits_adjust(*, user, amount: int, reason: str, created_by=None) -> CreditTransaction:
    """Correct ``user``'s balance by ``amount`` (either sign), with an ``adjustment`` row.

    Raises ``InsufficientCredits`` when a negative adjustment would take the balance
    below zero (nothing is written), ``ValidationError`` for bad input.
    """
    _check_amount(amount, allow_negative=True)
    return _apply(
        user_id=user.pk,
        amount=amount,
        type=CreditTransaction.Type.ADJUSTMENT,
        description=_check_reason(reason),
        created_by=created_by,
    )


@transaction.atomic
def credits_charge(*, user, amount: int, description: str, generation=None) -> CreditTransaction:
    """Take ``amount`` (> 0) credits for usage. Raises ``InsufficientCredits``."""
    _check_amount(amount, allow_negative=False)
    return _apply(
        user_id=user.pk,
        amount=-amount,
        type=CreditTransaction.Type.USAGE,
        description=description,
        generation_id=generation.pk if generation else None,
    )


@transaction.atomic
def credits_refund(*, generation, reason: str, created_by=None) -> CreditTransaction | None:
    """Give back what ``generation`` was charged, at most once per generation.

    Callers hold the status transition that justifies the refund (see
    generations.services); the unique index credit_tx_one_refund_per_generation makes a
    second refund impossible even so. Returns None when nothing was charged.
    """
    if generation.credits_charged <= 0:
        return None
    return _apply(
        user_id=generation.user_id,
        amount=generation.credits_charged,
        type=CreditTransaction.Type.REFUND,
        description=reason[:500],
        generation_id=generation.pk,
        created_by=created_by,
    )
