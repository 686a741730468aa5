"""Style stacks: create, edit, fork, start from a preset, restore a version, share.

Services run as the caller under RLS (API) or as the owner connection (admin, demo
data). The database has the last word: policies decide who may read and write a stack,
the trigger ``guard_editors`` keeps editors off visibility, ``keep_version`` keeps every
previous document and ``count_fork`` counts forks.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection, transaction
from django.db.models import Q

from stylestacks.models import StackContributor, StackInvite, StylePreset, StyleStack, StyleStackVersion
from stylestacks.schema import validate_document
from velro import rls
from velro.db import call_function

MAX_TAGS = 20
EDITOR_FIELDS = ("name", "description", "tags", "category", "style", "compatible_models")
OWNER_FIELDS = (*EDITOR_FIELDS, "visibility")


def stack_role(*, stack: StyleStack, user) -> str | None:
    """'owner', 'editor', 'viewer' or None: what ``user`` may do with ``stack``."""
    if stack.user_id == user.pk:
        return "owner"
    return StackContributor.objects.filter(stack=stack, user=user).values_list("role", flat=True).first()


def stylestacks_visible_to(user):
    """Own, shared with the user, public and unlisted (unlisted: by id only — never
    listed). What the RLS SELECT policy allows."""
    return StyleStack.objects.filter(
        Q(user=user) | Q(contributors__user=user) | Q(visibility__in=["public", "unlisted"])
    ).distinct()


def stylestacks_of(user):
    """The user's own stacks and those shared with them."""
    return StyleStack.objects.filter(Q(user=user) | Q(contributors__user=user)).distinct()


def normalise_tags(tags) -> list[str]:
    seen: list[str] = []
    for tag in tags or []:
        tag = str(tag).strip().lower()
        if tag and tag not in seen:
            seen.append(tag)
    if len(seen) > MAX_TAGS:
        raise ValidationError({"tags": f"At most {MAX_TAGS} tags."})
    return seen


def _validated(stack: StyleStack) -> None:
    # "user" excluded: validating the owner FK would read auth.users (not the API role's).
    stack.full_clean(exclude=["user", "parent", "created_from_preset"])


@transaction.atomic
def stylestack_create(
    *,
    user,
    name: str,
    style: dict | None = None,
    description: str = "",
    tags=None,
    category: str = "general",
    visibility: str = StyleStack.Visibility.PRIVATE,
    compatible_models=None,
    created_from: str = StyleStack.CreatedFrom.MANUAL,
    parent: StyleStack | None = None,
    preset: StylePreset | None = None,
) -> StyleStack:
    """Create a stack owned by ``user`` with a validated (and upgraded) document.
    Raises ValidationError naming the field (or the document's JSON path)."""
    stack = StyleStack(
        user=user,
        name=(name or "").strip(),
        description=description,
        tags=normalise_tags(tags),
        category=category,
        visibility=visibility,
        style=_document(style or {}),
        compatible_models=list(compatible_models or []),
        created_from=created_from,
        parent=parent,
        created_from_preset=preset,
    )
    _validated(stack)
    stack.save()
    stack.refresh_from_db()
    return stack


def _document(style) -> dict:
    try:
        return validate_document(style)
    except ValidationError as exc:
        raise ValidationError({"style": exc.messages}) from exc


@transaction.atomic
def stylestack_update(*, stack: StyleStack, user, data: dict) -> StyleStack:
    """Change a stack as ``user``: the owner changes everything editable, an editor the
    style and text but not visibility. Saves only the changed columns (a style change
    keeps the previous document as a version)."""
    role = stack_role(stack=stack, user=user)
    allowed = OWNER_FIELDS if role == "owner" else EDITOR_FIELDS if role == "editor" else ()
    if not allowed:
        raise PermissionDenied("You cannot edit this stack.")
    refused = [name for name in data if name not in allowed]
    if refused:
        raise ValidationError({name: "Only the owner can change this." for name in refused})
    fields = list(data)
    for name, value in data.items():
        if name == "style":
            value = _document(value)
        elif name == "tags":
            value = normalise_tags(value)
        elif name == "name":
            value = value.strip()
        setattr(stack, name, value)
    if fields:
        _validated(stack)
        stack.save(update_fields=fields)
        stack.refresh_from_db()
    return stack


def stylestack_fork(*, stack: StyleStack, user, name: str | None = None) -> StyleStack:
    """A private copy of ``stack`` owned by ``user`` (its fork_count grows by trigger)."""
    return stylestack_create(
        user=user,
        name=(name or f"{stack.name} (fork)")[:100],
        style=stack.style,
        description=stack.description,
        tags=stack.tags,
        category=stack.category,
        compatible_models=stack.compatible_models,
        created_from=StyleStack.CreatedFrom.FORK,
        parent=stack,
    )


def stylestack_from_preset(*, preset: StylePreset, user, name: str | None = None) -> StyleStack:
    """A private stack of ``user`` that starts as ``preset``."""
    category = preset.category if preset.category != "artistic" else "general"
    return stylestack_create(
        user=user,
        name=(name or preset.name)[:100],
        style=preset.style,
        description=preset.description,
        tags=preset.tags,
        category=category,
        compatible_models=preset.recommended_models,
        created_from=StyleStack.CreatedFrom.PRESET,
        preset=preset,
    )


def stylestack_restore_version(*, stack: StyleStack, user, version: int) -> StyleStack:
    """Make an earlier document current again (which itself keeps the current one as a
    version). Raises StyleStackVersion.DoesNotExist for an unknown version."""
    previous = StyleStackVersion.objects.get(stack=stack, version=version)
    return stylestack_update(stack=stack, user=user, data={"style": previous.style})


@dataclass(frozen=True)
class Invitation:
    """What inviting an address answers: the same whether or not it has an account."""

    email: str
    role: str
    status: str = "invited"


def contributor_add(*, stack: StyleStack, user, email: str, role: str) -> Invitation:
    """Share ``stack`` with the person at ``email`` as ``role``; only its owner may.

    A registered address becomes a contributor at once (inviting again changes the
    role); any other address is kept as a pending :class:`StackInvite` that the database
    turns into a contributor when it signs up. The answer, the statements run and the
    errors are the same either way, so it never tells whether an address has an account
    (public.stack_contributor_add, stylestacks/migrations/0006_stack_invites.py).

    Raises Http404 when ``user`` does not own the stack, ValidationError on ``email``
    for their own address (or one that is not an address), on ``role`` for a role that
    is neither viewer nor editor.
    """
    with rls.acting_as(user):
        address = call_function("stack_contributor_add", stack.pk, email, role)
    return Invitation(email=address, role=role)


@transaction.atomic
def invite_withdraw(*, invite: StackInvite, user) -> None:
    """Remove a pending invite: its address gets no access when it signs up. Only the
    stack's owner (PermissionDenied otherwise; RLS hides the row from anyone else)."""
    if stack_role(stack=invite.stack, user=user) != "owner":
        raise PermissionDenied("Only the owner manages invites.")
    invite.delete()


@transaction.atomic
def contributor_set_role(*, contributor: StackContributor, user, role: str) -> StackContributor:
    if stack_role(stack=contributor.stack, user=user) != "owner":
        raise PermissionDenied("Only the owner manages contributors.")
    if role not in StackContributor.Role.values:
        raise ValidationError({"role": "Role must be viewer or editor."})
    contributor.role = role
    contributor.save(update_fields=["role"])
    return contributor


@transaction.atomic
def contributor_remove(*, contributor: StackContributor, user) -> None:
    """The owner removes anyone; a contributor may remove themself (leave)."""
    if contributor.user_id != user.pk and stack_role(stack=contributor.stack, user=user) != "owner":
        raise PermissionDenied("Only the owner manages contributors.")
    contributor.delete()


def style_change_author_set(*, user) -> None:
    """Name ``user`` as the author of style changes for the rest of the transaction.

    The version triggers write ``changed_by`` from the API caller (``auth.uid()``); the
    admin runs as the owner connection with no caller, so it names the staff member in
    the transaction setting ``velro.style_changed_by`` instead (set_config(…, true) is
    SET LOCAL: it ends with the transaction).
    """
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('velro.style_changed_by', %s, true)", [str(user.pk)])
