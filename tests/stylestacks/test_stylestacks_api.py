"""/api/v1/style-stacks and /api/v1/presets: style stacks, sharing, versions, compose,
the preset library, and generations made with a style."""

import copy
import datetime
import uuid

import pytest
from django.utils import timezone

from accounts.models import Profile
from generations.models import Generation
from stylestacks.models import StackContributor, StylePreset, StyleStack, StyleStackVersion
from stylestacks.schema import STYLE_SCHEMA, validate_document
from stylestacks.services import stylestack_create
from tests.factories import UserFactory
from tests.stylestacks.test_schema import NOIR_OLD, NOIR_V2

API = "/api/v1/"
URL = API + "style-stacks"
EXPLORE = URL + "/explore"
PRESETS = API + "presets"
GENERATIONS = API + "generations"
FLUX = "fal-ai/flux/dev"
VEO = "fal-ai/veo3"
NOIR_STYLE_TEXT = NOIR_V2["prompt_blocks"]["style"]["text"]  # "high-contrast black and white"

PASTEL = {"schema_version": 2, "prompt_blocks": {"style": {"text": "soft pastel watercolour"}}}
NEON = {"schema_version": 2, "prompt_blocks": {"style": {"text": "neon-soaked cyberpunk night"}}}
STACK_FIELDS = {
    "id",
    "name",
    "description",
    "tags",
    "category",
    "visibility",
    "style",
    "compatible_models",
    "version",
    "parent",
    "created_from",
    "created_from_preset",
    "usage_count",
    "fork_count",
    "last_used_at",
    "is_featured",
    "is_marketplace",
    "price_credits",
    "role",
    "created_at",
    "updated_at",
}


# --- helpers ---------------------------------------------------------------------------


def detail(stack) -> str:
    return f"{URL}/{stack.pk}"


def make_stack(user, name="Noir", style=None, **kwargs) -> StyleStack:
    return stylestack_create(user=user, name=name, style=copy.deepcopy(style or NOIR_V2), **kwargs)


def share(stack, user, role) -> StackContributor:
    return StackContributor.objects.create(stack=stack, user=user, role=role, email=user.email, invited_by=stack.user)


def row(stack) -> dict:
    """The stack's row as the owner connection sees it (RLS does not apply)."""
    return StyleStack.objects.filter(pk=stack.pk).values().get()


def ids(body) -> list[str]:
    items = body["results"] if isinstance(body, dict) else body
    return [item["id"] for item in items]


def balance(user) -> int:
    return Profile.objects.get(pk=user.pk).credits_balance


def errors_of(response) -> dict:
    assert response.status_code == 400, response.content
    data = response.json()
    assert data["code"] == "invalid"
    return data["errors"]


@pytest.fixture
def carol(db):
    return UserFactory(email="carol@example.com", raw_user_meta_data={"full_name": "Carol Third"})


@pytest.fixture
def preset(db):
    return StylePreset.objects.create(
        slug="t-noir-classic",
        name="Noir classic",
        category="cinematic",
        subcategory="noir",
        description="Shadows, rain and hard light.",
        style=validate_document(NOIR_V2),
        tags=["noir", "rain"],
        recommended_models=[FLUX],
        sort_order=1,
    )


# --- anonymous -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("get", URL), ("post", URL), ("get", EXPLORE), ("post", URL + "/from-preset")],
)
def test_anonymous_is_a_401_for_stacks(db, api, method, path):
    response = getattr(api, method)(path, {"name": "Anon"} if method == "post" else None, format="json")
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_the_schema_is_served_without_auth_and_is_the_schema(db, api):
    response = api.get(URL + "/schema")
    assert response.status_code == 200
    assert response.json() == STYLE_SCHEMA
    assert response.json()["$id"] == "urn:velro:style-document:2"


# --- create ----------------------------------------------------------------------------


def test_create_upgrades_an_old_shape_document_and_normalises_tags(alice, api_as):
    response = api_as(alice).post(
        URL,
        {"name": "  Noir  ", "style": NOIR_OLD, "tags": ["Noir", " RAIN ", "noir"], "category": "cinematic"},
        format="json",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == STACK_FIELDS
    assert body["style"]["schema_version"] == 2
    assert body["style"] == validate_document(NOIR_V2)
    assert body["style"]["prompt_blocks"]["style"] == {"text": NOIR_STYLE_TEXT, "weight": 1.0, "enabled": True}
    assert body["style"]["model_adaptations"][VEO] == {"prompt_blocks": {"motion": {"text": "slow dolly through rain"}}}
    assert (body["name"], body["tags"], body["category"]) == ("Noir", ["noir", "rain"], "cinematic")
    assert (body["visibility"], body["version"], body["role"], body["created_from"]) == (
        "private",
        1,
        "owner",
        "manual",
    )
    stored = StyleStack.objects.get(pk=body["id"])
    assert (stored.user_id, stored.style, stored.tags) == (alice.pk, body["style"], ["noir", "rain"])


def test_create_with_a_minimal_body(alice, api_as):
    response = api_as(alice).post(URL, {"name": "Empty"}, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["style"] == {"schema_version": 2}


@pytest.mark.parametrize(
    ("style", "path"),
    [
        (
            {"schema_version": 2, "persistent_elements": [{"type": "character", "description": "x", "weight": 3}]},
            "persistent_elements[0].weight",
        ),
        ({"schema_version": 2, "prompt_blocks": {"style": {"txt": "typo"}}}, "prompt_blocks.style"),
        ({"prompt_blocks": {"colour": "red"}}, "prompt_blocks"),
        ({"schema_version": 3}, "schema_version"),
        (
            {"schema_version": 2, "model_adaptations": {VEO: {"prompt_blocks": {"motion": {"weight": 9}}}}},
            'model_adaptations["fal-ai/veo3"].prompt_blocks.motion.weight',
        ),
    ],
)
def test_an_invalid_document_is_a_400_naming_the_json_path(alice, api_as, style, path):
    response = api_as(alice).post(URL, {"name": "Broken", "style": style}, format="json")
    errors = errors_of(response)
    assert list(errors) == ["style"]
    assert any(message.startswith(f"{path}:") for message in errors["style"]), errors
    assert not StyleStack.objects.filter(user=alice).exists()


@pytest.mark.parametrize("style", [["not", "an", "object"], "noir", 7])
def test_a_style_that_is_not_an_object_is_a_400(alice, api_as, style):
    assert list(errors_of(api_as(alice).post(URL, {"name": "X", "style": style}, format="json"))) == ["style"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("id", str(uuid.uuid4())),
        ("usage_count", 99),
        ("fork_count", 5),
        ("version", 7),
        ("last_used_at", "2030-01-01T00:00:00Z"),
        ("is_featured", True),
        ("is_marketplace", True),
        ("price_credits", 10),
        ("parent", str(uuid.uuid4())),
        ("created_from", "fork"),
        ("created_from_preset", str(uuid.uuid4())),
        ("created_at", "2000-01-01T00:00:00Z"),
        ("role", "owner"),
    ],
)
def test_server_owned_fields_are_a_400_read_only(alice, api_as, field, value):
    response = api_as(alice).post(URL, {"name": "Sneaky", field: value}, format="json")
    assert errors_of(response) == {field: ["This field is read-only."]}
    assert not StyleStack.objects.filter(user=alice).exists()


def test_unknown_fields_and_bad_values_are_400s_by_field(alice, api_as):
    client = api_as(alice)
    assert errors_of(client.post(URL, {"name": "X", "owner": "bob"}, format="json")) == {"owner": ["Unknown field."]}
    assert list(errors_of(client.post(URL, {"name": "X", "category": "artistic"}, format="json"))) == ["category"]
    assert list(errors_of(client.post(URL, {"name": "X", "visibility": "secret"}, format="json"))) == ["visibility"]
    assert list(errors_of(client.post(URL, {"name": ""}, format="json"))) == ["name"]
    assert list(errors_of(client.post(URL, {"name": "X", "tags": [f"t{i}" for i in range(21)]}, format="json"))) == [
        "tags"
    ]
    assert not StyleStack.objects.filter(user=alice).exists()


# --- list and retrieve -----------------------------------------------------------------


def test_the_list_is_own_and_shared_never_others_public(alice, bob, carol, api_as):
    mine = make_stack(alice, "Mine")
    mine_public = make_stack(alice, "Mine public", visibility="public")
    shared = make_stack(bob, "Bob shares", visibility="private")
    share(shared, alice, "viewer")
    make_stack(bob, "Bob public", visibility="public")
    make_stack(bob, "Bob unlisted", visibility="unlisted")
    make_stack(carol, "Carol private")

    response = api_as(alice).get(URL)

    assert response.status_code == 200
    body = response.json()
    assert sorted(ids(body)) == sorted(str(s.pk) for s in (mine, mine_public, shared))
    assert body["count"] == 3
    roles = {item["name"]: item["role"] for item in body["results"]}
    assert roles == {"Mine": "owner", "Mine public": "owner", "Bob shares": "viewer"}
    assert all("style" not in item for item in body["results"])  # lists leave the document out
    assert ids(api_as(alice).get(URL + "?visibility=public").json()) == [str(mine_public.pk)]


def test_public_and_unlisted_stacks_are_retrievable_by_anyone_signed_in(alice, bob, api, api_as):
    public = make_stack(alice, "Public", visibility="public")
    unlisted = make_stack(alice, "Unlisted", visibility="unlisted")
    private = make_stack(alice, "Private")
    client = api_as(bob)
    for stack in (public, unlisted):
        response = client.get(detail(stack))
        assert response.status_code == 200, response.content
        assert (response.json()["id"], response.json()["role"]) == (str(stack.pk), None)
        assert response.json()["style"] == stack.style
        assert api.get(detail(stack)).status_code == 401
    assert client.get(detail(private)).json() == {"detail": "Not found.", "code": "not_found"}
    assert client.get(detail(private)).status_code == 404
    assert api_as(alice).get(detail(private)).json()["role"] == "owner"


def test_a_contributor_retrieves_a_private_stack_with_their_role(alice, bob, carol, api_as):
    stack = make_stack(alice)
    share(stack, bob, "editor")
    share(stack, carol, "viewer")
    assert api_as(bob).get(detail(stack)).json()["role"] == "editor"
    assert api_as(carol).get(detail(stack)).json()["role"] == "viewer"


# --- explore ---------------------------------------------------------------------------


@pytest.fixture
def gallery(alice, bob):
    """Public stacks with counters and dates set by the owner connection, plus an
    unlisted and a private one that explore must never show."""
    now = timezone.now()

    def public(user, name, *, usage=0, forks=0, featured=False, age_days=0, **kwargs):
        stack = make_stack(user, name, visibility="public", **kwargs)
        StyleStack.objects.filter(pk=stack.pk).update(
            usage_count=usage,
            fork_count=forks,
            is_featured=featured,
            created_at=now - datetime.timedelta(days=age_days),
        )
        return stack

    stacks = {
        "rain": public(
            alice,
            "Rainy alley noir",
            usage=5,
            forks=1,
            age_days=3,
            tags=["noir", "rain"],
            category="cinematic",
            description="Detectives in the rain",
        ),
        "sun": public(bob, "Sunny beach", usage=50, forks=0, age_days=1, tags=["summer"], category="photographic"),
        "pick": public(bob, "Staff pick", usage=1, forks=0, featured=True, age_days=9, tags=["noir"]),
        "forked": public(alice, "Much forked", usage=2, forks=30, age_days=0, tags=["rain"], category="cinematic"),
    }
    hidden = {
        "unlisted": make_stack(alice, "Rainy unlisted noir", visibility="unlisted", tags=["noir", "rain"]),
        "private": make_stack(alice, "Rainy private noir", tags=["noir", "rain"]),
    }
    return {name: str(stack.pk) for name, stack in {**stacks, **hidden}.items()}


def explore(client, query=""):
    response = client.get(EXPLORE + query)
    assert response.status_code == 200, response.content
    return response.json()


def names(gallery, body) -> list[str]:
    by_id = {pk: name for name, pk in gallery.items()}
    return [by_id.get(pk, pk) for pk in ids(body)]


def test_explore_lists_public_stacks_only_featured_first_then_by_usage(gallery, carol, api_as):
    body = explore(api_as(carol))
    assert names(gallery, body) == ["pick", "sun", "rain", "forked"]
    assert body["count"] == 4
    assert all("style" not in item and item["role"] is None for item in body["results"])


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("usage", ["pick", "sun", "rain", "forked"]),
        ("forks", ["pick", "forked", "rain", "sun"]),
        ("newest", ["pick", "forked", "sun", "rain"]),
    ],
)
def test_explore_sorts(gallery, carol, api_as, sort, expected):
    assert names(gallery, explore(api_as(carol), f"?sort={sort}")) == expected


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?q=rainy", ["rain"]),
        ("?q=detective", ["rain"]),  # description, stemmed
        ("?q=noir", ["pick", "rain"]),  # a tag
        ("?q=beach -sunny", []),
        ("?q=Sunny OR alley", ["sun", "rain"]),
        ("?tags=noir", ["pick", "rain"]),
        ("?tags=NOIR,rain", ["rain"]),
        ("?tags=rain", ["rain", "forked"]),
        ("?category=cinematic", ["rain", "forked"]),
        ("?category=cinematic&tags=noir", ["rain"]),
        ("?q=rainy&sort=newest", ["rain"]),
        ("?q=unlisted", []),
        ("?q=private", []),
    ],
)
def test_explore_filters(gallery, carol, api_as, query, expected):
    assert names(gallery, explore(api_as(carol), query)) == expected


def test_explore_never_shows_the_callers_own_unlisted_or_private(gallery, alice, api_as):
    listed = names(gallery, explore(api_as(alice), "?tags=rain"))
    assert "unlisted" not in listed and "private" not in listed
    assert listed == ["rain", "forked"]


def test_explore_refuses_a_bad_sort(gallery, carol, api_as):
    assert list(errors_of(api_as(carol).get(EXPLORE + "?sort=random"))) == ["sort"]


# --- fork ------------------------------------------------------------------------------


def test_fork_makes_a_private_copy_and_counts_on_the_parent(alice, bob, api_as):
    parent = make_stack(alice, "Noir", visibility="public", tags=["noir"], category="cinematic")

    response = api_as(bob).post(f"{detail(parent)}/fork", {}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    fork = StyleStack.objects.get(pk=body["id"])
    assert (fork.user_id, fork.parent_id, fork.created_from) == (bob.pk, parent.pk, "fork")
    assert (body["parent"], body["created_from"], body["visibility"], body["role"]) == (
        str(parent.pk),
        "fork",
        "private",
        "owner",
    )
    assert (body["name"], body["style"], body["tags"], body["version"]) == ("Noir (fork)", parent.style, ["noir"], 1)
    assert (body["fork_count"], body["usage_count"]) == (0, 0)
    assert row(parent)["fork_count"] == 1
    named = api_as(bob).post(f"{detail(parent)}/fork", {"name": "My noir"}, format="json")
    assert named.json()["name"] == "My noir"
    assert row(parent)["fork_count"] == 2


def test_fork_of_unlisted_by_id_and_of_a_shared_private_stack(alice, bob, carol, api_as):
    unlisted = make_stack(alice, "By link", visibility="unlisted")
    private = make_stack(alice, "Shared")
    share(private, carol, "viewer")
    assert api_as(bob).post(f"{detail(unlisted)}/fork", {}, format="json").status_code == 201
    assert api_as(carol).post(f"{detail(private)}/fork", {}, format="json").status_code == 201
    assert api_as(bob).post(f"{detail(private)}/fork", {}, format="json").status_code == 404
    assert (row(unlisted)["fork_count"], row(private)["fork_count"]) == (1, 1)


def test_fork_refuses_unknown_input(alice, bob, api_as):
    parent = make_stack(alice, visibility="public")
    assert errors_of(api_as(bob).post(f"{detail(parent)}/fork", {"visibility": "public"}, format="json")) == {
        "visibility": ["Unknown field."]
    }
    assert row(parent)["fork_count"] == 0


# --- versions --------------------------------------------------------------------------


def test_versions_and_restore(alice, api_as):
    client = api_as(alice)
    stack = make_stack(alice, style=NEON)
    for style in (PASTEL, NOIR_V2):
        assert client.patch(detail(stack), {"style": style}, format="json").status_code == 200
    assert row(stack)["version"] == 3

    versions = client.get(f"{detail(stack)}/versions")
    assert versions.status_code == 200
    listed = [(v["version"], v["style"]["prompt_blocks"]["style"]["text"], v["changed_by"]) for v in versions.json()]
    assert listed == [(2, "soft pastel watercolour", str(alice.pk)), (1, "neon-soaked cyberpunk night", str(alice.pk))]

    restored = client.post(f"{detail(stack)}/versions/1/restore")

    assert restored.status_code == 200, restored.content
    assert (restored.json()["version"], restored.json()["style"]) == (4, validate_document(NEON))
    assert client.get(detail(stack)).json()["style"] == validate_document(NEON)
    assert [v["version"] for v in client.get(f"{detail(stack)}/versions").json()] == [3, 2, 1]
    kept = StyleStackVersion.objects.get(stack=stack, version=3)
    assert kept.style == validate_document(NOIR_V2)  # restoring kept the document it replaced
    assert client.post(f"{detail(stack)}/versions/99/restore").status_code == 404
    assert row(stack)["version"] == 4


def test_versions_are_for_the_stacks_people(alice, bob, carol, api_as):
    stack = make_stack(alice, visibility="public")
    api_as(alice).patch(detail(stack), {"style": PASTEL}, format="json")
    share(stack, carol, "viewer")
    viewer = api_as(carol)
    assert [v["version"] for v in viewer.get(f"{detail(stack)}/versions").json()] == [1]
    assert viewer.post(f"{detail(stack)}/versions/1/restore").status_code == 403
    # Public is not shared: a stranger reads the stack, not its history.
    assert api_as(bob).get(f"{detail(stack)}/versions").status_code == 404
    assert api_as(bob).post(f"{detail(stack)}/versions/1/restore").status_code == 404
    assert row(stack)["version"] == 2


# --- contributors ----------------------------------------------------------------------


def contributors(stack) -> dict:
    return {c.user.email: c.role for c in StackContributor.objects.filter(stack=stack).select_related("user")}


def test_the_owner_adds_contributors_by_email(alice, bob, api_as):
    stack = make_stack(alice)
    client = api_as(alice)

    response = client.post(
        f"{detail(stack)}/contributors", {"email": "BOB@example.com", "role": "editor"}, format="json"
    )

    # 202 and no user id: the same answer as for an address with no account
    # (tests/stylestacks/test_invites.py).
    assert response.status_code == 202, response.content
    assert response.json() == {"email": "bob@example.com", "role": "editor", "status": "invited"}
    listed = client.get(f"{detail(stack)}/contributors")
    assert [(c["user"], c["role"], c["invited_by"], c["pending"]) for c in listed.json()] == [
        (str(bob.pk), "editor", str(alice.pk), False)
    ]
    # Inviting again changes the role instead of adding a second row.
    again = client.post(f"{detail(stack)}/contributors", {"email": "bob@example.com"}, format="json")
    assert again.json()["role"] == "viewer"
    assert contributors(stack) == {"bob@example.com": "viewer"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "alice@example.com"}, "email"),  # yourself
        ({"email": "ALICE@example.com", "role": "editor"}, "email"),
        ({"email": "not-an-email"}, "email"),
        ({"email": "bob@example.com", "role": "owner"}, "role"),
        ({"email": "bob@example.com", "user": "x"}, "user"),
    ],
)
def test_adding_a_contributor_is_a_400_by_field(alice, bob, api_as, body, field):
    stack = make_stack(alice)
    assert list(errors_of(api_as(alice).post(f"{detail(stack)}/contributors", body, format="json"))) == [field]
    assert contributors(stack) == {}


def test_contributors_cannot_add_people(alice, bob, carol, api_as):
    stack = make_stack(alice)
    share(stack, bob, "editor")
    share(stack, carol, "viewer")
    for person in (bob, carol):
        response = api_as(person).post(f"{detail(stack)}/contributors", {"email": "staff@example.com"}, format="json")
        assert response.status_code in (403, 404), response.content
        # Nor raise themselves.
        response = api_as(person).post(
            f"{detail(stack)}/contributors", {"email": person.email, "role": "editor"}, format="json"
        )
        assert response.status_code in (403, 404), response.content
    assert contributors(stack) == {"bob@example.com": "editor", "carol@example.com": "viewer"}
    # They may see who is on it.
    assert len(api_as(carol).get(f"{detail(stack)}/contributors").json()) == 2


def test_the_owner_changes_roles_and_removes_people(alice, bob, carol, api_as):
    stack = make_stack(alice)
    share(stack, bob, "viewer")
    share(stack, carol, "viewer")
    client = api_as(alice)

    response = client.patch(f"{detail(stack)}/contributors/{bob.pk}", {"role": "editor"}, format="json")
    assert response.status_code == 200, response.content
    assert (response.json()["user"], response.json()["role"]) == (str(bob.pk), "editor")
    assert list(
        errors_of(client.patch(f"{detail(stack)}/contributors/{bob.pk}", {"role": "owner"}, format="json"))
    ) == ["role"]
    assert client.delete(f"{detail(stack)}/contributors/{carol.pk}").status_code == 204
    assert contributors(stack) == {"bob@example.com": "editor"}
    assert client.delete(f"{detail(stack)}/contributors/{carol.pk}").status_code == 404
    assert (
        client.patch(f"{detail(stack)}/contributors/{uuid.uuid4()}", {"role": "editor"}, format="json").status_code
        == 404
    )


def test_contributors_cannot_change_roles_or_remove_others(alice, bob, carol, api_as):
    stack = make_stack(alice)
    share(stack, bob, "editor")
    share(stack, carol, "viewer")
    viewer, editor = api_as(carol), api_as(bob)
    for client, target in ((viewer, carol), (viewer, bob), (editor, bob), (editor, carol)):
        response = client.patch(f"{detail(stack)}/contributors/{target.pk}", {"role": "editor"}, format="json")
        assert response.status_code in (403, 404), response.content
    assert viewer.delete(f"{detail(stack)}/contributors/{bob.pk}").status_code in (403, 404)
    assert editor.delete(f"{detail(stack)}/contributors/{carol.pk}").status_code in (403, 404)
    assert contributors(stack) == {"bob@example.com": "editor", "carol@example.com": "viewer"}


def test_a_contributor_can_leave(alice, bob, carol, api_as):
    stack = make_stack(alice)
    share(stack, bob, "editor")
    share(stack, carol, "viewer")
    assert api_as(carol).delete(f"{detail(stack)}/contributors/{carol.pk}").status_code == 204
    assert contributors(stack) == {"bob@example.com": "editor"}
    assert api_as(carol).get(detail(stack)).status_code == 404  # gone with the row


# --- who may edit ----------------------------------------------------------------------


def test_an_editor_changes_style_and_name(alice, bob, api_as):
    stack = make_stack(alice, style=NEON)
    share(stack, bob, "editor")

    response = api_as(bob).patch(detail(stack), {"style": PASTEL, "name": "Bob's touch"}, format="json")

    assert response.status_code == 200, response.content
    assert (response.json()["name"], response.json()["version"], response.json()["role"]) == (
        "Bob's touch",
        2,
        "editor",
    )
    after = row(stack)
    assert (after["name"], after["style"], after["user_id"]) == ("Bob's touch", validate_document(PASTEL), alice.pk)
    kept = StyleStackVersion.objects.get(stack=stack)
    assert (kept.version, kept.style, kept.changed_by_id) == (1, validate_document(NEON), bob.pk)


@pytest.mark.parametrize("body", [{"visibility": "public"}, {"name": "Renamed", "visibility": "unlisted"}])
def test_an_editor_cannot_change_visibility(alice, bob, api_as, body):
    stack = make_stack(alice)
    share(stack, bob, "editor")
    before = row(stack)

    response = api_as(bob).patch(detail(stack), body, format="json")

    assert list(errors_of(response)) == ["visibility"]
    assert "owner" in response.json()["errors"]["visibility"][0]
    assert row(stack) == before


def test_a_viewer_cannot_edit(alice, carol, api_as):
    stack = make_stack(alice)
    share(stack, carol, "viewer")
    before = row(stack)
    assert api_as(carol).patch(detail(stack), {"name": "Mine now"}, format="json").status_code == 403
    assert api_as(carol).delete(detail(stack)).status_code in (403, 404)
    assert row(stack) == before


@pytest.mark.parametrize("visibility", ["private", "public", "unlisted"])
def test_a_stranger_cannot_edit_or_delete(alice, bob, api_as, visibility):
    stack = make_stack(alice, visibility=visibility)
    before = row(stack)
    client = api_as(bob)
    assert client.patch(detail(stack), {"name": "Taken"}, format="json").status_code == 404
    assert client.put(detail(stack), {"name": "Taken", "visibility": "public"}, format="json").status_code == 404
    assert client.delete(detail(stack)).status_code == 404
    assert row(stack) == before


def test_only_the_owner_deletes(alice, bob, api_as):
    stack = make_stack(alice)
    share(stack, bob, "editor")
    assert api_as(bob).delete(detail(stack)).status_code == 404
    assert StyleStack.objects.filter(pk=stack.pk).exists()
    assert api_as(alice).delete(detail(stack)).status_code == 204
    assert not StyleStack.objects.filter(pk=stack.pk).exists()
    assert not StackContributor.objects.filter(stack_id=stack.pk).exists()


def test_deleting_a_stack_others_forked_and_used_keeps_their_rows(alice, bob, api_as):
    stack = make_stack(alice, visibility="public")
    fork = api_as(bob).post(f"{detail(stack)}/fork", {}, format="json").json()
    made = generate(api_as(bob), style_stack=str(stack.pk)).json()

    assert api_as(alice).delete(detail(stack)).status_code == 204

    assert StyleStack.objects.get(pk=fork["id"]).parent_id is None
    generation = Generation.objects.get(pk=made["id"])
    assert (generation.style_stack_id, generation.adapted_prompt) == (None, made["adapted_prompt"])


def test_the_owner_changes_everything_editable_with_put(alice, api_as):
    stack = make_stack(alice)
    body = {"name": "Put", "description": "d", "tags": ["A"], "category": "genre", "visibility": "unlisted"}
    response = api_as(alice).put(detail(stack), {**body, "style": PASTEL}, format="json")
    assert response.status_code == 200, response.content
    after = row(stack)
    assert (after["name"], after["tags"], after["category"], after["visibility"], after["version"]) == (
        "Put",
        ["a"],
        "genre",
        "unlisted",
        2,
    )
    assert errors_of(api_as(alice).patch(detail(stack), {"fork_count": 9}, format="json")) == {
        "fork_count": ["This field is read-only."]
    }
    assert row(stack)["fork_count"] == 0


# --- compose ---------------------------------------------------------------------------


def compose(client, stack, model, prompt="a detective lights a match"):
    response = client.post(f"{detail(stack)}/compose", {"ai_model": model, "prompt": prompt}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


def test_compose_differs_by_model(alice, bob, api_as):
    stack = make_stack(alice, visibility="public")
    client = api_as(bob)  # anyone who can see the stack may preview it

    flux, veo = compose(client, stack, FLUX), compose(client, stack, VEO)

    assert flux["prompt"] != veo["prompt"]
    assert flux["prompt"].startswith("a detective lights a match")
    assert veo["prompt"].startswith("a detective lights a match")
    assert NOIR_STYLE_TEXT in flux["prompt"] and NOIR_STYLE_TEXT in veo["prompt"]
    assert "noirstyle" in flux["prompt"]  # the flux LoRA's trigger word
    assert "slow dolly through rain" in veo["prompt"].lower()  # the veo3 adaptation
    assert (flux["metadata"]["strategy"], veo["metadata"]["strategy"]) == ("keyword_weighted", "descriptive_flow")
    assert veo["metadata"]["adaptations_applied"] == [VEO]
    assert set(flux) == {"prompt", "negative_prompt", "parameters", "metadata"}
    assert row(stack)["usage_count"] == 0  # a preview is not a use


def test_compose_refuses_bad_input(alice, api_as):
    stack = make_stack(alice)
    client = api_as(alice)
    body = {"ai_model": "no/such/model", "prompt": "x"}
    assert list(errors_of(client.post(f"{detail(stack)}/compose", body, format="json"))) == ["ai_model"]
    body = {"ai_model": FLUX, "prompt": "x", "parameters": {"width": 1}}
    assert list(errors_of(client.post(f"{detail(stack)}/compose", body, format="json"))) == ["parameters"]
    assert list(errors_of(client.post(f"{detail(stack)}/compose", {"ai_model": FLUX}, format="json"))) == ["prompt"]


# --- presets ---------------------------------------------------------------------------


@pytest.fixture
def presets(preset):
    StylePreset.objects.create(
        slug="t-pastel-dream",
        name="Pastel dream",
        category="artistic",
        tags=["pastel", "soft"],
        style=validate_document(PASTEL),
        sort_order=2,
    )
    StylePreset.objects.create(
        slug="t-retired", name="Retired noir", category="cinematic", tags=["noir"], style={}, is_active=False
    )
    return preset


def our_slugs(body) -> list[str]:
    items = body["results"] if isinstance(body, dict) else body
    return [item["slug"] for item in items if item["slug"].startswith("t-")]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", ["t-noir-classic", "t-pastel-dream"]),
        ("?category=artistic", ["t-pastel-dream"]),
        ("?category=cinematic", ["t-noir-classic"]),
        ("?tags=noir", ["t-noir-classic"]),
        ("?tags=PASTEL,soft", ["t-pastel-dream"]),
        ("?tags=noir,soft", []),
        ("?q=dream", ["t-pastel-dream"]),
        ("?q=NOIR", ["t-noir-classic"]),
    ],
)
def test_presets_are_listed_without_auth_and_filtered(presets, api, query, expected):
    response = api.get(PRESETS + query + ("&" if query else "?") + "page_size=100")
    assert response.status_code == 200, response.content
    assert our_slugs(response.json()) == expected
    items = response.json()["results"] if isinstance(response.json(), dict) else response.json()
    assert all("style" not in item for item in items)


def test_a_preset_is_retrieved_by_slug_without_auth(presets, api):
    response = api.get(f"{PRESETS}/t-noir-classic")
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["id"], body["name"], body["style"], body["tags"]) == (
        str(presets.pk),
        "Noir classic",
        presets.style,
        ["noir", "rain"],
    )
    assert api.get(f"{PRESETS}/t-retired").status_code == 404
    assert api.get(f"{PRESETS}/t-no-such-preset").status_code == 404


def test_presets_are_read_only(presets, alice, api_as):
    client = api_as(alice)
    assert client.post(PRESETS, {"slug": "mine", "name": "Mine"}, format="json").status_code == 405
    assert client.patch(f"{PRESETS}/t-noir-classic", {"name": "Mine"}, format="json").status_code == 405
    assert client.delete(f"{PRESETS}/t-noir-classic").status_code == 405
    assert StylePreset.objects.get(pk=presets.pk).name == "Noir classic"


def test_a_stack_from_a_preset(presets, alice, api_as):
    response = api_as(alice).post(URL + "/from-preset", {"preset": "t-noir-classic"}, format="json")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["created_from"], body["created_from_preset"], body["parent"]) == (
        "preset",
        str(presets.pk),
        None,
    )
    assert (body["name"], body["style"], body["tags"], body["category"]) == (
        "Noir classic",
        presets.style,
        ["noir", "rain"],
        "cinematic",
    )
    assert (body["visibility"], body["role"], body["compatible_models"]) == ("private", "owner", [FLUX])
    assert StyleStack.objects.get(pk=body["id"]).user_id == alice.pk
    named = api_as(alice).post(URL + "/from-preset", {"preset": "t-pastel-dream", "name": "Soft"}, format="json")
    assert (named.status_code, named.json()["name"], named.json()["category"]) == (201, "Soft", "general")


@pytest.mark.parametrize("slug", ["t-retired", "t-no-such-preset"])
def test_a_stack_from_an_inactive_or_unknown_preset_is_a_400(presets, alice, api_as, slug):
    assert list(errors_of(api_as(alice).post(URL + "/from-preset", {"preset": slug}, format="json"))) == ["preset"]
    assert not StyleStack.objects.filter(user=alice).exists()


# --- generations with a style ----------------------------------------------------------


def generate(client, prompt="a lighthouse at dusk", **style):
    return client.post(GENERATIONS, {"ai_model": FLUX, "prompt": prompt, **style}, format="json")


def test_a_generation_with_a_stack_stores_the_adapted_prompt_and_counts(alice, api_as):
    stack = make_stack(alice)
    other = make_stack(alice, "Other")

    response = generate(api_as(alice), style_stack=str(stack.pk))

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["style_stack"], body["preset"], body["prompt"]) == (str(stack.pk), None, "a lighthouse at dusk")
    assert body["adapted_prompt"].startswith("a lighthouse at dusk")
    assert NOIR_STYLE_TEXT in body["adapted_prompt"] and "noirstyle" in body["adapted_prompt"]
    generation = Generation.objects.get(pk=body["id"])
    assert (generation.adapted_prompt, generation.style_stack_id) == (body["adapted_prompt"], stack.pk)
    assert generation.adaptation["source"] == "style_stack"
    assert (row(stack)["usage_count"], row(other)["usage_count"]) == (1, 0)
    assert row(stack)["last_used_at"] is not None
    assert balance(alice) == 75


def test_a_generation_with_a_preset_stores_the_adapted_prompt_and_counts(presets, alice, api_as):
    response = generate(api_as(alice), preset="t-noir-classic")

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["preset"], body["style_stack"]) == (str(presets.pk), None)
    assert body["adapted_prompt"].startswith("a lighthouse at dusk") and NOIR_STYLE_TEXT in body["adapted_prompt"]
    counts = dict(StylePreset.objects.filter(slug__startswith="t-").values_list("slug", "usage_count"))
    assert counts == {"t-noir-classic": 1, "t-pastel-dream": 0, "t-retired": 0}


def test_a_generation_with_someone_elses_public_stack_counts_on_it(alice, bob, api_as):
    stack = make_stack(alice, visibility="public")
    assert generate(api_as(bob), style_stack=str(stack.pk)).status_code == 201
    assert row(stack)["usage_count"] == 1
    assert balance(bob) == 75 and balance(alice) == 100


def test_a_generation_with_someone_elses_private_stack_is_a_400(alice, bob, api_as):
    stack = make_stack(alice)
    response = generate(api_as(bob), style_stack=str(stack.pk))
    assert list(errors_of(response)) == ["style_stack"]
    assert not Generation.objects.filter(user=bob).exists()
    assert (balance(bob), row(stack)["usage_count"]) == (100, 0)


def test_a_generation_with_a_shared_private_stack_is_fine(alice, bob, api_as):
    stack = make_stack(alice)
    share(stack, bob, "viewer")
    assert generate(api_as(bob), style_stack=str(stack.pk)).status_code == 201
    assert row(stack)["usage_count"] == 1


def test_a_generation_with_both_a_stack_and_a_preset_is_a_400(presets, alice, api_as):
    stack = make_stack(alice)
    response = generate(api_as(alice), style_stack=str(stack.pk), preset="t-noir-classic")
    assert set(errors_of(response)) <= {"style_stack", "preset", "non_field_errors"}
    assert not Generation.objects.filter(user=alice).exists()
    assert (balance(alice), row(stack)["usage_count"], StylePreset.objects.get(pk=presets.pk).usage_count) == (
        100,
        0,
        0,
    )


@pytest.mark.parametrize(
    ("style", "field"), [({"preset": "t-retired"}, "preset"), ({"style_stack": "not-a-uuid"}, "style_stack")]
)
def test_a_generation_with_a_bad_style_reference_is_a_400(presets, alice, api_as, style, field):
    assert list(errors_of(generate(api_as(alice), **style))) == [field]
    assert balance(alice) == 100


# --- a new person's first session --------------------------------------------------------


def test_new_user_walkthrough(presets, alice, bob, carol, api_as):
    you, editor, stranger = api_as(alice), api_as(bob), api_as(carol)

    # Alice starts from a preset...
    created = you.post(URL + "/from-preset", {"preset": "t-noir-classic", "name": "My noir"}, format="json")
    assert created.status_code == 201, created.content
    stack = StyleStack.objects.get(pk=created.json()["id"])
    assert (stack.created_from, stack.created_from_preset_id, stack.visibility) == ("preset", presets.pk, "private")

    # ...tweaks it...
    style = copy.deepcopy(created.json()["style"])
    style["prompt_blocks"]["style"] = {"text": "grainy 16mm film, teal and orange"}
    tweaked = you.patch(detail(stack), {"style": style}, format="json")
    assert tweaked.status_code == 200, tweaked.content
    assert tweaked.json()["version"] == 2

    # ...previews it for an image and a video model and sees different prompts...
    flux, veo = (
        compose(you, stack, FLUX, "a boxer in an empty gym"),
        compose(you, stack, VEO, "a boxer in an empty gym"),
    )
    assert flux["prompt"] != veo["prompt"]
    assert all("grainy 16mm film" in p and NOIR_STYLE_TEXT not in p for p in (flux["prompt"], veo["prompt"]))

    # ...generates with it...
    made = generate(you, "a boxer in an empty gym", style_stack=str(stack.pk))
    assert made.status_code == 201, made.content
    assert made.json()["adapted_prompt"] == flux["prompt"]
    assert (row(stack)["usage_count"], balance(alice)) == (1, 75)

    # ...shares it with bob as an editor, who changes the style...
    invited = you.post(f"{detail(stack)}/contributors", {"email": "bob@example.com", "role": "editor"}, format="json")
    assert invited.status_code == 202, invited.content
    assert [s["id"] for s in editor.get(URL).json()["results"]] == [str(stack.pk)]
    style["prompt_blocks"]["lighting"] = {"text": "a single bare bulb"}
    edited = editor.patch(detail(stack), {"style": style}, format="json")
    assert (edited.status_code, edited.json()["version"], edited.json()["role"]) == (200, 3, "editor")
    assert "a single bare bulb" in compose(you, stack, FLUX)["prompt"]
    history = you.get(f"{detail(stack)}/versions").json()
    assert [(v["version"], v["changed_by"]) for v in history] == [(2, str(bob.pk)), (1, str(alice.pk))]

    # ...carol cannot see it until alice makes it public, then forks it.
    assert stranger.get(detail(stack)).status_code == 404
    assert str(stack.pk) not in ids(explore(stranger))
    assert you.patch(detail(stack), {"visibility": "public"}, format="json").status_code == 200
    assert str(stack.pk) in ids(explore(stranger, "?q=noir"))
    fork = stranger.post(f"{detail(stack)}/fork", {}, format="json")
    assert fork.status_code == 201, fork.content
    assert (fork.json()["parent"], fork.json()["created_from"], fork.json()["visibility"]) == (
        str(stack.pk),
        "fork",
        "private",
    )
    assert fork.json()["style"] == row(stack)["style"]
    assert row(stack)["fork_count"] == 1
    assert ids(stranger.get(URL).json()) == [fork.json()["id"]]
    assert ids(you.get(URL).json()) == [str(stack.pk)]


def test_explore_statements_do_not_grow_with_the_page_and_skip_the_documents(gallery, carol, api_as):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    api = api_as(carol)
    counts = {}
    for size in (1, 50):
        with CaptureQueriesContext(connection) as captured:
            body = api.get(f"/api/v1/style-stacks/explore?page_size={size}").json()
        assert len(body["results"]) == min(size, body["count"])
        counts[size] = len(captured.captured_queries)
        page_query = next(q["sql"] for q in captured.captured_queries if "style_stacks_explore" in q["sql"])
        assert 's."style"' not in page_query and "search_vector" not in page_query
        assert "JOIN public.style_stacks" in page_query  # the rows come in the same statement
    assert counts[1] == counts[50]
