"""RLS and grants for projects, the catalog and generations, as the API roles see them."""

import pytest
from django.db import DatabaseError, ProgrammingError, transaction

from accounts.models import Profile
from generations.models import AIModel, Generation
from generations.services import generation_create
from projects.models import Project
from projects.services import project_create
from tests.conftest import as_role


@pytest.fixture
def alices(alice):
    project = project_create(user=alice, name="Alice's", visibility="private")
    generation = generation_create(user=alice, ai_model=AIModel.objects.get(pk="fal-ai/flux/dev"), prompt="x")
    return project, generation


@pytest.mark.parametrize(
    "assignment",
    [
        "status = 'completed'",
        "credits_charged = 0",
        'outputs = \'[{"url": "x"}]\'',
        "provider_request_id = 'x'",
        "error_message = ''",
        "user_id = user_id",
        "storage_bytes = 0",
    ],
)
def test_the_owner_cannot_write_server_owned_generation_columns(alices, alice, assignment):
    _, generation = alices
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("authenticated", alice) as cursor:
        cursor.execute(f"UPDATE public.generations SET {assignment} WHERE id = %s", [generation.pk])


def test_the_owner_may_delete_only_their_finished_generations(alices, alice, bob):
    """Issue 15: DELETE for the owner, of a completed, failed or cancelled row only."""
    _, pending = alices
    with as_role("authenticated", alice) as cursor:
        cursor.execute("DELETE FROM public.generations WHERE id = %s", [pending.pk])
        assert cursor.rowcount == 0  # pending: cancel first
    Generation.objects.filter(pk=pending.pk).update(status="processing")
    with as_role("authenticated", alice) as cursor:
        cursor.execute("DELETE FROM public.generations WHERE id = %s", [pending.pk])
        assert cursor.rowcount == 0  # the worker's
    Generation.objects.filter(pk=pending.pk).update(status="completed")
    with as_role("authenticated", bob) as cursor:
        cursor.execute("DELETE FROM public.generations WHERE id = %s", [pending.pk])
        assert cursor.rowcount == 0  # not his
    with as_role("authenticated", alice) as cursor:
        cursor.execute("DELETE FROM public.generations WHERE id = %s", [pending.pk])
        assert cursor.rowcount == 1
    assert not Generation.objects.filter(pk=pending.pk).exists()


def test_storage_bytes_follow_the_rows_by_trigger(alices, alice):
    _, generation = alices
    Generation.objects.filter(pk=generation.pk).update(storage_bytes=1500)
    assert Profile.objects.get(pk=alice.pk).storage_bytes == 1500
    Generation.objects.filter(pk=generation.pk).update(storage_bytes=2000, status="completed")
    assert Profile.objects.get(pk=alice.pk).storage_bytes == 2000
    with as_role("authenticated", alice) as cursor:
        cursor.execute("DELETE FROM public.generations WHERE id = %s", [generation.pk])
    assert Profile.objects.get(pk=alice.pk).storage_bytes == 0


def test_the_owner_cannot_insert_generations_directly(alices, alice):
    _, generation = alices
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("authenticated", alice) as cursor:
        cursor.execute(
            "INSERT INTO public.generations (user_id, ai_model_id, prompt, status, credits_charged) "
            "VALUES (%s, 'fal-ai/flux/dev', 'free', 'pending', 0)",
            [alice.pk],
        )


def test_the_api_role_cannot_call_credits_apply(alice):
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("authenticated", alice) as cursor:
        cursor.execute("SELECT public.credits_apply(%s, 1000000, 'grant')", [alice.pk])
    assert Profile.objects.get(pk=alice.pk).credits_balance == 100


def test_generation_create_charges_the_caller_never_a_chosen_user(alice, bob):
    with as_role("authenticated", alice) as cursor:
        cursor.execute("SELECT id FROM public.generation_create('fal-ai/flux/dev', 'mine')")
        (generation_id,) = cursor.fetchone()
    generation = Generation.objects.get(pk=generation_id)
    assert (generation.user_id, generation.credits_charged) == (alice.pk, 25)
    assert Profile.objects.get(pk=alice.pk).credits_balance == 75
    assert Profile.objects.get(pk=bob.pk).credits_balance == 100


def test_generation_create_as_anon_or_without_claims_is_refused(db, sql):
    with pytest.raises(DatabaseError), as_role("anon") as cursor:
        cursor.execute("SELECT public.generation_create('fal-ai/flux/dev', 'x')")
    with pytest.raises(DatabaseError, match="Sign in"), transaction.atomic():
        sql("SELECT public.generation_create('fal-ai/flux/dev', 'x')")


def test_generation_create_refuses_someone_elses_project(alices, bob):
    project, _ = alices
    with pytest.raises(DatabaseError, match="No such project"), as_role("authenticated", bob) as cursor:
        cursor.execute("SELECT public.generation_create('fal-ai/flux/dev', 'x', '', '{}', %s)", [project.pk])


def test_generation_cancel_cannot_touch_someone_elses(alices, bob):
    _, generation = alices
    with pytest.raises(DatabaseError, match="Not found"), as_role("authenticated", bob) as cursor:
        cursor.execute("SELECT public.generation_cancel(%s)", [generation.pk])
    assert Generation.objects.get(pk=generation.pk).status == "pending"


def test_generations_are_visible_to_their_owner_only(alices, alice, bob):
    for user, expected in ((alice, 1), (bob, 0)):
        with as_role("authenticated", user) as cursor:
            cursor.execute("SELECT count(*) FROM public.generations")
            assert cursor.fetchone()[0] == expected
    with pytest.raises(ProgrammingError), as_role("anon") as cursor:
        cursor.execute("SELECT count(*) FROM public.generations")


def test_the_owner_may_mark_a_favourite(alices, alice):
    _, generation = alices
    with as_role("authenticated", alice) as cursor:
        cursor.execute("UPDATE public.generations SET is_favorite = true WHERE id = %s", [generation.pk])
        assert cursor.rowcount == 1


def test_projects_public_rows_are_readable_private_ones_are_not(alices, alice, bob):
    project_create(user=alice, name="Shown", visibility="public")
    for role, user in (("authenticated", bob), ("anon", None)):
        with as_role(role, user) as cursor:
            cursor.execute("SELECT name FROM public.projects")
            assert cursor.fetchall() == [("Shown",)]


def test_projects_counter_and_timestamps_cannot_be_forged(alice):
    with as_role("authenticated", alice) as cursor:
        cursor.execute(
            "INSERT INTO public.projects (user_id, name, generation_count, created_at) "
            "VALUES (%s, 'Forged', 999, '2000-01-01') "
            "RETURNING generation_count, created_at > now() - interval '1 hour'",
            [alice.pk],
        )
        assert cursor.fetchone() == (0, True)
    project = Project.objects.get(name="Forged")
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("authenticated", alice) as cursor:
        cursor.execute("UPDATE public.projects SET generation_count = 5 WHERE id = %s", [project.pk])


def test_nobody_can_insert_a_project_for_someone_else(alice, bob):
    with pytest.raises(ProgrammingError, match="row-level security"), as_role("authenticated", bob) as cursor:
        cursor.execute("INSERT INTO public.projects (user_id, name) VALUES (%s, 'Not yours')", [alice.pk])


def test_the_project_counter_follows_generations(alices, alice):
    project, generation = alices
    Generation.objects.filter(pk=generation.pk).update(project=project)
    assert Project.objects.get(pk=project.pk).generation_count == 1
    other = project_create(user=alice, name="Other")
    Generation.objects.filter(pk=generation.pk).update(project=other)
    assert Project.objects.get(pk=project.pk).generation_count == 0
    assert Project.objects.get(pk=other.pk).generation_count == 1


def test_the_catalog_shows_active_models_to_everyone(db):
    AIModel.objects.filter(pk="fal-ai/flux/dev").update(is_active=False)
    total_active = AIModel.objects.filter(is_active=True).count()
    for role in ("anon", "authenticated"):
        with as_role(role) as cursor:
            cursor.execute("SELECT count(*), bool_and(is_active) FROM public.ai_models")
            assert cursor.fetchone() == (total_active, True)
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("authenticated") as cursor:
        cursor.execute("UPDATE public.ai_models SET credits_cost = 1")
