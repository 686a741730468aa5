"""Every change of a balance, through the one database function that makes them:
public.credits_apply() locks the profile row, refuses to go below zero, changes the
balance and writes the ledger row with balance_after, in the caller's transaction."""

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from accounts.models import Profile
from credits.models import CreditTransaction
from velro import metrics
from velro.db import call_function

MAX_CHANGE = 1_000_000


def _apply(
    *, user_id, amount: int, type: str, description: str = "", generation_id=None, created_by=None, reference=None
):
    entry_id = call_function(
        "credits_apply",
        user_id,
        amount,
        type,
        description,
        generation_id,
        created_by.pk if created_by is not None else None,
        reference,
        field="id",  # credits_apply returns the new ledger row
    )
    metrics.count_on_commit(metrics.CREDITS.labels(type), abs(amount))
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
    metrics.count_on_commit(metrics.GENERATION_REFUNDS.labels(generation.ai_model_id))
    return _apply(
        user_id=generation.user_id,
        amount=generation.credits_charged,
        type=CreditTransaction.Type.REFUND,
        description=reason[:500],
        generation_id=generation.pk,
        created_by=created_by,
    )


def _is_reference_taken(exc: IntegrityError) -> bool:
    diag = getattr(exc.__cause__, "diag", None)
    return getattr(diag, "constraint_name", None) == "credit_tx_reference_unique"


def credits_purchase(*, user_id, amount: int, reference: str, description: str) -> CreditTransaction | None:
    """Add ``amount`` (> 0) bought credits with a ``purchase`` row, once per ``reference``.

    ``reference`` names what was paid for (``order:<id>``, ``invoice:<id>``). A second
    call with the same reference — a webhook delivered twice, or racing itself in
    another transaction — writes nothing and returns None: the unique constraint
    credit_tx_reference_unique decides, so it holds across processes. Raises
    ``ValidationError`` for a bad amount.
    """
    _check_amount(amount, allow_negative=False)
    try:
        # A savepoint: the losing insert must not doom the caller's transaction.
        with transaction.atomic():
            return _apply(
                user_id=user_id,
                amount=amount,
                type=CreditTransaction.Type.PURCHASE,
                description=description[:500],
                reference=reference,
            )
    except IntegrityError as exc:
        if _is_reference_taken(exc):
            return None
        raise


@transaction.atomic
def credits_take_back(
    *, user_id, amount: int, reference: str, description: str, type: str = CreditTransaction.Type.REFUND
) -> tuple[CreditTransaction | None, int]:
    """Take back up to ``amount`` (> 0) credits (a refunded or disputed payment), once
    per ``reference``, never below zero.

    What the person has already spent cannot be taken: the balance stops at 0 and the
    rest is returned as the shortfall. Returns ``(ledger row or None, shortfall)``; the
    row is None when nothing could be taken or the reference was already used (then
    the shortfall is 0: the first call accounted for it).
    """
    _check_amount(amount, allow_negative=False)
    if CreditTransaction.objects.filter(reference=reference).exists():
        return None, 0
    # Lock the balance first (credits_apply locks the same row again): the amount taken
    # is decided on the balance no concurrent change can move.
    balance = Profile.objects.select_for_update().values_list("credits_balance", flat=True).get(pk=user_id)
    taken = min(amount, balance)
    if taken <= 0:
        return None, amount
    try:
        with transaction.atomic():
            entry = _apply(
                user_id=user_id, amount=-taken, type=type, description=description[:500], reference=reference
            )
    except IntegrityError as exc:
        if _is_reference_taken(exc):
            return None, 0
        raise
    return entry, amount - taken
