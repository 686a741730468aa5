import uuid

from django.conf import settings
from django.contrib.postgres.functions import RandomUUID
from django.contrib.postgres.indexes import BrinIndex, GinIndex
from django.db import models
from django.db.models import F
from django.db.models.functions import Now

from velro.expressions import UTCTimestamp, words


class AIModel(models.Model):
    """An entry of the AI model catalog (``public.ai_models``); the id is the provider's
    endpoint path, e.g. ``fal-ai/flux/dev``.

    ``parameter_schema`` is a JSON Schema (draft 2020-12) for a generation's
    ``parameters``; ``prompt_guide`` holds structured prompting tips used by style
    stacks. Everyone may read active models; only staff edit them (admin).
    """

    class Kind(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"

    class Provider(models.TextChoices):
        LOCAL = "local", "Local renderer (no network)"
        FAL = "fal", "fal.ai queue API"

    id = models.CharField(primary_key=True, max_length=200)
    provider = models.CharField(max_length=20, choices=Provider.choices, default=Provider.LOCAL)
    display_name = models.CharField(max_length=120)
    description = models.CharField(max_length=500, blank=True, default="")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    credits_cost = models.PositiveIntegerField()
    max_prompt_length = models.PositiveIntegerField(default=2000)
    parameter_schema = models.JSONField(default=dict, blank=True)
    prompt_guide = models.JSONField(default=dict, blank=True)
    supports_lora = models.BooleanField(default=False)
    supports_negative_prompt = models.BooleanField(default=False)
    supports_reference_image = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    sort_order = models.IntegerField(default=0)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "ai_models"
        ordering = ["sort_order", "id"]
        verbose_name = "AI model"
        constraints = [
            models.CheckConstraint(condition=models.Q(kind__in=["image", "video"]), name="ai_models_kind_valid"),
            models.CheckConstraint(condition=models.Q(credits_cost__gt=0), name="ai_models_credits_cost_positive"),
            models.CheckConstraint(
                condition=models.Q(max_prompt_length__gte=1, max_prompt_length__lte=10000),
                name="ai_models_max_prompt_length_range",
            ),
        ]
        indexes = [
            # The catalog list ("active models, in order") and its RLS policy.
            models.Index(fields=["sort_order", "id"], name="ai_models_active_idx", condition=models.Q(is_active=True)),
        ]

    def __str__(self):
        return self.display_name


class Generation(models.Model):
    """One request to an AI model (``public.generations``), which is also the work queue.

    Created only through ``generations.services.generation_create`` (the database
    function ``public.generation_create``), which charges the model's cost in the same
    transaction. ``status`` moves pending → processing → completed | failed | cancelled,
    set by the service side (worker, webhook, admin), never by the owner; failed and
    cancelled generations are refunded exactly once.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        COMPLETED = "completed", "Completed"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    FINAL_STATUSES = (Status.COMPLETED, Status.FAILED, Status.CANCELLED)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    # The foreign keys' ON DELETE actions are created in SQL by the migration.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,  # generations_user_created_idx leads with user_id
        related_name="generations",
    )
    # DO_NOTHING: the database's ON DELETE SET NULL does it. Django's own SET_NULL would
    # first UPDATE generations.project_id as the caller, which the API role may not.
    project = models.ForeignKey(
        "projects.Project",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="generations",
    )
    ai_model = models.ForeignKey(AIModel, on_delete=models.PROTECT, related_name="generations")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="children"
    )
    # The style it was made with; ON DELETE SET NULL in the database.
    style_stack = models.ForeignKey(
        "stylestacks.StyleStack",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="generations",
    )
    preset = models.ForeignKey(
        "stylestacks.StylePreset",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="generations",
    )
    prompt = models.TextField(help_text="What the person typed.")
    # What was sent to the provider: the prompt composed with the style for this model
    # (empty when no style was used), and how it was composed.
    adapted_prompt = models.TextField(blank=True, db_default="")
    adaptation = models.JSONField(default=dict, blank=True, db_default=models.Value({}, models.JSONField()))
    negative_prompt = models.TextField(blank=True, db_default="")
    parameters = models.JSONField(default=dict, blank=True)
    reference_image = models.FileField(upload_to="references/%Y/%m/", max_length=300, blank=True, db_default="")
    # Bytes of the stored files this row points at, written by the code that stores them;
    # a trigger adds every change to the owner's users.storage_bytes (migration 0011).
    storage_bytes = models.BigIntegerField(default=0, db_default=0, editable=False)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.PENDING, db_default="pending")
    credits_charged = models.PositiveIntegerField(default=0, db_default=0)
    outputs = models.JSONField(default=list, blank=True, db_default=models.Value([], models.JSONField()))
    error_message = models.TextField(blank=True, db_default="")
    provider_request_id = models.CharField(max_length=200, blank=True, db_default="")
    attempts = models.PositiveIntegerField(default=0, db_default=0)
    # Submit and release (issue 19): the provider holding the request ('' for one that
    # runs in the worker, like local), the URLs its submit returned (status, response,
    # cancel), when it was submitted, when a worker should look at it next (poll it,
    # retry its submit, or finish it once a result is in), the result a webhook or a
    # poll brought (cleared once completed: no row keeps pointing at a provider's CDN),
    # the latest progress (queue position, stage, percentage) and what the provider
    # reported it cost.
    provider = models.CharField(max_length=20, blank=True, db_default="", editable=False)
    provider_urls = models.JSONField(
        default=dict, blank=True, db_default=models.Value({}, models.JSONField()), editable=False
    )
    submitted_at = models.DateTimeField(null=True, blank=True, editable=False)
    next_poll_at = models.DateTimeField(null=True, blank=True, editable=False)
    provider_result = models.JSONField(null=True, blank=True, editable=False)
    progress = models.JSONField(default=dict, blank=True, db_default=models.Value({}, models.JSONField()))
    provider_inference_seconds = models.FloatField(null=True, blank=True, editable=False)
    provider_cost = models.DecimalField(max_digits=12, decimal_places=6, null=True, blank=True, editable=False)
    is_favorite = models.BooleanField(default=False, db_default=False)
    idempotency_key = models.CharField(max_length=100, null=True, blank=True)
    # SHA-256 of the request an Idempotency-Key was first used with: the same key with
    # another request is refused (422), as Stripe does. Empty without a key.
    request_fingerprint = models.CharField(max_length=64, blank=True, db_default="", editable=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "generations"
        ordering = ["-created_at", "-id"]
        indexes = [
            # "My generations, newest first" (cursor pagination) and the RLS policy's
            # user_id filter.
            models.Index(fields=["user", "-created_at", "-id"], name="generations_user_created_idx"),
            # The admin dashboard's 30-day figures (health/dashboard.py): a range scan on
            # created_at. BRIN, not a b-tree: rows arrive in created_at order, so it is tiny,
            # and it cannot return rows in created_at order, so the planner never picks it
            # over generations_user_created_idx for a person's newest-first page (a b-tree
            # on created_at was, on small tables: make bench's page_plans_use_index).
            BrinIndex(fields=["created_at"], name="generations_created_brin"),
            # The admin's changelist, newest first; on an expression so that the API's
            # per-person pages can never be planned on it (velro.expressions.UTCTimestamp).
            models.Index(UTCTimestamp("created_at").desc(), F("id").desc(), name="generations_admin_order_idx"),
            # The same list filtered to the failed or cancelled ones (generations 0020).
            models.Index(
                F("status"),
                UTCTimestamp("created_at").desc(),
                F("id").desc(),
                condition=models.Q(status__in=["failed", "cancelled"]),
                name="generations_admin_ended_idx",
            ),
            # The admin's search by the words of the prompt (velro.admin.BigTableAdminMixin).
            GinIndex(words("prompt"), name="generations_prompt_words_idx"),
            # The worker's queue: oldest pending first.
            models.Index(fields=["created_at"], name="generations_pending_idx", condition=models.Q(status="pending")),
            # The sweep: rows stuck in processing.
            models.Index(
                fields=["started_at"], name="generations_processing_idx", condition=models.Q(status="processing")
            ),
            # The workers' in-flight requests: what is due (to poll, resubmit or finish).
            models.Index(fields=["next_poll_at"], name="generations_due_idx", condition=models.Q(status="processing")),
            models.Index(
                fields=["provider_request_id"],
                name="generations_provider_req_idx",
                condition=~models.Q(provider_request_id=""),
            ),
            # A person's list filtered by status, project or model, or their favourites:
            # led by the owner, then the filter, then the page's order, so a filter with
            # few matches reads only its own rows (generations 0016).
            models.Index(fields=["user", "status", "-created_at", "-id"], name="generations_user_status_idx"),
            models.Index(fields=["user", "project", "-created_at", "-id"], name="generations_user_project_idx"),
            models.Index(fields=["user", "ai_model", "-created_at", "-id"], name="generations_user_model_idx"),
            models.Index(
                fields=["user", "-created_at", "-id"],
                name="generations_user_favorite_idx",
                condition=models.Q(is_favorite=True),
            ),
            # The admin's Provider cost report: the provider-held generations of the last
            # N days, without reading the ones that ran here (generations 0017).
            models.Index(fields=["created_at"], name="generations_provider_held_idx", condition=~models.Q(provider="")),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["pending", "processing", "completed", "failed", "cancelled"]),
                name="generations_status_valid",
            ),
            models.UniqueConstraint(
                fields=["user", "idempotency_key"],
                condition=models.Q(idempotency_key__isnull=False),
                name="generations_user_idempotency_key",
            ),
        ]

    def __str__(self):
        return f"{self.ai_model_id}: {self.prompt[:40]}"

    @property
    def is_final(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def provider_prompt(self) -> str:
        """The prompt providers receive: the composed one when a style was used."""
        return self.adapted_prompt or self.prompt


class GenerationStat(models.Model):
    """How many generations a person has, and the credits they were charged, by status
    and model: ``GET generations/stats`` in constant time, whatever the history.

    Kept by statement-level triggers on generations (generations 0015) in the same
    transaction as the change: every insert, delete, and change of owner, status, model or
    credits moves the counts. Rows at zero stay (a status comes back) and are not shown.
    Read by the owner under RLS; ``manage.py dbhealth`` compares a sample with the truth.
    """

    pk = models.CompositePrimaryKey("user_id", "status", "ai_model_id")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.DO_NOTHING, db_constraint=False, related_name="+"
    )
    status = models.CharField(max_length=20)
    # The catalog id, not a foreign key: the figures outlive a model taken off the catalog.
    ai_model_id = models.CharField(max_length=200)
    count = models.BigIntegerField()
    credits_charged = models.BigIntegerField()

    class Meta:
        db_table = "generation_stats"

    def __str__(self):
        return f"{self.user_id} {self.status} {self.ai_model_id}: {self.count}"


class GenerationEvent(models.Model):
    """One status change of a generation (``public.generation_events``): its creation as
    ``pending`` and every later change of ``status``, written by triggers on generations
    (generations 0019) in the same transaction as the change, and announced on the
    ``velro_generation_events`` NOTIFY channel. ``GET generations/events`` streams them;
    the id is the Server-Sent Event's id, so ``Last-Event-ID`` resumes from this table.

    The owner reads their rows under RLS; nobody writes them but the triggers. Kept
    ``EVENTS_RETENTION_HOURS`` (generations.tasks.prune_generation_events). No foreign
    key to the generation: deleting one need not touch its events, which go with age.
    """

    id = models.BigAutoField(primary_key=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.DO_NOTHING,  # ON DELETE CASCADE in the database (the migration)
        db_constraint=False,
        db_index=False,  # generation_events_user_idx leads with user_id
        related_name="+",
    )
    generation_id = models.UUIDField()
    status = models.CharField(max_length=12)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "generation_events"
        indexes = [
            # Resuming a stream (a person's events after an id) and the RLS policy's
            # user_id filter.
            models.Index(fields=["user", "id"], name="generation_events_user_idx"),
            # The prune: events older than the retention, oldest first.
            BrinIndex(fields=["created_at"], name="generation_events_created_brin"),
        ]

    def __str__(self):
        return f"{self.id} {self.generation_id} {self.status}"


class WebhookDelivery(models.Model):
    """Every provider webhook delivery we received, by its id (the signature's digest),
    whatever became of it: a replay of one that was applied or refused changes nothing.
    Only the service side reads or writes it."""

    class Outcome(models.TextChoices):
        APPLIED = "applied", "Applied"
        REFUSED = "refused", "Refused"

    provider = models.CharField(max_length=40)
    signature = models.CharField(max_length=200, unique=True)
    received_at = models.DateTimeField(db_default=Now(), editable=False)
    outcome = models.CharField(max_length=10, choices=Outcome.choices, db_default=Outcome.APPLIED)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    reason = models.CharField(max_length=300, blank=True, db_default="")
    # No foreign key: a refused delivery may name a generation that does not exist.
    generation_id = models.UUIDField(null=True, blank=True)

    class Meta:
        db_table = "webhook_deliveries"
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return f"{self.provider} {self.received_at:%Y-%m-%d %H:%M:%S}"


class WorkerHeartbeat(models.Model):
    """A running generation worker (``run_worker``): when it last looked at the queue
    (``seen_at``) and last claimed a generation. Each worker writes only its own row,
    every few seconds (generations.services.worker_heartbeat), never per generation, so
    the rows never become a point of contention; a worker that stops cleanly deletes its
    row, and rows not seen for a day are deleted by the next worker to start. Read by
    ``/metrics`` (the "no worker heartbeat" alert). Only the service side touches it."""

    worker = models.CharField(max_length=200, primary_key=True, help_text="host:pid")
    hostname = models.CharField(max_length=200)
    pid = models.IntegerField()
    started_at = models.DateTimeField()
    seen_at = models.DateTimeField()
    last_claim_at = models.DateTimeField(null=True, blank=True)
    claims = models.BigIntegerField(default=0, help_text="Generations claimed since the worker started.")

    class Meta:
        db_table = "worker_heartbeats"

    def __str__(self):
        return f"{self.worker} (seen {self.seen_at:%Y-%m-%d %H:%M:%S})"
