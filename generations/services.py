"""The generation lifecycle: create (and charge), cancel, claim, complete, fail (and
refund exactly once), retry, sweep.

Creating and cancelling run as the person (under RLS) through the database functions
public.generation_create / public.generation_cancel, which charge and refund in the same
transaction. The service side (worker, webhook, admin) moves the status with
conditional updates — "UPDATE … WHERE status = <expected>" — so when two actors race,
exactly one wins and only the winner refunds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Value, When
from django.http import Http404
from django.template.defaultfilters import filesizeformat
from django.utils import timezone

from accounts.models import Profile
from credits.models import CreditTransaction
from credits.services import credits_refund
from generations.models import AIModel, Generation, WorkerHeartbeat
from generations.outputs import outputs_bytes, stored_paths
from generations.schemas import validate_parameters
from projects.models import Project
from stylestacks.compose import compose
from velro import metrics, rls
from velro.db import call_function, call_row_function
from velro.exceptions import Conflict, IdempotencyConflict, StorageQuotaExceeded
from velro.media import ImageRejected, reencode_image
from velro.storage import store
from velro.tasks import delete_media_on_commit

logger = logging.getLogger(__name__)

Status = Generation.Status


def generation_create(
    *,
    user,
    ai_model: AIModel,
    prompt: str,
    negative_prompt: str = "",
    parameters: dict | None = None,
    project: Project | None = None,
    parent: Generation | None = None,
    reference_image=None,
    idempotency_key: str | None = None,
    style_stack=None,
    preset=None,
) -> Generation:
    """Create a pending generation for ``user`` and charge the model's cost — all or
    nothing.

    Checks the model is active, the prompt fits the model, the parameters match its
    schema, the project is the user's and not archived. With a ``style_stack`` or a
    ``preset``, the prompt, negative prompt and parameters sent to the provider are
    composed from the style for this model (stylestacks.compose) and stored. With
    ``idempotency_key``, a retried call returns the first generation and charges once.

    Raises ``ValidationError`` (by field) or ``InsufficientCredits`` (nothing written).
    """
    fingerprint = ""
    if idempotency_key:
        fingerprint = _request_fingerprint(
            ai_model=ai_model,
            prompt=prompt,
            negative_prompt=negative_prompt,
            parameters=parameters,
            project=project,
            parent=parent,
            reference_image=reference_image,
            style_stack=style_stack,
            preset=preset,
        )
        existing = Generation.objects.filter(user=user, idempotency_key=idempotency_key).first()
        if existing is not None:
            return _same_request(existing, fingerprint)

    errors = {}
    if not ai_model.is_active:
        errors["ai_model"] = "This model is not available."
    if not prompt or not prompt.strip():
        errors["prompt"] = "A prompt is required."
    elif len(prompt) > ai_model.max_prompt_length:
        errors["prompt"] = f"Ensure this field has no more than {ai_model.max_prompt_length} characters."
    if negative_prompt and not ai_model.supports_negative_prompt:
        errors["negative_prompt"] = "This model does not take a negative prompt."
    if reference_image and not ai_model.supports_reference_image:
        errors["reference_image"] = "This model does not take a reference image."
    if project is not None and (project.user_id != user.pk or project.is_archived):
        errors["project"] = "No such project of yours (or it is archived)."
    if style_stack is not None and preset is not None:
        errors["preset"] = "Use a style stack or a preset, not both."
    adapted_prompt, adaptation = "", {}
    style = style_stack or preset
    try:
        if style is not None and not errors:
            result = compose(
                style.style,
                ai_model,
                prompt,
                {"parameters": parameters or {}, "negative_prompt": negative_prompt or ""},
            )
            adapted_prompt, negative_prompt, parameters = result.prompt, result.negative_prompt, result.parameters
            adaptation = {"source": "style_stack" if style_stack else "preset", "id": str(style.pk), **result.metadata}
        else:
            parameters = validate_parameters(ai_model.parameter_schema, parameters or {})
    except ValidationError as exc:
        errors.update(exc.message_dict if hasattr(exc, "error_dict") else {"style": exc.messages})
    clean = None
    if reference_image and "reference_image" not in errors:
        # Decoded once, here, within MAX_IMAGE_PIXELS and in full (velro/media.py): a
        # bomb, a truncated file or a non-image is a 400 on the field, never a 500.
        try:
            clean, decoded = reencode_image(reference_image)
        except ImageRejected as exc:
            errors["reference_image"] = exc.message
    if errors:
        raise ValidationError(errors)

    _check_storage_quota(user, len(clean) if clean is not None else 0)
    stored = ""
    if clean is not None:
        # Stored re-encoded under a generated name, its extension from the decoded
        # content: the upload's name, its client's content type, anything appended to the
        # image and its metadata (EXIF: a phone photo's GPS position) never reach storage.
        stored = store(f"references/{user.pk}/{uuid.uuid4().hex}.{decoded.extension}", clean)
    try:
        with rls.acting_as(user):
            generation = call_row_function(
                Generation,
                "generation_create",
                ai_model.pk,
                prompt,
                negative_prompt or "",
                parameters,
                project.pk if project else None,
                parent.pk if parent else None,
                stored,
                idempotency_key or None,
                style_stack.pk if style_stack else None,
                preset.pk if preset else None,
                adapted_prompt,
                adaptation,
                fingerprint,
            )
    except Exception:
        if stored:
            default_storage.delete(stored)  # nothing half-written: no orphan upload
        raise
    if stored and generation.reference_image.name != stored:
        default_storage.delete(stored)  # an idempotent retry kept the first upload
    elif stored:
        _add_storage_bytes(generation, len(clean))
    # (A request racing another with the same Idempotency-Key, which the function answers
    # with the other's row, counts it a second time: rare, and only these counters.)
    metrics.count_on_commit(metrics.GENERATIONS_CREATED.labels(generation.ai_model_id))
    metrics.count_on_commit(metrics.CREDITS.labels("usage"), generation.credits_charged)
    if idempotency_key:
        # A concurrent request with the same key may have committed first.
        return _same_request(generation, fingerprint)
    return generation


def _check_storage_quota(user, adding: int) -> None:
    """StorageQuotaExceeded when ``user``'s stored files (plus ``adding`` bytes) would
    pass MEDIA_QUOTA_BYTES (0: no quota). Checked when a generation is asked for: the
    outputs it makes may take a person past the quota, the next request is refused."""
    quota = settings.MEDIA_QUOTA_BYTES
    if not quota:
        return
    used = Profile.objects.filter(pk=user.pk).values_list("storage_bytes", flat=True).first() or 0
    if used >= quota or used + adding > quota:
        raise StorageQuotaExceeded(
            f"Your files take {filesizeformat(used)} of your {filesizeformat(quota)} storage: "
            "delete some generations to make room.",
            extra={"storage_bytes": used, "quota_bytes": quota},
        )


def _add_storage_bytes(generation: Generation, size: int) -> None:
    """Count ``size`` stored bytes on the row (and, by trigger, on its owner). Written as
    the service side: the owner has no grant on the column."""
    with rls.transaction_role(rls.ROLE_SERVICE, "") as cursor:
        cursor.execute(
            "UPDATE public.generations SET storage_bytes = storage_bytes + %s WHERE id = %s", [size, generation.pk]
        )
    generation.storage_bytes += size


@transaction.atomic
def generation_delete(*, user, generation_id) -> None:
    """Delete one of ``user``'s finished generations; its files (outputs, thumbnails,
    reference image) are deleted by a task once this transaction has committed, so no
    row ever points at a missing file (a crash in between leaves an orphan file, which
    ``media_gc`` finds). A pending one must be cancelled first (refunded); a processing
    one belongs to the worker. Someone else's is a 404, as RLS hides it."""
    with rls.acting_as(user):
        generation = Generation.objects.select_for_update().filter(pk=generation_id).first()
        if generation is None:  # gone meanwhile, or never theirs
            raise Http404("No such generation.")
        if generation.status == Status.PENDING:
            raise Conflict("The generation is pending: cancel it first (that refunds its credits).")
        if generation.status == Status.PROCESSING:
            raise Conflict("The generation is processing: wait until it finishes, or cancel it.")
        generation.delete()  # its files: generation_deleted, below
    logger.info("generation %s deleted", generation_id)


def generation_deleted(sender, instance, **kwargs) -> None:
    """post_delete of a Generation, however it goes (this API, the admin, a person's
    account deleted with everything in it): its files are deleted by a task after the
    commit (velro/tasks.py), never while the row might still be rolled back."""
    delete_media_on_commit(generation_file_names(instance))


def generation_file_names(generation) -> list[str]:
    """The storage names of every file ``generation`` points at."""
    return stored_paths(generation.outputs, getattr(generation.reference_image, "name", generation.reference_image))


def _request_fingerprint(*, ai_model, prompt, negative_prompt, parameters, project, parent, reference_image, **style):
    """SHA-256 of what a create request asked for (the reference image by content), so
    an Idempotency-Key can be held to the request it was first used with."""
    request = {
        "ai_model": ai_model.pk,
        "prompt": prompt,
        "negative_prompt": negative_prompt or "",
        "parameters": parameters or {},
        "project": project.pk if project else None,
        "parent": parent.pk if parent else None,
        **{name: value.pk if value else None for name, value in sorted(style.items())},
    }
    digest = hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode())
    if reference_image:
        for chunk in reference_image.chunks():
            digest.update(chunk)
        reference_image.seek(0)
    return digest.hexdigest()


def _same_request(generation: Generation, fingerprint: str) -> Generation:
    """The first generation of an Idempotency-Key, if this request is the same one;
    ``IdempotencyConflict`` if the key was first used with another request. (Keys used
    before fingerprints were stored have none and are taken at their word.)"""
    if generation.request_fingerprint and generation.request_fingerprint != fingerprint:
        raise IdempotencyConflict(
            "This Idempotency-Key was already used with a different request; use a new key for a new request.",
        )
    return generation


def generation_cancel(*, user, generation_id) -> Generation:
    """Cancel the user's generation and refund it: a pending one here (the database
    function), one a provider holds in its queue at the provider first
    (``generation_cancel_at_provider``). Raises Http404 for anything not theirs,
    ``Conflict`` (with the reason) when it can no longer be cancelled."""
    with rls.acting_as(user):
        generation = Generation.objects.select_related("ai_model").filter(pk=generation_id).first()
        if generation is None:
            raise Http404("No such generation.")
        if generation.status == Status.PROCESSING and generation.provider:
            generation_cancel_at_provider(generation=generation)
        else:
            call_function("generation_cancel", generation_id)
            # The function refunded in SQL (no credits_apply call here to count it).
            _count_finished(generation, Status.CANCELLED, refunded=generation.credits_charged)
    return Generation.objects.select_related("ai_model").get(pk=generation_id)


def _count_finished(generation: Generation, status: str, *, refunded: int = 0) -> None:
    """Count ``generation`` reaching ``status`` (and a refund the database made for it)
    when the transaction commits (velro/metrics.py)."""
    metrics.count_on_commit(metrics.GENERATIONS_FINISHED.labels(generation.ai_model_id, status))
    if refunded > 0:
        metrics.count_on_commit(metrics.GENERATION_REFUNDS.labels(generation.ai_model_id))
        metrics.count_on_commit(metrics.CREDITS.labels("refund"), refunded)


def generation_cancel_at_provider(*, generation: Generation) -> None:
    """Cancel a generation its provider holds: only while the provider still has it
    queued, as fal's queue itself allows (202 CANCELLATION_REQUESTED); then it is
    cancelled here and refunded, exactly once. A request the provider already runs (or
    finished) is a ``Conflict`` naming the provider's answer; so is one still being
    submitted (no request id yet). The provider call holds no lock: a webhook or a poll
    finishing it meanwhile wins the conditional update, and this is a Conflict too."""
    from generations.providers import ProviderError, provider_named

    if not generation.provider_request_id:
        raise Conflict(
            "The generation is being submitted to the provider; try again in a moment.", code="not_cancellable"
        )
    try:
        cancelled, answer = _cancel_at(provider_named(generation.provider), generation)
    except ProviderError as exc:
        raise Conflict(
            f"The provider could not be reached to cancel it ({exc}); try again.", code="not_cancellable"
        ) from exc
    if not cancelled:
        reason = "it is already running there" if answer == "IN_PROGRESS" else f"it answered {answer}"
        raise Conflict(
            f"The provider cannot cancel this generation: {reason}. It will finish (or fail, refunded) on its own.",
            code="not_cancellable",
        )
    with rls.transaction_role(rls.ROLE_SERVICE, ""):
        done = _transition(
            generation.pk,
            from_statuses=[Status.PROCESSING],
            status=Status.CANCELLED,
            completed_at=timezone.now(),
            next_poll_at=None,
            progress={"stage": "cancelled", "provider_answer": answer},
        )
        if done:
            generation.refresh_from_db()
            _count_finished(generation, Status.CANCELLED)
            credits_refund(generation=generation, reason="Refund: generation cancelled")
    if not done:
        generation.refresh_from_db()
        raise Conflict(f"The generation is {generation.status}; it was not cancelled.", code="not_cancellable")
    logger.info("generation %s cancelled at %s (%s)", generation.pk, generation.provider, answer)


def generation_set_favorite(*, generation: Generation, is_favorite: bool) -> Generation:
    generation.is_favorite = is_favorite
    generation.save(update_fields=["is_favorite"])  # the only column the owner may write
    return generation


@transaction.atomic
def generation_claim_next() -> Generation | None:
    """Claim the oldest pending generation for a worker (pending → processing).

    ``FOR UPDATE SKIP LOCKED``: workers on several machines never claim the same row and
    never wait for each other. Returns None when the queue is empty.
    """
    generation = (
        Generation.objects.select_for_update(skip_locked=True)
        .filter(status=Status.PENDING)
        .order_by("created_at")
        .first()
    )
    if generation is None:
        return None
    generation.status = Status.PROCESSING
    generation.started_at = timezone.now()
    generation.attempts += 1
    generation.save(update_fields=["status", "started_at", "attempts"])
    return Generation.objects.select_related("ai_model").get(pk=generation.pk)


def generation_release(*, generation: Generation, provider: str) -> bool:
    """A claimed generation handed to a submit-and-release ``provider``: due at once for
    a worker's submit (generations/inflight.py). False if it left processing meanwhile."""
    done = _transition(
        generation.pk,
        from_statuses=[Status.PROCESSING],
        provider=provider,
        next_poll_at=timezone.now(),
        progress={"stage": "submitting"},
    )
    if done:
        generation.provider, generation.progress = provider, {"stage": "submitting"}
    return done


@transaction.atomic
def generation_claim_due(
    *, limit: int, lease_seconds: float, finish_lease_seconds: float | None = None, exclude=()
) -> list[Generation]:
    """Up to ``limit`` in-flight generations due for a worker's attention (to submit,
    poll, or finish a result that came in), each leased for ``lease_seconds`` (one with a
    result to copy in: ``finish_lease_seconds``): its ``next_poll_at`` moves past the
    lease, so another worker (or this one) picks it up again only if nothing recorded the
    outcome by then — a worker that died. ``FOR UPDATE SKIP LOCKED``: two workers never
    take the same row."""
    if limit <= 0:
        return []
    now = timezone.now()
    ids = list(
        Generation.objects.select_for_update(skip_locked=True)
        .filter(status=Status.PROCESSING, next_poll_at__lte=now)
        .exclude(provider="")
        .exclude(pk__in=list(exclude))
        .order_by("next_poll_at")
        .values_list("pk", flat=True)[:limit]
    )
    if not ids:
        return []
    finish = finish_lease_seconds if finish_lease_seconds is not None else lease_seconds
    Generation.objects.filter(pk__in=ids).update(
        next_poll_at=Case(
            When(provider_result__isnull=False, then=Value(now + timedelta(seconds=finish))),
            default=Value(now + timedelta(seconds=lease_seconds)),
        )
    )
    return list(Generation.objects.select_related("ai_model").filter(pk__in=ids).order_by("next_poll_at"))


def generation_submitted(*, generation: Generation, request_id: str, urls: dict, next_poll_at) -> bool:
    """The provider queued it: keep its request id and URLs; a worker looks again at
    ``next_poll_at`` (unless a webhook reports first). False if it left processing (or
    was submitted already) meanwhile: the caller cancels the orphan at the provider."""
    return bool(
        Generation.objects.filter(pk=generation.pk, status=Status.PROCESSING, provider_request_id="").update(
            provider_request_id=request_id,
            provider_urls=urls,
            submitted_at=timezone.now(),
            next_poll_at=next_poll_at,
            progress={"stage": "queued"},
        )
    )


def generation_retry_later(*, generation: Generation, error: str, delay: float) -> bool:
    """A submit failed with a retryable error: count the attempt, try again in ``delay`` s."""
    return _transition(
        generation.pk,
        from_statuses=[Status.PROCESSING],
        provider_request_id="",
        attempts=F("attempts") + 1,
        next_poll_at=timezone.now() + timedelta(seconds=delay),
        progress={"stage": "retrying", "error": error[:300]},
    )


def generation_progress(*, generation: Generation, progress: dict, next_poll_at) -> bool:
    """The latest progress a poll saw, and when to poll next (no result in yet)."""
    return bool(
        Generation.objects.filter(pk=generation.pk, status=Status.PROCESSING, provider_result__isnull=True).update(
            progress=progress, next_poll_at=next_poll_at
        )
    )


def generation_result_received(*, request_id: str, result: dict, metrics: dict | None = None) -> bool:
    """The provider's result for ``request_id`` (a webhook's, or a poll's), kept on the
    processing generation for a worker to finish (copy the outputs in, or fail and
    refund). Only the first result counts: a second delivery, a racing poll, or a
    result for a generation no longer processing changes nothing (False)."""
    changes = {
        "provider_result": result,
        "next_poll_at": timezone.now(),
        "progress": {"stage": "finishing", "percentage": 100},
    }
    changes.update(_metrics_columns(metrics))
    return bool(
        Generation.objects.filter(
            provider_request_id=request_id, status=Status.PROCESSING, provider_result__isnull=True
        )
        .exclude(provider="")
        .update(**changes)
    )


def _metrics_columns(metrics: dict | None) -> dict:
    changes = {}
    if metrics and "inference_time" in metrics:
        changes["provider_inference_seconds"] = metrics["inference_time"]
    if metrics and "cost" in metrics:
        changes["provider_cost"] = round(metrics["cost"], 6)
    return changes


def _transition(generation_id, *, from_statuses, **changes) -> bool:
    """Move a generation out of one of ``from_statuses``; True if this call did it."""
    return bool(Generation.objects.filter(pk=generation_id, status__in=list(from_statuses)).update(**changes))


@transaction.atomic
def generation_complete(
    *, generation: Generation, outputs: list[dict], provider_request_id: str = "", metrics: dict | None = None
) -> bool:
    """processing → completed with its outputs. False if it had already left
    processing (cancelled, failed by the sweep …): the outputs are then dropped."""
    changes = {
        "status": Status.COMPLETED,
        "outputs": outputs,
        "completed_at": timezone.now(),
        "error_message": "",
        # The files the outputs point at join the owner's storage (trigger, generations 0011).
        "storage_bytes": F("storage_bytes") + outputs_bytes(outputs),
        # Copied in: the provider's URLs are not kept.
        "provider_result": None,
        "next_poll_at": None,
        **_metrics_columns(metrics),
    }
    if generation.provider:
        changes["progress"] = {"stage": "completed", "percentage": 100}
    if provider_request_id:
        changes["provider_request_id"] = provider_request_id
    done = _transition(generation.pk, from_statuses=[Status.PROCESSING], **changes)
    if done:
        _count_finished(generation, Status.COMPLETED)
        logger.info("generation %s completed with %d output(s)", generation.pk, len(outputs))
    return done


@transaction.atomic
def generation_fail(
    *,
    generation: Generation,
    error: str,
    from_statuses=(Status.PENDING, Status.PROCESSING),
    created_by=None,
    provider_request_id: str = "",
) -> bool:
    """→ failed, with the error recorded, and refunded — exactly once.

    The conditional update is the claim: of a worker, the sweep, a webhook and an admin
    racing on one generation, one moves it and refunds in the same transaction; the
    others get False and change nothing.
    """
    changes = {"status": Status.FAILED, "error_message": (error or "Generation failed.")[:2000], "next_poll_at": None}
    if provider_request_id:
        # Kept so a job that timed out here but still runs (and bills) at the provider
        # can be traced.
        changes["provider_request_id"] = provider_request_id
    done = _transition(generation.pk, from_statuses=from_statuses, completed_at=timezone.now(), **changes)
    if done:
        generation.refresh_from_db()
        _count_finished(generation, Status.FAILED)
        credits_refund(generation=generation, reason="Refund: generation failed", created_by=created_by)
        logger.warning("generation %s failed: %s", generation.pk, error)
    return done


def generation_retry(*, generation: Generation) -> Generation:
    """A new generation with the same request (charged again), child of the old one."""
    return generation_create(
        user=generation.user,
        ai_model=generation.ai_model,
        prompt=generation.prompt,
        negative_prompt=generation.negative_prompt,
        parameters=generation.parameters,
        project=generation.project if generation.project and not generation.project.is_archived else None,
        parent=generation,
        style_stack=generation.style_stack,
        preset=generation.preset,
    )


def generation_sweep(*, timeout_seconds: int | None = None) -> int:
    """Fail and refund generations stuck in processing longer than the timeout (a worker
    killed mid-run). Returns how many it failed."""
    timeout = timeout_seconds if timeout_seconds is not None else settings.GENERATION_PROCESSING_TIMEOUT
    cutoff = timezone.now() - timedelta(seconds=timeout)
    stuck = Generation.objects.filter(status=Status.PROCESSING, started_at__lt=cutoff).select_related("ai_model")
    failed = 0
    for generation in stuck.iterator():
        error = f"Timed out: still processing after {timeout} s (worker lost)."
        if generation.provider and generation.provider_request_id:
            # Cancelled at the provider first, so it stops running (and billing) there.
            error = error[:-1] + f"; {generation_cancel_quietly(generation)}."
        if generation_fail(generation=generation, error=error, from_statuses=[Status.PROCESSING]):
            failed += 1
    return failed


@transaction.atomic
def generation_refund(*, generation_id, reason: str, created_by=None) -> CreditTransaction:
    """Staff give back what a finished generation was charged, once (the admin's
    "Refund" button): a goodwill refund of a completed one, or a failed or cancelled one
    whose refund is missing. The status stays as it is.

    A pending or processing generation is refused: failing it refunds it (the action
    "Mark failed and refund", generation_fail), and refunding it here would let the
    worker deliver what was paid back. Raises ``Conflict`` (code ``already_refunded``,
    ``in_flight`` or ``nothing_charged``) and ``ValidationError`` for an empty reason;
    nothing is written then. ``Http404`` for an unknown id.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "A reason is required."})
    # The row lock orders this after a worker, a cancel or the sweep that is moving the
    # same generation (their conditional UPDATEs lock it too), and a second press of the
    # button after the first: each then sees the status and the refund row as they are.
    generation = Generation.objects.select_for_update().filter(pk=generation_id).first()
    if generation is None:
        raise Http404("No such generation.")
    if generation.status in (Status.PENDING, Status.PROCESSING):
        raise Conflict(
            f"The generation is {generation.status}: mark it failed instead, which refunds it.", code="in_flight"
        )
    if generation.credits_charged <= 0:
        raise Conflict("Nothing was charged for this generation.", code="nothing_charged")
    already = Conflict("This generation was already refunded: nothing was written.", code="already_refunded")
    if CreditTransaction.objects.filter(generation_id=generation.pk, type=CreditTransaction.Type.REFUND).exists():
        raise already
    try:
        with transaction.atomic():
            return credits_refund(generation=generation, reason=reason[:500], created_by=created_by)
    except IntegrityError as exc:
        # credit_tx_one_refund_per_generation: the ledger itself refuses a second refund.
        if getattr(getattr(exc.__cause__, "diag", None), "constraint_name", None) == (
            "credit_tx_one_refund_per_generation"
        ):
            raise already from exc
        raise


def _cancel_at(provider, generation: Generation) -> tuple[bool, str]:
    try:
        return provider.cancel(generation)
    finally:
        close = getattr(provider, "close", None)
        if close is not None:
            close()


def generation_cancel_quietly(generation: Generation, *, why: str = "timed out") -> str:
    """Ask the provider to cancel ``generation``'s request before it is failed here (a
    time-out, or staff marking it failed): what it answered, in words for the error
    message; never raises."""
    from generations.providers import ProviderError, provider_named

    try:
        cancelled, answer = _cancel_at(provider_named(generation.provider), generation)
    except ProviderError as exc:
        return f"cancelling it at {generation.provider} failed ({exc})"
    logger.warning("generation %s %s; cancel at %s: %s", generation.pk, why, generation.provider, answer)
    return f"cancelled at {generation.provider}" if cancelled else f"{generation.provider} answered {answer} to cancel"


# --- worker heartbeats ---------------------------------------------------------------

# Rows of workers not seen for this long are deleted by the next worker to start (a
# worker killed without its clean stop): the metrics then stop naming it.
HEARTBEAT_FORGET_AFTER = timedelta(days=1)


def worker_heartbeat(*, worker: str, hostname: str, pid: int, started_at, last_claim_at, claims: int) -> None:
    """Record that ``worker`` is alive now (its row in worker_heartbeats, created on its
    first beat). One row per worker, written by that worker alone every few seconds:
    nothing here is shared between workers, or touched per generation."""
    WorkerHeartbeat.objects.update_or_create(
        worker=worker,
        defaults={
            "hostname": hostname,
            "pid": pid,
            "started_at": started_at,
            "seen_at": timezone.now(),
            "last_claim_at": last_claim_at,
            "claims": claims,
        },
    )


def worker_heartbeats_forget(*, worker: str | None = None) -> int:
    """Delete ``worker``'s row (it stops cleanly), or with None the rows of workers not
    seen for HEARTBEAT_FORGET_AFTER. Returns how many rows went."""
    rows = WorkerHeartbeat.objects.all()
    if worker is not None:
        rows = rows.filter(worker=worker)
    else:
        rows = rows.filter(seen_at__lt=timezone.now() - HEARTBEAT_FORGET_AFTER)
    return rows.delete()[0]
