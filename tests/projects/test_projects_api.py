"""/api/v1/projects: a person's folders of generations."""

import datetime
import uuid

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from accounts.models import Profile
from generations.models import AIModel, Generation
from generations.services import generation_create
from projects.models import Project
from projects.services import project_create, project_delete

URL = "/api/v1/projects"
FIELDS = {
    "id",
    "name",
    "description",
    "visibility",
    "generation_count",
    "is_owner",
    "created_at",
    "updated_at",
    "archived_at",
}


def detail(project) -> str:
    return f"{URL}/{project.pk}"


def make_project(user, name="Moodboard", **kwargs) -> Project:
    return project_create(user=user, name=name, **kwargs)


def make_generation(user, project=None) -> Generation:
    return generation_create(
        user=user, ai_model=AIModel.objects.get(pk="fal-ai/flux/dev"), prompt="a red fox in snow", project=project
    )


def row(project) -> dict:
    """The project's row as the owner connection sees it (RLS does not apply)."""
    return Project.objects.filter(pk=project.pk).values().get()


def balance(user) -> int:
    return Profile.objects.get(pk=user.pk).credits_balance


# --- anonymous ---------------------------------------------------------------------


@pytest.mark.parametrize(("method", "body"), [("get", None), ("post", {"name": "Anon project"})])
def test_anonymous_is_a_401_on_list_and_create(db, api, method, body):
    response = getattr(api, method)(URL, body, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"
    assert not Project.objects.exists()


# --- create --------------------------------------------------------------------------


def test_create_returns_the_new_project(alice, api_as):
    response = api_as(alice).post(
        URL, {"name": "Spring campaign", "description": "Shots for April", "visibility": "public"}, format="json"
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == FIELDS
    assert (body["name"], body["description"], body["visibility"]) == ("Spring campaign", "Shots for April", "public")
    assert (body["generation_count"], body["is_owner"], body["archived_at"]) == (0, True, None)
    assert body["created_at"] and body["updated_at"]
    project = Project.objects.get(pk=body["id"])
    assert (project.user_id, project.name, project.visibility) == (alice.pk, "Spring campaign", "public")


def test_create_defaults_to_private_and_trims_the_name(alice, api_as):
    response = api_as(alice).post(URL, {"name": "  Drafts  "}, format="json")
    assert response.status_code == 201, response.content
    assert (response.json()["name"], response.json()["visibility"], response.json()["description"]) == (
        "Drafts",
        "private",
        "",
    )


def test_a_name_of_120_characters_is_accepted(alice, api_as):
    response = api_as(alice).post(URL, {"name": "x" * 120}, format="json")
    assert response.status_code == 201, response.content
    assert Project.objects.get(pk=response.json()["id"]).name == "x" * 120


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"generation_count": 5}, "This field is read-only."),
        ({"generation_count": 0}, "This field is read-only."),
        ({"archived_at": "2024-01-01T00:00:00Z"}, "This field is read-only."),
        ({"id": "00000000-0000-0000-0000-000000000001"}, "This field is read-only."),
        ({"created_at": "2024-01-01T00:00:00Z"}, "This field is read-only."),
        ({"is_owner": False}, "This field is read-only."),
        ({"user": "00000000-0000-0000-0000-000000000001"}, "Unknown field."),
    ],
)
def test_server_owned_fields_on_create_are_a_400_and_nothing_is_created(alice, api_as, extra, message):
    response = api_as(alice).post(URL, {"name": "Sneaky", **extra}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    (field,) = extra
    assert body["errors"] == {field: [message]}
    assert not Project.objects.exists()


@pytest.mark.parametrize("name", ["Moodboard", "moodboard", "MOODBOARD", "  mOoDbOaRd "])
def test_a_duplicate_name_is_a_400_compared_case_insensitively(alice, api_as, name):
    make_project(alice, "Moodboard")
    response = api_as(alice).post(URL, {"name": name}, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert response.json()["errors"] == {"name": ["You already have a project with this name."]}
    assert Project.objects.filter(user=alice).count() == 1


def test_names_are_unique_per_owner_only(alice, bob, api_as):
    make_project(alice, "Moodboard")
    response = api_as(bob).post(URL, {"name": "moodboard"}, format="json")
    assert response.status_code == 201, response.content
    assert Project.objects.get(pk=response.json()["id"]).user_id == bob.pk


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": ""}, "name"),
        ({"name": "   "}, "name"),
        ({"name": "x" * 121}, "name"),
        ({"name": None}, "name"),
        ({}, "name"),
        ({"name": "Ok", "visibility": "secret"}, "visibility"),
        ({"name": "Ok", "visibility": ""}, "visibility"),
        ({"name": "Ok", "visibility": "PUBLIC"}, "visibility"),
        ({"name": "Ok", "description": "d" * 501}, "description"),
    ],
)
def test_invalid_input_is_a_400_on_the_field_and_nothing_is_created(alice, api_as, body, field):
    response = api_as(alice).post(URL, body, format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == [field]
    assert not Project.objects.exists()


# --- list and filters ----------------------------------------------------------------


@pytest.fixture
def alices_projects(alice, bob):
    """Three of alice's projects with distinct creation times (inside one test
    transaction the database would give them all the same ``now()``), and one of bob's."""
    base = timezone.now() - datetime.timedelta(days=3)
    names = [("Oldest Sketches", "private"), ("Middle Public Shots", "public"), ("Newest sketches", "private")]
    projects = []
    for offset, (name, visibility) in enumerate(names):
        project = make_project(alice, name, visibility=visibility)
        Project.objects.filter(pk=project.pk).update(created_at=base + datetime.timedelta(hours=offset))
        projects.append(project)
    make_project(bob, "Bob's public sketches", visibility="public")
    return projects


def ids(response) -> list[str]:
    return [item["id"] for item in response.json()["results"]]


def test_list_shows_only_your_projects_newest_first(alice, api_as, alices_projects):
    oldest, middle, newest = alices_projects
    response = api_as(alice).get(URL)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3
    assert ids(response) == [str(newest.pk), str(middle.pk), str(oldest.pk)]
    assert all(item["is_owner"] for item in body["results"])
    assert set(body["results"][0]) == FIELDS


def test_list_is_paginated(alice, api_as, alices_projects):
    oldest, middle, newest = alices_projects
    client = api_as(alice)
    first = client.get(URL, {"page_size": 2})
    assert first.status_code == 200
    assert (first.json()["count"], ids(first)) == (3, [str(newest.pk), str(middle.pk)])
    assert first.json()["next"]
    second = client.get(URL, {"page_size": 2, "page": 2})
    assert (second.json()["count"], ids(second), second.json()["next"]) == (3, [str(oldest.pk)], None)


def test_a_page_past_the_end_is_a_404(alice, api_as, alices_projects):
    response = api_as(alice).get(URL, {"page": 9})
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_filter_by_visibility(alice, api_as, alices_projects):
    oldest, middle, newest = alices_projects
    client = api_as(alice)
    assert ids(client.get(URL, {"visibility": "public"})) == [str(middle.pk)]
    assert ids(client.get(URL, {"visibility": "private"})) == [str(newest.pk), str(oldest.pk)]


def test_filter_by_an_unknown_visibility_is_a_400(alice, api_as, alices_projects):
    response = api_as(alice).get(URL, {"visibility": "secret"})
    assert response.status_code == 400
    assert "visibility" in response.json()["errors"]


@pytest.mark.parametrize(
    ("q", "expected"),
    [("sketch", ["Newest sketches", "Oldest Sketches"]), ("SHOTS", ["Middle Public Shots"]), ("nothing", [])],
)
def test_filter_q_is_name_contains_case_insensitive(alice, api_as, alices_projects, q, expected):
    response = api_as(alice).get(URL, {"q": q})
    assert response.status_code == 200
    assert [item["name"] for item in response.json()["results"]] == expected


def test_filter_by_archived(alice, api_as, alices_projects):
    oldest, middle, newest = alices_projects
    make_generation(alice, project=middle)
    assert project_delete(project=Project.objects.get(pk=middle.pk)) is not None  # archived, not deleted
    client = api_as(alice)
    archived = client.get(URL, {"archived": "true"})
    assert ids(archived) == [str(middle.pk)]
    assert archived.json()["results"][0]["archived_at"] is not None
    assert ids(client.get(URL, {"archived": "false"})) == [str(newest.pk), str(oldest.pk)]
    assert ids(client.get(URL)) == [str(newest.pk), str(middle.pk), str(oldest.pk)]


# --- retrieve and update -------------------------------------------------------------


def test_retrieve_your_project(alice, api_as):
    project = make_project(alice, "Mine", description="notes")
    response = api_as(alice).get(detail(project))
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["name"], body["description"], body["is_owner"]) == (str(project.pk), "Mine", "notes", True)


def test_retrieve_an_unknown_or_malformed_id_is_a_404(alice, api_as):
    client = api_as(alice)
    for path in (f"{URL}/{uuid.uuid4()}", f"{URL}/not-a-uuid"):
        response = client.get(path)
        assert response.status_code == 404, path
        assert response.json()["code"] == "not_found"


def test_patch_changes_name_description_and_visibility(alice, api_as):
    project = make_project(alice, "Before")
    response = api_as(alice).patch(
        detail(project), {"name": " After ", "description": "New notes", "visibility": "public"}, format="json"
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["name"], body["description"], body["visibility"], body["is_owner"]) == (
        "After",
        "New notes",
        "public",
        True,
    )
    saved = row(project)
    assert (saved["name"], saved["description"], saved["visibility"]) == ("After", "New notes", "public")


def test_patch_can_change_only_the_case_of_its_own_name(alice, api_as):
    project = make_project(alice, "moodboard")
    response = api_as(alice).patch(detail(project), {"name": "Moodboard"}, format="json")
    assert response.status_code == 200, response.content
    assert row(project)["name"] == "Moodboard"


def test_patch_to_the_name_of_another_of_your_projects_is_a_400(alice, api_as):
    make_project(alice, "Moodboard")
    project = make_project(alice, "Other")
    response = api_as(alice).patch(detail(project), {"name": "MOODBOARD"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"name": ["You already have a project with this name."]}
    assert row(project)["name"] == "Other"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"generation_count": 7}, "generation_count"),
        ({"archived_at": "2024-01-01T00:00:00Z"}, "archived_at"),
        ({"archived_at": None}, "archived_at"),
        ({"name": "Renamed", "generation_count": 0}, "generation_count"),
        ({"id": "00000000-0000-0000-0000-000000000001"}, "id"),
        ({"updated_at": "2024-01-01T00:00:00Z"}, "updated_at"),
        ({"name": ""}, "name"),
        ({"name": "y" * 121}, "name"),
        ({"visibility": "everyone"}, "visibility"),
    ],
)
def test_patch_of_server_owned_fields_or_bad_values_is_a_400_and_nothing_changes(alice, api_as, body, field):
    project = make_project(alice, "Stable")
    before = row(project)
    response = api_as(alice).patch(detail(project), body, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert row(project) == before


# --- delete, archive, restore --------------------------------------------------------


def test_delete_of_an_empty_project_removes_it(alice, api_as):
    project = make_project(alice, "Empty")
    response = api_as(alice).delete(detail(project))
    assert response.status_code == 204
    assert not Project.objects.filter(pk=project.pk).exists()
    assert api_as(alice).get(detail(project)).status_code == 404


def test_delete_of_a_project_with_a_generation_archives_it(alice, api_as):
    project = make_project(alice, "Busy")
    generation = make_generation(alice, project=project)
    client = api_as(alice)
    response = client.delete(detail(project))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"] == str(project.pk)
    assert body["archived_at"] is not None
    assert body["generation_count"] == 1
    saved = row(project)
    assert saved["archived_at"] is not None
    assert Generation.objects.get(pk=generation.pk).project_id == project.pk
    # Deleting again keeps it archived (and does not move the archive time).
    again = client.delete(detail(project))
    assert again.status_code == 200
    assert row(project)["archived_at"] == saved["archived_at"]


def test_restore_unarchives(alice, api_as):
    project = make_project(alice, "Busy")
    make_generation(alice, project=project)
    client = api_as(alice)
    assert client.delete(detail(project)).status_code == 200
    response = client.post(f"{detail(project)}/restore", format="json")
    assert response.status_code == 200, response.content
    assert response.json()["archived_at"] is None
    assert row(project)["archived_at"] is None
    assert client.get(URL, {"archived": "false"}).json()["count"] == 1


def test_restore_of_a_project_that_is_not_archived_changes_nothing(alice, api_as):
    project = make_project(alice, "Live")
    before = row(project)
    response = api_as(alice).post(f"{detail(project)}/restore", format="json")
    assert response.status_code == 200
    assert response.json()["archived_at"] is None
    assert row(project) == before


# --- generations in projects ---------------------------------------------------------


def test_generation_count_follows_generations_created_through_the_api(alice, api_as):
    project = make_project(alice, "Counted")
    client = api_as(alice)
    response = client.post(
        "/api/v1/generations",
        {"ai_model": "fal-ai/flux/dev", "prompt": "a lighthouse at dusk", "project": str(project.pk)},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert response.json()["project"] == str(project.pk)
    assert row(project)["generation_count"] == 1
    assert client.get(detail(project)).json()["generation_count"] == 1
    make_generation(alice, project=project)
    assert client.get(detail(project)).json()["generation_count"] == 2


def test_no_generation_can_be_created_in_an_archived_project(alice, api_as):
    project = make_project(alice, "Archived")
    make_generation(alice, project=project)
    client = api_as(alice)
    assert client.delete(detail(project)).status_code == 200
    before_balance, before_count = balance(alice), Generation.objects.count()

    response = client.post(
        "/api/v1/generations",
        {"ai_model": "fal-ai/flux/dev", "prompt": "one more", "project": str(project.pk)},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"
    assert list(response.json()["errors"]) == ["project"]
    assert (balance(alice), Generation.objects.count(), row(project)["generation_count"]) == (
        before_balance,
        before_count,
        1,
    )

    with pytest.raises(ValidationError) as info:
        make_generation(alice, project=Project.objects.get(pk=project.pk))
    assert "project" in info.value.message_dict
    assert Generation.objects.count() == before_count


# --- other people's projects ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("get", "", None),
        ("patch", "", {"name": "Taken over"}),
        ("put", "", {"name": "Taken over", "description": "", "visibility": "public"}),
        ("delete", "", None),
        ("post", "/restore", None),
    ],
)
def test_bob_gets_a_404_for_alices_private_project_and_nothing_changes(alice, bob, api_as, method, suffix, body):
    project = make_project(alice, "Alice private", description="hers")
    make_generation(alice, project=project)
    project_delete(project=Project.objects.get(pk=project.pk))  # archived: restore would change it
    before = row(project)
    assert before["archived_at"] is not None

    response = getattr(api_as(bob), method)(detail(project) + suffix, body, format="json")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}
    assert row(project) == before


def test_bob_can_retrieve_alices_public_project_read_only(alice, bob, api_as):
    project = make_project(alice, "Alice public", visibility="public")
    response = api_as(bob).get(detail(project))
    assert response.status_code == 200
    assert (response.json()["id"], response.json()["is_owner"]) == (str(project.pk), False)
    # But it is not in his list.
    assert api_as(bob).get(URL).json()["count"] == 0


@pytest.mark.parametrize(
    ("method", "suffix", "body"),
    [
        ("patch", "", {"name": "Taken over", "visibility": "private"}),
        ("put", "", {"name": "Taken over", "description": "", "visibility": "private"}),
        ("delete", "", None),
        ("post", "/restore", None),
    ],
)
def test_bob_cannot_change_alices_public_project(alice, bob, api_as, method, suffix, body):
    project = make_project(alice, "Alice public", visibility="public")
    before = row(project)
    response = getattr(api_as(bob), method)(detail(project) + suffix, body, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
    assert row(project) == before


def test_bob_cannot_create_a_generation_in_alices_project(alice, bob, api_as):
    project = make_project(alice, "Alice public", visibility="public")
    response = api_as(bob).post(
        "/api/v1/generations",
        {"ai_model": "fal-ai/flux/dev", "prompt": "intruder", "project": str(project.pk)},
        format="json",
    )
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["project"]
    assert row(project)["generation_count"] == 0
    assert (Generation.objects.count(), balance(bob)) == (0, 100)
