from django.db import transaction
from django.utils import timezone

from projects.models import Project

EDITABLE = ("name", "description", "visibility")


@transaction.atomic
def project_create(*, user, name: str, description: str = "", visibility: str = Project.Visibility.PRIVATE) -> Project:
    """Create a project for ``user``. Raises ValidationError (e.g. a name the user already
    has, compared case-insensitively)."""
    project = Project(user=user, name=name.strip(), description=description, visibility=visibility)
    project.full_clean()
    project.save()
    project.refresh_from_db()  # the database sets created_at and the counter
    return project


@transaction.atomic
def project_update(*, project: Project, data: dict) -> Project:
    """Change name, description or visibility. Saves only those columns: the owner's
    UPDATE grant covers nothing else."""
    fields = [name for name in EDITABLE if name in data]
    for name in fields:
        setattr(project, name, data[name].strip() if name == "name" else data[name])
    if fields:
        project.full_clean()
        project.save(update_fields=fields)
        project.refresh_from_db(fields=["updated_at"])
    return project


@transaction.atomic
def project_delete(*, project: Project) -> Project | None:
    """Delete an empty project; archive one that has generations (so none loses its
    project). Returns the archived project, or None when it was deleted."""
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
