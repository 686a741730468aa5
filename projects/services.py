from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from projects.models import Project

EDITABLE = ("name", "description", "visibility")


@transaction.atomic
def project_create(*, user, name: str, description: str = "", visibility: str = Project.Visibility.PRIVATE) -> Project:
    """Create a project for ``user``. Raises ValidationError (e.g. a name the user already
    has, compared case-insensitively)."""
    project = Project(user=user, name=name.strip(), description=description, visibility=visibility)
    _validate(project)
    _save(project)
    project.refresh_from_db()  # the database sets created_at and the counter
    return project


def _validate(project: Project) -> None:
    # "user" is excluded from field validation: checking that the owner exists would
    # read auth.users, which the API role cannot (and need not: it is the caller). That
    # also skips the per-owner unique name constraint, checked here by name instead (its
    # expression-based form would report a non-field error).
    project.full_clean(exclude=["user"])
    taken = Project.objects.filter(user_id=project.user_id, name__iexact=project.name).exclude(pk=project.pk)
    if taken.exists():
        raise ValidationError({"name": "You already have a project with this name."})


def _save(project: Project, **kwargs) -> None:
    try:
        with transaction.atomic():
            project.save(**kwargs)
    except IntegrityError as exc:  # a concurrent request took the name first
        if "projects_user_name_ci_key" in str(exc):
            raise ValidationError({"name": "You already have a project with this name."}) from exc
        raise


@transaction.atomic
def project_update(*, project: Project, data: dict) -> Project:
    """Change name, description or visibility. Saves only those columns: the owner's
    UPDATE grant covers nothing else."""
    fields = [name for name in EDITABLE if name in data]
    for name in fields:
        setattr(project, name, data[name].strip() if name == "name" else data[name])
    if fields:
        _validate(project)
        _save(project, update_fields=fields)
        project.refresh_from_db(fields=["updated_at"])
    return project


@transaction.atomic
def project_delete(*, project: Project) -> Project | None:
    """Delete an empty project; archive one that has generations (so none loses its
    project). Returns the archived project, or None when it was deleted.

    The row is locked FOR UPDATE before the generations are counted: a generation being
    created in the project holds it FOR KEY SHARE (public.generation_create) until it
    commits, so the count below sees it and the project is archived; a create that
    comes after the lock waits, then finds the project gone or archived (a 400).
    """
    locked = Project.objects.select_for_update().filter(pk=project.pk).first()
    if locked is None:  # deleted meanwhile by a concurrent request
        return None
    project.archived_at = locked.archived_at
    if project.generations.exists():
        if project.archived_at is None:
            project.archived_at = timezone.now()
            project.save(update_fields=["archived_at"])
        return project
    project.delete()
    return None


@transaction.atomic
def project_restore(*, project: Project) -> Project:
    """Bring an archived project back."""
    if project.archived_at is not None:
        project.archived_at = None
        project.save(update_fields=["archived_at"])
    return project
