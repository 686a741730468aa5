"""RLS, grants and triggers of style stacks, as the API roles see them (SQL, no API).

The cast: alice OWNS a private stack; EDITOR and VIEWER are its contributors; bob is a
STRANGER (signed in, nothing shared with him); ANON is nobody signed in. Alice also has
a public and an unlisted stack. Every cell of MATRIX below is one test that runs
one statement as that actor and checks the outcome:

* a number — the rows the statement saw (SELECT count) or changed (INSERT/UPDATE/DELETE);
  0 is RLS quietly hiding the row;
* ``DENIED`` — "permission denied": the role has no grant for this at all;
* ``REFUSED`` — "new row violates row-level security policy": a policy's WITH CHECK.
"""

import uuid

import pytest
from django.db import DatabaseError, ProgrammingError, transaction
from psycopg.types.json import Jsonb

from generations.models import AIModel, Generation
from generations.services import generation_create
from stylestacks.models import StackContributor, StackInvite, StylePreset, StyleStack, StyleStackVersion
from stylestacks.services import stylestack_create
from tests.conftest import as_role
from tests.factories import UserFactory

DENIED = "permission denied"
REFUSED = "row-level security"
ACTORS = ("owner", "editor", "viewer", "stranger", "anon")

NOIR = {
    "schema_version": 2,
    "prompt_blocks": {"style": {"text": "high-contrast black and white"}, "keywords": {"items": ["noir"]}},
}
NEON = {"schema_version": 2, "prompt_blocks": {"style": {"text": "neon-soaked cyberpunk night"}}}
PASTEL = {"schema_version": 2, "prompt_blocks": {"style": {"text": "soft pastel watercolour"}}}


def new_stack(columns: str = "", values: str = "") -> str:
    """An INSERT of a whole style_stacks row owned by %(owner)s (extra columns optional)."""
    return (
        "INSERT INTO public.style_stacks (user_id, name, description, tags, category, visibility, style, "
        f"compatible_models, created_from{columns}) "
        f"VALUES (%(owner)s, 'New', '', '{{}}', 'general', 'private', '{{}}', '{{}}', 'manual'{values})"
    )


# --- the matrix --------------------------------------------------------------------------

# The statements, by the name of their row in MATRIX. %(private)s, %(public)s and
# %(unlisted)s are alice's stacks, %(owner)s/%(editor)s/%(viewer)s/%(carol)s those
# people's ids, %(me)s the actor's own id.
STATEMENTS = {
    # public.style_stacks: "insert" makes a stack in alice's name, "insert own" in the
    # actor's; update and delete aim at alice's PRIVATE stack.
    "stacks: select private": "SELECT count(*) FROM public.style_stacks WHERE id = %(private)s",
    "stacks: select public": "SELECT count(*) FROM public.style_stacks WHERE id = %(public)s",
    "stacks: select unlisted": "SELECT count(*) FROM public.style_stacks WHERE id = %(unlisted)s",
    "stacks: insert": new_stack(),
    "stacks: insert own": new_stack().replace("%(owner)s", "%(me)s"),
    "stacks: update": "UPDATE public.style_stacks SET description = 'changed' WHERE id = %(private)s",
    "stacks: delete": "DELETE FROM public.style_stacks WHERE id = %(private)s",
    # public.stack_contributors of the private stack (two rows: editor and viewer).
    "contributors: select": "SELECT count(*) FROM public.stack_contributors WHERE stack_id = %(private)s",
    "contributors: add carol": "INSERT INTO public.stack_contributors (stack_id, user_id, role, email) "
    "VALUES (%(private)s, %(carol)s, 'viewer', 'carol@example.com')",
    "contributors: viewer → editor": "UPDATE public.stack_contributors SET role = 'editor' "
    "WHERE stack_id = %(private)s AND user_id = %(viewer)s",
    "contributors: editor → viewer": "UPDATE public.stack_contributors SET role = 'viewer' "
    "WHERE stack_id = %(private)s AND user_id = %(editor)s",
    "contributors: remove viewer": "DELETE FROM public.stack_contributors "
    "WHERE stack_id = %(private)s AND user_id = %(viewer)s",
    "contributors: remove editor": "DELETE FROM public.stack_contributors "
    "WHERE stack_id = %(private)s AND user_id = %(editor)s",
    # public.style_stack_versions of the private stack (one row, kept by the trigger).
    "versions: select": "SELECT count(*) FROM public.style_stack_versions WHERE stack_id = %(private)s",
    "versions: insert": "INSERT INTO public.style_stack_versions (stack_id, version, style) "
    "VALUES (%(private)s, 99, '{}')",
    "versions: update": "UPDATE public.style_stack_versions SET style = '{}' WHERE stack_id = %(private)s",
    "versions: delete": "DELETE FROM public.style_stack_versions WHERE stack_id = %(private)s",
    # public.style_stack_presets: the test's own active and inactive preset.
    "presets: select": "SELECT count(*) FROM public.style_stack_presets WHERE slug IN ('rls-active', 'rls-inactive')",
    "presets: insert": "INSERT INTO public.style_stack_presets (slug, name, category, subcategory, description, "
    "creator, style, tags, complexity_level, recommended_models, preview_image_url, is_active, is_featured, "
    "rating, sort_order) VALUES ('rls-new', 'New', 'general', '', '', 'x', '{}', '{}', 'beginner', '{}', '', "
    "true, false, 0, 0)",
    "presets: update": "UPDATE public.style_stack_presets SET name = 'Changed' WHERE slug = 'rls-active'",
    "presets: delete": "DELETE FROM public.style_stack_presets WHERE slug = 'rls-active'",
}

# Who may do what. Stacks: the owner everything; editors read and update, never delete
# or create in the owner's name; viewers read; public and unlisted stacks are readable by
# anyone signed in. Contributors: only the owner adds people and changes roles; a
# contributor may remove their own row (leave) and nobody else's, and cannot raise their
# own role. Versions: the stack's people read, nobody writes. Presets: everyone (anon
# too) reads the active ones, nobody writes. anon has no grant on stacks at all.
# fmt: off
MATRIX = {
    #                                   owner    editor   viewer   stranger  anon
    "stacks: select private":          (1,       1,       1,       0,        DENIED),
    "stacks: select public":           (1,       1,       1,       1,        DENIED),
    "stacks: select unlisted":         (1,       1,       1,       1,        DENIED),
    "stacks: insert":                  (1,       REFUSED, REFUSED, REFUSED,  DENIED),
    "stacks: insert own":              (1,       1,       1,       1,        DENIED),
    "stacks: update":                  (1,       1,       0,       0,        DENIED),
    "stacks: delete":                  (1,       0,       0,       0,        DENIED),
    "contributors: select":            (2,       2,       2,       0,        DENIED),
    "contributors: add carol":         (1,       REFUSED, REFUSED, REFUSED,  DENIED),
    "contributors: viewer → editor":   (1,       0,       0,       0,        DENIED),  # viewer: own row
    "contributors: editor → viewer":   (1,       0,       0,       0,        DENIED),
    "contributors: remove viewer":     (1,       0,       1,       0,        DENIED),  # viewer leaves
    "contributors: remove editor":     (1,       1,       0,       0,        DENIED),  # editor leaves
    "versions: select":                (1,       1,       1,       0,        DENIED),
    "versions: insert":                (DENIED,  DENIED,  DENIED,  DENIED,   DENIED),
    "versions: update":                (DENIED,  DENIED,  DENIED,  DENIED,   DENIED),
    "versions: delete":                (DENIED,  DENIED,  DENIED,  DENIED,   DENIED),
    "presets: select":                 (1,       1,       1,       1,        1),
    "presets: insert":                 (DENIED,  DENIED,  DENIED,  DENIED,   DENIED),
    "presets: update":                 (DENIED,  DENIED,  DENIED,  DENIED,   DENIED),
    "presets: delete":                 (DENIED,  DENIED,  DENIED,  DENIED,   DENIED),
}
# fmt: on
CELLS = [
    pytest.param(op, actor, expected, id=f"{op} as {actor}")
    for op, row in MATRIX.items()
    for actor, expected in zip(ACTORS, row, strict=True)
]


# --- the world -------------------------------------------------------------------------


@pytest.fixture
def cast(alice, bob):
    """The people, alice's three stacks (the private one shared with editor and viewer,
    with one earlier version) and two presets."""
    editor = UserFactory(email="editor@example.com")
    viewer = UserFactory(email="viewer@example.com")
    carol = UserFactory(email="carol@example.com")
    private = stylestack_create(user=alice, name="Alice private", style=NOIR)
    public = stylestack_create(user=alice, name="Alice public", style=NOIR, visibility="public")
    unlisted = stylestack_create(user=alice, name="Alice unlisted", style=NOIR, visibility="unlisted")
    for person, role in ((editor, "editor"), (viewer, "viewer")):
        StackContributor.objects.create(stack=private, user=person, role=role, email=person.email, invited_by=alice)
    StyleStack.objects.filter(pk=private.pk).update(style=NEON)  # keep_version writes version 1
    StylePreset.objects.create(slug="rls-active", name="Active", style=NOIR)
    StylePreset.objects.create(slug="rls-inactive", name="Inactive", style=NOIR, is_active=False)
    return {
        "people": {"owner": alice, "editor": editor, "viewer": viewer, "stranger": bob, "anon": None},
        "carol": carol,
        "private": StyleStack.objects.get(pk=private.pk),
        "public": public,
        "unlisted": unlisted,
    }


def actor_role(cast, actor):
    user = cast["people"][actor]
    return ("anon", None) if user is None else ("authenticated", user)


def params_of(cast, actor) -> dict:
    people = cast["people"]
    me = people[actor]
    return {
        "private": cast["private"].pk,
        "public": cast["public"].pk,
        "unlisted": cast["unlisted"].pk,
        "owner": people["owner"].pk,
        "editor": people["editor"].pk,
        "viewer": people["viewer"].pk,
        "carol": cast["carol"].pk,
        "me": me.pk if me is not None else uuid.uuid4(),
    }


def outcome_of(cast, actor, statement):
    """Run ``statement`` as ``actor`` and undo whatever it did; returns the count of a
    SELECT, the rowcount of a write, or the database error."""
    role, user = actor_role(cast, actor)
    with transaction.atomic():
        try:
            with as_role(role, user) as cursor:
                cursor.execute(statement, params_of(cast, actor))
                result = cursor.fetchone()[0] if statement.startswith("SELECT") else cursor.rowcount
        except DatabaseError as exc:
            result = exc
        transaction.set_rollback(True)
    return result


def test_the_matrix_has_a_statement_for_every_row():
    assert list(MATRIX) == list(STATEMENTS)


@pytest.mark.parametrize(("op", "actor", "expected"), CELLS)
def test_rls_matrix(cast, op, actor, expected):
    result = outcome_of(cast, actor, STATEMENTS[op])
    if isinstance(expected, int):
        assert result == expected
    else:
        assert isinstance(result, ProgrammingError), f"expected {expected!r}, got {result!r}"
        assert expected in str(result)


def test_the_matrix_cells_really_ran_against_existing_rows(cast):
    """The 0s above are RLS hiding rows, not missing rows: the owner connection sees them."""
    private = cast["private"]
    assert StyleStack.objects.filter(pk__in=[private.pk, cast["public"].pk, cast["unlisted"].pk]).count() == 3
    assert StackContributor.objects.filter(stack=private).count() == 2
    assert StyleStackVersion.objects.filter(stack=private).count() == 1
    assert private.version == 2


# --- contributors cannot escalate themselves -------------------------------------------


def contributor_roles(stack) -> dict:
    return dict(StackContributor.objects.filter(stack=stack).values_list("user__email", "role"))


def test_contributors_cannot_escalate_themselves(cast):
    private = cast["private"]
    viewer, editor = cast["people"]["viewer"], cast["people"]["editor"]
    before = contributor_roles(private)

    # Raising one's own role by UPDATE: RLS hides the row from the update.
    with as_role("authenticated", viewer) as cursor:
        cursor.execute(
            "UPDATE public.stack_contributors SET role = 'editor' WHERE stack_id = %s AND user_id = %s",
            [private.pk, viewer.pk],
        )
        assert cursor.rowcount == 0
    # ...through the invite function (upsert of the role): only the owner may call it.
    for person in (viewer, editor):
        with pytest.raises(DatabaseError, match="Not found"), as_role("authenticated", person) as cursor:
            cursor.execute("SELECT public.stack_contributor_add(%s, %s, 'editor')", [private.pk, viewer.email])
    # ...by inserting a second row, or leaving and re-joining as editor.
    with pytest.raises(ProgrammingError, match=REFUSED), as_role("authenticated", viewer) as cursor:
        cursor.execute(
            "INSERT INTO public.stack_contributors (stack_id, user_id, role, email) VALUES (%s, %s, 'editor', '')",
            [private.pk, viewer.pk],
        )
    # ...or by taking the stack over.
    with pytest.raises(ProgrammingError, match=DENIED), as_role("authenticated", editor) as cursor:
        cursor.execute("UPDATE public.style_stacks SET user_id = %s WHERE id = %s", [editor.pk, private.pk])

    assert contributor_roles(private) == before == {"editor@example.com": "editor", "viewer@example.com": "viewer"}


def test_the_owner_invites_by_email_through_the_function(cast):
    """It answers the normalised address whoever it belongs to (issue 14, defect 8): a
    registered one becomes a contributor, any other a pending invite."""
    private, carol = cast["private"], cast["carol"]
    with as_role("authenticated", cast["people"]["owner"]) as cursor:
        cursor.execute("SELECT public.stack_contributor_add(%s, %s, 'editor')", [private.pk, "  CAROL@example.com "])
        assert cursor.fetchone() == ("carol@example.com",)
        cursor.execute("SELECT public.stack_contributor_add(%s, 'Nobody@example.com', 'viewer')", [private.pk])
        assert cursor.fetchone() == ("nobody@example.com",)
    row = StackContributor.objects.get(stack=private, user=carol)
    assert (row.user_id, row.role, row.email, row.invited_by_id) == (
        carol.pk,
        "editor",
        "carol@example.com",
        private.user_id,
    )
    assert list(StackInvite.objects.filter(stack=private).values_list("email", "role", "invited_by_id")) == [
        ("nobody@example.com", "viewer", private.user_id)
    ]
    with pytest.raises(ProgrammingError, match=DENIED), as_role("anon") as cursor:
        cursor.execute("SELECT public.stack_contributor_add(%s, 'carol@example.com', 'viewer')", [private.pk])


def test_an_insert_by_the_owner_cannot_forge_who_invited(cast):
    private, carol = cast["private"], cast["carol"]
    with as_role("authenticated", cast["people"]["owner"]) as cursor:
        cursor.execute(
            "INSERT INTO public.stack_contributors (stack_id, user_id, role, email, invited_by_id, created_at) "
            "VALUES (%s, %s, 'viewer', '', %s, '2000-01-01') "
            "RETURNING invited_by_id, created_at > now() - interval '1 hour'",
            [private.pk, carol.pk, carol.pk],
        )
        assert cursor.fetchone() == (private.user_id, True)


# --- counters move only through triggers -----------------------------------------------


@pytest.mark.parametrize(
    "assignment",
    [
        "usage_count = 99",
        "fork_count = 99",
        "version = 99",
        "is_featured = true",
        "is_marketplace = true",
        "price_credits = 5",
        "last_used_at = now()",
        "created_at = now()",
        "user_id = user_id",
        "parent_id = NULL",
        "created_from = 'import'",
        "search_vector = NULL",
    ],
)
@pytest.mark.parametrize("actor", ["owner", "editor"])
def test_authenticated_cannot_write_server_owned_stack_columns(cast, actor, assignment):
    private = cast["private"]
    before = StyleStack.objects.filter(pk=private.pk).values().get()
    with pytest.raises(ProgrammingError, match=DENIED), as_role("authenticated", cast["people"][actor]) as cursor:
        cursor.execute(f"UPDATE public.style_stacks SET {assignment} WHERE id = %s", [private.pk])
    assert StyleStack.objects.filter(pk=private.pk).values().get() == before


def test_an_insert_by_authenticated_resets_counters_and_flags(cast):
    alice = cast["people"]["owner"]
    with as_role("authenticated", alice) as cursor:
        cursor.execute(
            new_stack(
                ", usage_count, fork_count, is_featured, is_marketplace, price_credits, version, last_used_at, "
                "created_at",
                ", 99, 7, true, true, 50, 9, now(), '2000-01-01'",
            )
            + " RETURNING usage_count, fork_count, is_featured, is_marketplace, price_credits, version, "
            "last_used_at, created_at > now() - interval '1 hour'",
            {"owner": alice.pk},
        )
        assert cursor.fetchone() == (0, 0, False, False, 0, 1, None, True)


def test_the_owner_connection_keeps_staff_flags_on_insert(alice):
    """The reset is for the API role only: staff (the admin) may feature a stack."""
    stack = StyleStack.objects.create(user=alice, name="Staff pick", style=NOIR, is_featured=True)
    stack.refresh_from_db()
    assert (stack.is_featured, stack.version, stack.usage_count) == (True, 1, 0)


def usage(model, pk):
    return model.objects.filter(pk=pk).values_list("usage_count", "last_used_at").get()


def flux():
    return AIModel.objects.get(pk="fal-ai/flux/dev")


def test_a_generation_with_a_stack_bumps_exactly_that_stacks_usage(cast):
    alice, bob = cast["people"]["owner"], cast["people"]["stranger"]
    private, public, unlisted = cast["private"], cast["public"], cast["unlisted"]

    generation_create(user=alice, ai_model=flux(), prompt="a lighthouse", style_stack=private)
    count, last_used = usage(StyleStack, private.pk)
    assert count == 1 and last_used is not None
    # A stranger using alice's public stack counts too, though bob cannot update her row.
    generation_create(user=bob, ai_model=flux(), prompt="a harbour", style_stack=public)
    generation_create(user=bob, ai_model=flux(), prompt="a harbour again", style_stack=public)
    assert usage(StyleStack, public.pk)[0] == 2
    assert usage(StyleStack, unlisted.pk) == (0, None)
    assert usage(StyleStack, private.pk)[0] == 1
    generation = Generation.objects.filter(user=bob).latest("created_at")
    assert (generation.style_stack_id, generation.preset_id) == (public.pk, None)


def test_a_generation_with_a_preset_bumps_exactly_that_presets_usage(cast):
    alice = cast["people"]["owner"]
    used = StylePreset.objects.create(slug="used", name="Used", style=NEON)
    other = StylePreset.objects.create(slug="other", name="Other", style=PASTEL)
    before = dict(StylePreset.objects.exclude(pk=used.pk).values_list("pk", "usage_count"))

    generation_create(user=alice, ai_model=flux(), prompt="a lighthouse", preset=used)

    count, last_used = usage(StylePreset, used.pk)
    assert count == 1 and last_used is not None
    assert usage(StylePreset, other.pk) == (0, None)
    assert dict(StylePreset.objects.exclude(pk=used.pk).values_list("pk", "usage_count")) == before
    assert StyleStack.objects.filter(usage_count__gt=0).count() == 0


def test_a_generation_without_a_style_bumps_nothing(cast):
    generation_create(user=cast["people"]["owner"], ai_model=flux(), prompt="plain")
    assert StyleStack.objects.filter(usage_count__gt=0).count() == 0
    assert StylePreset.objects.filter(usage_count__gt=0).count() == 0


def test_nobody_can_use_a_private_stack_they_cannot_see(cast):
    """generation_create (SECURITY DEFINER) checks the stack like the SELECT policy does."""
    with (
        pytest.raises(DatabaseError, match="No such style stack"),
        as_role("authenticated", cast["people"]["stranger"]) as cursor,
    ):
        cursor.execute(
            "SELECT public.generation_create('fal-ai/flux/dev', 'x', '', '{}', NULL, NULL, '', NULL, %s)",
            [cast["private"].pk],
        )
    assert usage(StyleStack, cast["private"].pk) == (0, None)


def test_a_fork_bumps_the_parents_fork_count(cast):
    public, bob = cast["public"], cast["people"]["stranger"]
    with as_role("authenticated", bob) as cursor:
        cursor.execute(
            new_stack(", parent_id", ", %(parent)s").replace("'manual'", "'fork'") + " RETURNING fork_count",
            {"owner": bob.pk, "parent": public.pk},
        )
        assert cursor.fetchone() == (0,)
    assert StyleStack.objects.get(pk=public.pk).fork_count == 1
    assert StyleStack.objects.get(pk=cast["private"].pk).fork_count == 0


def test_nobody_can_claim_a_fork_of_a_stack_they_cannot_see(cast):
    """A stranger may not point parent_id at alice's private stack: it would count a fork
    of a stack bob cannot see (and the foreign key would tell him it exists)."""
    private, bob = cast["private"], cast["people"]["stranger"]
    with transaction.atomic():
        try:
            with as_role("authenticated", bob) as cursor:
                cursor.execute(new_stack(", parent_id", ", %(parent)s"), {"owner": bob.pk, "parent": private.pk})
        except DatabaseError:
            pass
    assert StyleStack.objects.get(pk=private.pk).fork_count == 0
    assert not StyleStack.objects.filter(user=bob, parent=private).exists()


# --- versions ------------------------------------------------------------------------


def test_a_style_change_by_an_editor_keeps_a_version_and_bumps_it(cast):
    private, editor = cast["private"], cast["people"]["editor"]
    with as_role("authenticated", editor) as cursor:
        cursor.execute("UPDATE public.style_stacks SET style = %s WHERE id = %s", [Jsonb(PASTEL), private.pk])
        assert cursor.rowcount == 1
    stack = StyleStack.objects.get(pk=private.pk)
    assert (stack.version, stack.style) == (3, PASTEL)
    kept = StyleStackVersion.objects.get(stack=private, version=2)
    assert (kept.style, kept.changed_by_id) == (NEON, editor.pk)
    assert list(StyleStackVersion.objects.filter(stack=private).values_list("version", flat=True)) == [2, 1]


def test_a_name_only_change_keeps_no_version(cast):
    private = cast["private"]
    with as_role("authenticated", cast["people"]["editor"]) as cursor:
        cursor.execute("UPDATE public.style_stacks SET name = 'Renamed', tags = '{rain}' WHERE id = %s", [private.pk])
        assert cursor.rowcount == 1
    stack = StyleStack.objects.get(pk=private.pk)
    assert (stack.name, stack.version, stack.style) == ("Renamed", 2, NEON)
    assert StyleStackVersion.objects.filter(stack=private).count() == 1


def test_the_same_style_again_keeps_no_version(cast):
    private = cast["private"]
    with as_role("authenticated", cast["people"]["owner"]) as cursor:
        cursor.execute("UPDATE public.style_stacks SET style = %s WHERE id = %s", [Jsonb(NEON), private.pk])
    assert StyleStack.objects.get(pk=private.pk).version == 2
    assert StyleStackVersion.objects.filter(stack=private).count() == 1


@pytest.mark.parametrize("assignment", ["visibility = 'public'", "visibility = 'unlisted', name = 'Sneaky'"])
def test_an_editor_changing_visibility_is_refused_by_the_trigger(cast, assignment):
    private, editor = cast["private"], cast["people"]["editor"]
    with pytest.raises(DatabaseError, match="Only the owner can change who sees this stack") as caught:
        with as_role("authenticated", editor) as cursor:
            cursor.execute(f"UPDATE public.style_stacks SET {assignment} WHERE id = %s", [private.pk])
    assert caught.value.__cause__.diag.sqlstate == "VL403"
    stack = StyleStack.objects.get(pk=private.pk)
    assert (stack.visibility, stack.name) == ("private", "Alice private")


def test_the_owner_may_change_visibility(cast):
    private = cast["private"]
    with as_role("authenticated", cast["people"]["owner"]) as cursor:
        cursor.execute("UPDATE public.style_stacks SET visibility = 'public' WHERE id = %s", [private.pk])
        assert cursor.rowcount == 1
    assert StyleStack.objects.get(pk=private.pk).visibility == "public"


def test_the_search_vector_follows_name_tags_and_description(cast):
    private = cast["private"]
    with as_role("authenticated", cast["people"]["owner"]) as cursor:
        cursor.execute(
            "UPDATE public.style_stacks SET name = 'Lighthouse keeper', tags = '{seascape}', "
            "description = 'storm at dusk' WHERE id = %s",
            [private.pk],
        )
        cursor.execute(
            "SELECT search_vector @@ websearch_to_tsquery('english', 'lighthouse seascape storm') "
            "FROM public.style_stacks WHERE id = %s",
            [private.pk],
        )
        assert cursor.fetchone() == (True,)
