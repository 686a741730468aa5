import uuid

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.contrib.postgres.functions import RandomUUID
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower, Now

from velro.expressions import UTCTimestamp


class Category(models.TextChoices):
    GENERAL = "general", "General"
    DIRECTOR = "director", "Director"
    GENRE = "genre", "Genre"
    TECHNIQUE = "technique", "Technique"
    CINEMATIC = "cinematic", "Cinematic"
    PHOTOGRAPHIC = "photographic", "Photographic"
    ARTISTIC = "artistic", "Artistic"


STACK_CATEGORIES = [c for c in Category.values if c != Category.ARTISTIC]  # presets also: artistic
STACK_CATEGORY_CHOICES = [(c, Category(c).label) for c in STACK_CATEGORIES]


class StylePreset(models.Model):
    """A built-in style from the preset library (``public.style_stack_presets``).

    Curated by staff in the admin; everyone reads the active ones. ``usage_count`` and
    ``last_used_at`` are kept by a trigger on generations.
    """

    class Complexity(models.TextChoices):
        BEGINNER = "beginner", "Beginner"
        INTERMEDIATE = "intermediate", "Intermediate"
        ADVANCED = "advanced", "Advanced"
        EXPERT = "expert", "Expert"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    slug = models.SlugField(max_length=80, unique=True)
    name = models.CharField(max_length=100)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.GENERAL)
    subcategory = models.CharField(max_length=50, blank=True, default="")
    description = models.CharField(max_length=1000, blank=True, default="")
    creator = models.CharField(max_length=100, default="Velro")
    style = models.JSONField(default=dict, help_text="The style document (schema at /api/v1/style-stacks/schema).")
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True, size=20)
    complexity_level = models.CharField(max_length=20, choices=Complexity.choices, default=Complexity.BEGINNER)
    recommended_models = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    preview_image_url = models.URLField(max_length=2048, blank=True, default="")
    is_active = models.BooleanField(default=True)
    is_featured = models.BooleanField(default=False)
    rating = models.DecimalField(max_digits=3, decimal_places=2, default=0)
    sort_order = models.IntegerField(default=0)
    usage_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "style_stack_presets"
        ordering = ["sort_order", "name"]
        constraints = [
            models.CheckConstraint(condition=models.Q(rating__gte=0, rating__lte=5), name="presets_rating_range"),
            models.CheckConstraint(condition=models.Q(category__in=Category.values), name="presets_category_valid"),
        ]
        indexes = [
            # The public list ("active presets in order") and its RLS policy.
            models.Index(fields=["sort_order", "name"], name="presets_active_idx", condition=models.Q(is_active=True)),
            GinIndex(fields=["tags"], name="presets_tags_gin"),
        ]

    def __str__(self):
        return self.name


class StyleStack(models.Model):
    """A person's reusable style recipe (``public.style_stacks``).

    ``style`` is the style document (validated against ``stylestacks/schema``). Every
    change of ``style`` keeps the previous document in ``style_stack_versions`` and bumps
    ``version`` (a trigger). Counters (usage, forks) and staff flags (featured,
    marketplace) are the server's: triggers keep them and the API role cannot write them.
    """

    class Visibility(models.TextChoices):
        PRIVATE = "private", "Private"
        UNLISTED = "unlisted", "Unlisted (anyone with the id)"
        PUBLIC = "public", "Public"

    class CreatedFrom(models.TextChoices):
        MANUAL = "manual", "Manual"
        PRESET = "preset", "Preset"
        FORK = "fork", "Fork"
        IMPORT = "import", "Import"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    # FKs with database ON DELETE actions are created in SQL by the migration; Django is
    # told DO_NOTHING where the database sets NULL (the API role could not).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,  # style_stacks_user_idx leads with user_id
        related_name="style_stacks",
    )
    name = models.CharField(max_length=100)
    description = models.CharField(max_length=1000, blank=True, default="")
    tags = ArrayField(models.CharField(max_length=40), default=list, blank=True, size=20)
    category = models.CharField(max_length=20, choices=Category.choices, default=Category.GENERAL)
    visibility = models.CharField(max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE)
    is_featured = models.BooleanField(default=False, db_default=False)
    is_marketplace = models.BooleanField(default=False, db_default=False)
    price_credits = models.PositiveIntegerField(default=0, db_default=0)
    style = models.JSONField(default=dict)
    compatible_models = ArrayField(models.CharField(max_length=200), default=list, blank=True)
    version = models.PositiveIntegerField(default=1, db_default=1, editable=False)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,  # style_stacks_parent_idx
        related_name="forks",
    )
    created_from = models.CharField(max_length=10, choices=CreatedFrom.choices, default=CreatedFrom.MANUAL)
    created_from_preset = models.ForeignKey(
        StylePreset, null=True, blank=True, on_delete=models.DO_NOTHING, db_constraint=False, related_name="stacks"
    )
    usage_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    fork_count = models.PositiveIntegerField(default=0, db_default=0, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Kept by the trigger style_stacks_search (name A, tags B, description C).
    search_vector = SearchVectorField(null=True, editable=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "style_stacks"
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(visibility__in=["private", "unlisted", "public"]),
                name="style_stacks_visibility_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(category__in=STACK_CATEGORIES), name="style_stacks_category_valid"
            ),
            models.CheckConstraint(condition=~models.Q(name=""), name="style_stacks_name_not_blank"),
        ]
        indexes = [
            # "My stacks" and the RLS owner check.
            models.Index(fields=["user", "-created_at"], name="style_stacks_user_idx"),
            # The admin's changelist, newest first; on an expression so that the API's
            # per-person pages can never be planned on it (velro.expressions.UTCTimestamp).
            models.Index(UTCTimestamp("created_at").desc(), F("id").desc(), name="style_stacks_admin_order_idx"),
            # Forks of a stack.
            models.Index(fields=["parent"], name="style_stacks_parent_idx"),
            # Explore: public stacks by usage / forks / newest, featured first.
            models.Index(
                fields=["-is_featured", "-usage_count"],
                name="style_stacks_explore_idx",
                condition=models.Q(visibility="public"),
            ),
            GinIndex(fields=["search_vector"], name="style_stacks_search_gin"),
            GinIndex(fields=["tags"], name="style_stacks_tags_gin"),
            GinIndex(fields=["style"], name="style_stacks_style_gin", opclasses=["jsonb_path_ops"]),
        ]

    def __str__(self):
        return self.name


class StackContributor(models.Model):
    """A person invited to a stack (``public.stack_contributors``): viewers read a private
    stack; editors also change its style and text, never its visibility, owner or
    contributors. Only the owner manages contributors."""

    class Role(models.TextChoices):
        VIEWER = "viewer", "Viewer"
        EDITOR = "editor", "Editor"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    stack = models.ForeignKey(
        StyleStack,
        on_delete=models.DO_NOTHING,  # ON DELETE CASCADE in the database
        db_constraint=False,
        db_index=False,  # the (stack, user) unique index leads with stack_id
        related_name="contributors",
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,  # stack_contributors_user_idx
        related_name="stack_contributions",
    )
    role = models.CharField(max_length=10, choices=Role.choices, default=Role.VIEWER)
    # The invitee's email when invited, so the stack's people can see who is on it (the
    # API role cannot read other people's identities or profiles).
    email = models.EmailField(max_length=254, blank=True, default="")
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "stack_contributors"
        constraints = [
            models.UniqueConstraint(fields=["stack", "user"], name="stack_contributors_stack_user_key"),
            models.CheckConstraint(
                condition=models.Q(role__in=["viewer", "editor"]), name="stack_contributors_role_valid"
            ),
        ]
        indexes = [
            # The RLS helper public.stack_role() looks up (stack_id, user_id): the unique
            # constraint's index. "Stacks shared with me" looks up by user_id.
            models.Index(fields=["user"], name="stack_contributors_user_idx"),
        ]

    def __str__(self):
        return f"{self.user_id} {self.role} of {self.stack_id}"


class StackInvite(models.Model):
    """An invitation to a stack for an address that has no account yet
    (``public.stack_invites``).

    Inviting never tells the owner whether an address is registered: a registered
    person becomes a contributor at once, anyone else gets a row here, and the trigger
    ``on_auth_user_created_accept_invites`` on ``auth.users`` turns every row for an
    address into a contributor when that address signs up (whatever creates the
    identity), in the same transaction. Rows are written only by the database functions
    (stylestacks/migrations/0006_stack_invites.py); the stack's owner reads and
    withdraws them.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    stack = models.ForeignKey(
        StyleStack,
        on_delete=models.DO_NOTHING,  # ON DELETE CASCADE in the database
        db_constraint=False,
        db_index=False,  # the (stack, email) unique index leads with stack_id
        related_name="invites",
    )
    # Lower-cased and trimmed by the function that writes it; the sign-up trigger looks
    # the new identity's lower-cased email up here.
    email = models.EmailField(max_length=254)
    role = models.CharField(max_length=10, choices=StackContributor.Role.choices, default=StackContributor.Role.VIEWER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,  # ON DELETE SET NULL in the database
        db_constraint=False,
        related_name="+",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "stack_invites"
        ordering = ["created_at", "id"]
        constraints = [
            # One invite per address and stack: inviting again changes the role.
            models.UniqueConstraint(fields=["stack", "email"], name="stack_invites_stack_email_key"),
            models.CheckConstraint(condition=models.Q(role__in=["viewer", "editor"]), name="stack_invites_role_valid"),
            models.CheckConstraint(condition=models.Q(email=Lower("email")), name="stack_invites_email_lower"),
        ]
        indexes = [
            # The RLS policies filter on stack_id: the unique constraint's index. The
            # sign-up trigger looks up by email.
            models.Index(fields=["email"], name="stack_invites_email_idx"),
        ]

    def __str__(self):
        return f"{self.email} {self.role} of {self.stack_id} (pending)"


class StyleVersion(models.Model):
    """A previous style document, written by a keep_version trigger whenever ``style``
    changes: its number (from 1 per stack or preset), the document and who changed it."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    version = models.PositiveIntegerField()
    style = models.JSONField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,  # ON DELETE SET NULL in the database
        db_constraint=False,
        related_name="+",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        abstract = True
        ordering = ["-version"]


class StyleStackVersion(StyleVersion):
    """A previous document of a stack (``public.style_stack_versions``)."""

    stack = models.ForeignKey(
        StyleStack,
        on_delete=models.DO_NOTHING,  # ON DELETE CASCADE in the database
        db_constraint=False,
        db_index=False,  # the (stack, version) unique index leads with stack_id
        related_name="versions",
    )

    class Meta(StyleVersion.Meta):
        db_table = "style_stack_versions"
        constraints = [
            models.UniqueConstraint(fields=["stack", "version"], name="style_stack_versions_stack_version_key")
        ]

    def __str__(self):
        return f"{self.stack_id} v{self.version}"


class StylePresetVersion(StyleVersion):
    """A previous document of a preset (``public.style_preset_versions``); staff-only data
    (RLS on, no policy for the API roles)."""

    preset = models.ForeignKey(
        StylePreset,
        on_delete=models.DO_NOTHING,  # ON DELETE CASCADE in the database
        db_constraint=False,
        db_index=False,  # the (preset, version) unique index leads with preset_id
        related_name="versions",
    )

    class Meta(StyleVersion.Meta):
        db_table = "style_preset_versions"
        constraints = [
            models.UniqueConstraint(fields=["preset", "version"], name="style_preset_versions_preset_version_key")
        ]

    def __str__(self):
        return f"{self.preset_id} v{self.version}"
