import uuid

from django.conf import settings
from django.contrib.postgres.functions import RandomUUID
from django.contrib.postgres.indexes import GinIndex
from django.db import models
from django.db.models import F
from django.db.models.functions import Lower, Now

from velro.expressions import UTCTimestamp, words


class ProjectQuerySet(models.QuerySet):
    def visible_to(self, user):
        """Own projects and public ones (what the RLS SELECT policy allows)."""
        return self.filter(models.Q(user=user) | models.Q(visibility=Project.Visibility.PUBLIC))


class Project(models.Model):
    """A person's folder of generations (``public.projects``).

    Owners do everything with their own rows; public projects are readable by everyone.
    ``generation_count`` is kept by a trigger on ``public.generations`` and reset by a
    BEFORE INSERT trigger, so no client can set it. A project with generations is
    archived (``archived_at``) instead of deleted, so no generation loses its project.
    """

    class Visibility(models.TextChoices):
        PRIVATE = "private", "Private"
        PUBLIC = "public", "Public"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, db_default=RandomUUID(), editable=False)
    # FK with ON DELETE CASCADE is created in SQL by the migration (Django 5.2 cannot).
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        db_constraint=False,
        db_index=False,  # projects_user_created_idx leads with user_id
        related_name="projects",
    )
    name = models.CharField(max_length=120)
    description = models.CharField(max_length=500, blank=True, db_default="")
    visibility = models.CharField(
        max_length=10, choices=Visibility.choices, default=Visibility.PRIVATE, db_default=Visibility.PRIVATE
    )
    generation_count = models.IntegerField(default=0, db_default=0, editable=False)
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)
    archived_at = models.DateTimeField(null=True, blank=True)

    objects = ProjectQuerySet.as_manager()

    class Meta:
        db_table = "projects"
        ordering = ["-created_at", "-id"]
        indexes = [
            # "my projects, newest first" and the RLS policies' user_id filter.
            models.Index(fields=["user", "-created_at"], name="projects_user_created_idx"),
            # The SELECT policies' "visibility = 'public'" branch.
            models.Index(fields=["-created_at"], name="projects_public_idx", condition=models.Q(visibility="public")),
            # The admin's changelist, newest first; on an expression so that the API's
            # per-person pages can never be planned on it (velro.expressions.UTCTimestamp).
            models.Index(UTCTimestamp("created_at").desc(), F("id").desc(), name="projects_admin_order_idx"),
            # The admin's search by the words of the name.
            GinIndex(words("name"), name="projects_name_words_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                "user",
                Lower("name"),
                name="projects_user_name_ci_key",
                violation_error_message="You already have a project with this name.",
            ),
            models.CheckConstraint(
                condition=models.Q(visibility__in=["private", "public"]), name="projects_visibility_valid"
            ),
            models.CheckConstraint(
                condition=~models.Q(name=""),
                name="projects_name_not_blank",
                violation_error_message="Name is required.",
            ),
            models.CheckConstraint(condition=models.Q(generation_count__gte=0), name="projects_generation_count_gte_0"),
        ]

    def __str__(self):
        return self.name

    @property
    def is_archived(self) -> bool:
        return self.archived_at is not None
