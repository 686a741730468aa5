"""The admin's projects screen: list, search, the archived filter, edits through the
project services."""

from django.db import connection
from django.test.utils import CaptureQueriesContext

from generations.models import AIModel
from generations.services import generation_create
from projects.models import Project
from projects.services import project_create, project_delete

PROJECTS = "/admin/projects/project/"


def make_generation(user, project):
    return generation_create(
        user=user, ai_model=AIModel.objects.get(pk="fal-ai/flux/dev"), prompt="a red fox", project=project
    )


def archived_project(user, name):
    project = project_create(user=user, name=name)
    make_generation(user, project)
    return project_delete(project=project)  # has a generation, so it is archived


def shown(response) -> list[str]:
    assert response.status_code == 200
    return sorted(p.name for p in response.context["cl"].result_list)


def edit_data(project, **changes) -> dict:
    return {"name": project.name, "description": project.description, "visibility": project.visibility, **changes}


def test_the_project_list_searches_by_name_and_owner_email(alice, bob, staff, client):
    project_create(user=alice, name="Moodboard")
    project_create(user=alice, name="Portraits")
    project_create(user=bob, name="Bob's moods")
    client.force_login(staff)
    assert shown(client.get(PROJECTS)) == ["Bob's moods", "Moodboard", "Portraits"]
    assert shown(client.get(PROJECTS, {"q": "mood"})) == ["Bob's moods", "Moodboard"]
    assert shown(client.get(PROJECTS, {"q": "bob@example"})) == ["Bob's moods"]
    assert shown(client.get(PROJECTS, {"visibility__exact": "public"})) == []


def test_the_archived_filter(alice, staff, client):
    project_create(user=alice, name="Live")
    archived_project(alice, "Old")
    client.force_login(staff)
    assert shown(client.get(PROJECTS, {"archived": "yes"})) == ["Old"]
    assert shown(client.get(PROJECTS, {"archived": "no"})) == ["Live"]
    assert shown(client.get(PROJECTS)) == ["Live", "Old"]


def test_the_generation_count_links_to_the_projects_generations(alice, staff, client):
    project = project_create(user=alice, name="Foxes")
    generation = make_generation(alice, project)
    make_generation(alice, None)
    client.force_login(staff)
    listing = client.get(PROJECTS)
    link = f"/admin/generations/generation/?project={project.pk}"
    assert f'<a href="{link}">1</a>' in listing.content.decode()
    generations = client.get(link)
    assert [g.pk for g in generations.context["cl"].result_list] == [generation.pk]


def test_an_edit_saves_only_the_editable_columns(alice, staff, client):
    project = project_create(user=alice, name="Moodboard")
    client.force_login(staff)
    page = client.get(f"{PROJECTS}{project.pk}/change/")
    assert page.status_code == 200
    assert set(page.context["adminform"].form.fields) == {"name", "description", "visibility"}
    make_generation(alice, project)
    with CaptureQueriesContext(connection) as queries:
        response = client.post(
            f"{PROJECTS}{project.pk}/change/", edit_data(project, name="  Mood board ", visibility="public")
        )
    assert response.status_code == 302, response.context["adminform"].form.errors
    # The trigger owns the counter: a save that wrote it back could undo a generation
    # added by another request between this one's read and its write.
    updates = [q["sql"] for q in queries.captured_queries if q["sql"].startswith('UPDATE "projects"')]
    assert updates and not any("generation_count" in sql or "user_id" in sql for sql in updates)
    project = Project.objects.get(pk=project.pk)
    assert (project.name, project.visibility, project.generation_count) == ("Mood board", "public", 1)
    assert project.user_id == alice.pk


def test_a_name_the_owner_already_uses_is_an_error_on_the_field(alice, staff, client):
    project_create(user=alice, name="Moodboard")
    project = project_create(user=alice, name="Portraits")
    client.force_login(staff)
    response = client.post(f"{PROJECTS}{project.pk}/change/", edit_data(project, name="MOODBOARD"))
    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"name": ["This user already has a project with this name."]}
    assert Project.objects.get(pk=project.pk).name == "Portraits"


def test_staff_can_add_a_project_for_a_user(alice, staff, client):
    client.force_login(staff)
    data = {"user": str(alice.pk), "name": "From support", "description": "", "visibility": "private"}
    response = client.post(f"{PROJECTS}add/", data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    project = Project.objects.get(user=alice, name="From support")
    assert project.generation_count == 0
    duplicate = client.post(f"{PROJECTS}add/", {**data, "name": "from SUPPORT"})
    assert duplicate.status_code == 200
    assert "name" in duplicate.context["adminform"].form.errors


def test_projects_are_deleted_or_archived_through_the_service(alice, staff, client):
    empty = project_create(user=alice, name="Empty")
    used = project_create(user=alice, name="Used")
    generation = make_generation(alice, used)
    client.force_login(staff)
    assert client.post(f"{PROJECTS}{used.pk}/delete/").status_code == 403  # no plain delete
    response = client.post(
        PROJECTS, {"action": "delete_or_archive", "_selected_action": [str(empty.pk), str(used.pk)]}, follow=True
    )
    assert [str(m) for m in response.context["messages"]] == ["Deleted 1 empty project(s), archived 1."]
    assert not Project.objects.filter(pk=empty.pk).exists()
    used.refresh_from_db()
    assert used.archived_at is not None
    generation.refresh_from_db()
    assert generation.project_id == used.pk  # the generation keeps its project

    response = client.post(PROJECTS, {"action": "restore", "_selected_action": [str(used.pk)]}, follow=True)
    assert [str(m) for m in response.context["messages"]] == ["Restored 1 project(s)."]
    used.refresh_from_db()
    assert used.archived_at is None
