"""Inviting people to a style stack by email without revealing who has an account
(issue 14, defect 8).

``POST style-stacks/{id}/contributors`` answers the same for a registered and an unknown
address: a registered one becomes a contributor at once, an unknown one is kept as a
pending invite (``public.stack_invites``) that the database turns into a contributor when
that address signs up, whatever creates the identity. Invites are rate-limited per user.
"""

import uuid

import psycopg
import pytest
from django.db import DatabaseError, ProgrammingError, connection, transaction
from django.test.utils import CaptureQueriesContext

from accounts.models import User
from stylestacks import models
from stylestacks.models import StackContributor, StyleStack
from stylestacks.services import stylestack_create
from tests.conftest import as_role
from tests.db.test_migrations import scratch_db  # noqa: F401  (a fixture)
from tests.factories import PASSWORD, UserFactory
from tests.helpers import manage

URL = "/api/v1/style-stacks"
REGISTER = "/api/v1/auth/register"
NOIR = {"schema_version": 2, "prompt_blocks": {"style": {"text": "high-contrast black and white"}}}
INVITED = {"email", "role", "status"}


def invite_url(stack) -> str:
    return f"{URL}/{stack.pk}/contributors"


def invite(client, stack, email, role="viewer"):
    return client.post(invite_url(stack), {"email": email, "role": role}, format="json")


def pending(stack) -> dict:
    return dict(models.StackInvite.objects.filter(stack=stack).values_list("email", "role"))


def contributors(stack) -> dict:
    return dict(StackContributor.objects.filter(stack=stack).values_list("user__email", "role"))


@pytest.fixture
def stack(alice) -> StyleStack:
    return stylestack_create(user=alice, name="Noir", style=NOIR)


@pytest.fixture
def limits(settings):
    """``limits("3/hour")``: the invite rate for this test (None: off)."""

    def set_rate(rate):
        rates = {**settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "invite_user": rate}
        settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": rates}

    return set_rate


# --- the answer reveals nothing ----------------------------------------------------------


def test_a_registered_and_an_unknown_address_get_the_same_answer(alice, bob, stack, api_as):
    """The defect: before the fix, bob@ was a 201 with his user id and nobody@ a 400
    "No active user with this email." — an oracle for who has an account."""
    client = api_as(alice)

    registered = invite(client, stack, "Bob@Example.com ", "editor")
    unknown = invite(client, stack, "Nobody@Example.com ", "editor")

    assert (registered.status_code, unknown.status_code) == (202, 202), (registered.content, unknown.content)
    assert set(registered.json()) == set(unknown.json()) == INVITED
    assert registered.json() == {"email": "bob@example.com", "role": "editor", "status": "invited"}
    assert unknown.json() == {"email": "nobody@example.com", "role": "editor", "status": "invited"}
    assert registered.headers.get("Content-Type") == unknown.headers.get("Content-Type")
    # Behind the same answer: bob is on the stack, nobody@ is waiting for a sign-up.
    assert contributors(stack) == {"bob@example.com": "editor"}
    assert pending(stack) == {"nobody@example.com": "editor"}


def test_an_inactive_account_gets_the_same_answer_too(alice, stack, api_as):
    UserFactory(email="gone@example.com", is_active=False)
    response = invite(api_as(alice), stack, "gone@example.com")
    assert (response.status_code, response.json()) == (
        202,
        {"email": "gone@example.com", "role": "viewer", "status": "invited"},
    )


def test_both_paths_run_the_same_statements(alice, bob, stack, api_as):
    """No extra round trip on either side that a stopwatch could tell apart."""
    client = api_as(alice)
    invite(client, stack, "warm@example.com")  # first request of the test: warm caches

    counts = []
    for email in ("bob@example.com", "nobody@example.com"):
        with CaptureQueriesContext(connection) as queries:
            assert invite(client, stack, email).status_code == 202
        counts.append(len(queries))
    assert counts[0] == counts[1]


def test_inviting_again_is_idempotent_and_changes_the_role(alice, bob, stack, api_as):
    client = api_as(alice)
    for email in ("bob@example.com", "nobody@example.com"):
        first, again = invite(client, stack, email, "editor"), invite(client, stack, email, "editor")
        assert (first.status_code, first.json()) == (again.status_code, again.json())
        assert invite(client, stack, email.upper(), "viewer").json()["role"] == "viewer"
    assert contributors(stack) == {"bob@example.com": "viewer"}
    assert pending(stack) == {"nobody@example.com": "viewer"}
    assert models.StackInvite.objects.filter(stack=stack).count() == 1


@pytest.mark.parametrize("email", ["alice@example.com", " ALICE@example.com"])
def test_inviting_yourself_is_still_a_400(alice, stack, api_as, email):
    response = invite(api_as(alice), stack, email)
    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["email"]
    assert (contributors(stack), pending(stack)) == ({}, {})


def test_only_the_owner_invites_and_strangers_learn_nothing(alice, bob, stack, api_as):
    carol = UserFactory(email="carol@example.com")
    StackContributor.objects.create(stack=stack, user=carol, role="editor", email=carol.email, invited_by=alice)
    for person in (bob, carol):
        for email in ("dave@example.com", "alice@example.com"):
            assert invite(api_as(person), stack, email).status_code == 404
    assert pending(stack) == {}


# --- the pending invite becomes a contributor at sign-up ---------------------------------


def test_signing_up_through_the_api_turns_the_invite_into_a_contributor(alice, stack, api, api_as):
    invite(api_as(alice), stack, "newcomer@example.com", "editor")

    signed_up = api.post(REGISTER, {"email": "NewComer@example.com", "password": PASSWORD}, format="json")

    assert signed_up.status_code == 201, signed_up.content
    newcomer = User.objects.get(email="newcomer@example.com")
    row = StackContributor.objects.get(stack=stack)
    assert (row.user_id, row.role, row.email, row.invited_by_id) == (newcomer.pk, "editor", newcomer.email, alice.pk)
    assert pending(stack) == {}
    # And the stack is theirs to edit at once.
    shared = api_as(newcomer).get(URL).json()["results"]
    assert [(s["id"], s["role"]) for s in shared] == [(str(stack.pk), "editor")]


def test_a_raw_sql_identity_gets_every_stack_it_was_invited_to(alice, bob, stack, api_as, sql):
    other = stylestack_create(user=bob, name="Pastel", style=NOIR)
    invite(api_as(alice), stack, "raw@example.com", "viewer")
    invite(api_as(bob), other, "raw@example.com", "editor")
    invite(api_as(alice), stack, "someone-else@example.com")

    ((new_id,),) = sql("INSERT INTO auth.users (email) VALUES ('Raw@Example.COM') RETURNING id")

    assert dict(StackContributor.objects.filter(user_id=new_id).values_list("stack_id", "role")) == {
        stack.pk: "viewer",
        other.pk: "editor",
    }
    assert not models.StackInvite.objects.filter(email="raw@example.com").exists()
    assert pending(stack) == {"someone-else@example.com": "viewer"}  # other addresses wait


def test_an_identity_made_by_the_orm_or_admin_accepts_too(alice, stack, api_as):
    invite(api_as(alice), stack, "staffmade@example.com")
    user = User.objects.create_user("StaffMade@example.com", PASSWORD)
    assert contributors(stack) == {"staffmade@example.com": "viewer"}
    assert StackContributor.objects.get(stack=stack).user_id == user.pk


def test_a_deleted_stack_takes_its_invites_with_it(alice, stack, api_as):
    invite(api_as(alice), stack, "later@example.com")
    assert api_as(alice).delete(f"{URL}/{stack.pk}").status_code == 204
    assert not models.StackInvite.objects.exists()
    UserFactory(email="later@example.com")
    assert not StackContributor.objects.exists()


# --- the owner sees and withdraws pending invites ----------------------------------------


def test_the_list_shows_pending_invites_to_the_owner_only(alice, bob, stack, api_as):
    client = api_as(alice)
    invite(client, stack, "bob@example.com", "editor")
    invite(client, stack, "nobody@example.com")

    people = client.get(invite_url(stack)).json()

    invite_id = models.StackInvite.objects.get(stack=stack).pk
    assert [(p["email"], p["role"], p["pending"], p["user"], p["invite_id"]) for p in people] == [
        ("bob@example.com", "editor", False, str(bob.pk), None),
        ("nobody@example.com", "viewer", True, None, str(invite_id)),
    ]
    assert all(p["invited_by"] == str(alice.pk) for p in people)
    # Bob, a contributor, sees the people on the stack, not the pending addresses.
    assert [p["email"] for p in api_as(bob).get(invite_url(stack)).json()] == ["bob@example.com"]


def test_the_owner_withdraws_a_pending_invite(alice, bob, stack, api_as):
    client = api_as(alice)
    StackContributor.objects.create(stack=stack, user=bob, role="editor", email=bob.email, invited_by=alice)
    invite(client, stack, "nobody@example.com")
    invite_id = models.StackInvite.objects.get(stack=stack).pk
    url = f"{URL}/{stack.pk}/invites/{invite_id}"

    stranger = UserFactory(email="stranger@example.com")
    assert api_as(bob).delete(url).status_code == 404  # an editor cannot
    assert api_as(stranger).delete(url).status_code == 404
    assert client.delete(f"{URL}/{stack.pk}/invites/{uuid.uuid4()}").status_code == 404
    assert pending(stack) == {"nobody@example.com": "viewer"}

    assert client.delete(url).status_code == 204
    assert pending(stack) == {}
    assert client.delete(url).status_code == 404
    UserFactory(email="nobody@example.com")
    assert contributors(stack) == {"bob@example.com": "editor"}  # withdrawn: no access at sign-up


def test_an_invite_of_another_stack_is_not_found_through_this_one(alice, stack, api_as):
    other = stylestack_create(user=alice, name="Other", style=NOIR)
    invite(api_as(alice), other, "nobody@example.com")
    invite_id = models.StackInvite.objects.get(stack=other).pk
    assert api_as(alice).delete(f"{URL}/{stack.pk}/invites/{invite_id}").status_code == 404
    assert pending(other) == {"nobody@example.com": "viewer"}


def test_the_schema_documents_the_invite_endpoints(db, api):
    schema = api.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    contributors_path = schema["paths"]["/api/v1/style-stacks/{id}/contributors"]
    assert {"202", "429"} <= set(contributors_path["post"]["responses"])
    assert "201" not in contributors_path["post"]["responses"]
    withdraw = schema["paths"]["/api/v1/style-stacks/{id}/invites/{invite_id}"]["delete"]
    assert {"204", "404"} <= set(withdraw["responses"])


# --- rate limit --------------------------------------------------------------------------


def test_invites_are_rate_limited_per_user(alice, bob, stack, api_as, limits):
    limits("3/hour")
    client = api_as(alice)
    answers = [invite(client, stack, f"p{i}@example.com").status_code for i in range(3)]
    assert answers == [202, 202, 202]
    assert client.get(invite_url(stack)).status_code == 200  # reading is not counted

    refused = invite(client, stack, "bob@example.com")

    assert refused.status_code == 429, refused.content
    assert refused.json()["code"] == "throttled"
    assert refused.json()["detail"].startswith("Too many invitations. Try again in ")
    assert 1 <= int(refused["Retry-After"]) <= 3600
    assert invite(client, stack, "nobody@example.com").status_code == 429  # registered or not
    assert "bob@example.com" not in contributors(stack) and len(pending(stack)) == 3
    # Another person has their own quota.
    assert invite(api_as(bob), stylestack_create(user=bob, name="B", style=NOIR), "z@example.com").status_code == 202


def test_the_invite_limit_can_be_turned_off(alice, stack, api_as, limits):
    limits(None)
    client = api_as(alice)
    assert {invite(client, stack, f"p{i}@example.com").status_code for i in range(40)} == {202}


# --- the database: RLS, grants, functions ------------------------------------------------


@pytest.fixture
def invited(alice, bob, stack, api_as):
    """alice's stack with bob as a viewer and one pending invite."""
    StackContributor.objects.create(stack=stack, user=bob, role="viewer", email=bob.email, invited_by=alice)
    invite(api_as(alice), stack, "nobody@example.com")
    return stack


def run_as(role, user, statement, params=()):
    """The count of a SELECT or the rowcount of a write, as ``role``; rolled back."""
    with transaction.atomic():
        with as_role(role, user) as cursor:
            cursor.execute(statement, params)
            result = cursor.fetchone()[0] if statement.startswith("SELECT") else cursor.rowcount
        transaction.set_rollback(True)
    return result


def test_rls_only_the_owner_reads_and_deletes_pending_invites(invited, alice, bob):
    carol = UserFactory(email="carol@example.com")
    select = "SELECT count(*) FROM public.stack_invites WHERE stack_id = %s"
    everything = "SELECT count(*) FROM public.stack_invites"
    delete = "DELETE FROM public.stack_invites WHERE stack_id = %s"
    assert run_as("authenticated", alice, select, [invited.pk]) == 1
    for other in (bob, carol):  # a contributor of the stack, a stranger
        assert run_as("authenticated", other, select, [invited.pk]) == 0
        assert run_as("authenticated", other, everything) == 0
        assert run_as("authenticated", other, delete, [invited.pk]) == 0
    assert run_as("authenticated", alice, delete, [invited.pk]) == 1
    with pytest.raises(ProgrammingError, match="permission denied"):
        run_as("anon", None, everything)


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO public.stack_invites (stack_id, email, role) VALUES (%(stack)s, 'x@example.com', 'viewer')",
        "UPDATE public.stack_invites SET role = 'editor' WHERE stack_id = %(stack)s",
        "UPDATE public.stack_invites SET email = 'other@example.com' WHERE stack_id = %(stack)s",
    ],
)
def test_no_api_role_writes_invites_but_through_the_function(invited, alice, statement):
    with pytest.raises(ProgrammingError, match="permission denied"):
        run_as("authenticated", alice, statement, {"stack": invited.pk})


def test_the_function_answers_the_same_in_sql_too(invited, alice, bob):
    """Called directly (a Supabase client could, through /rest/v1/rpc), the public
    function returns the normalised address, whoever it belongs to."""
    with as_role("authenticated", alice) as cursor:
        answers = []
        for email in (" BOB@example.com", "Nobody@example.com"):
            cursor.execute("SELECT public.stack_contributor_add(%s, %s, 'viewer')", [invited.pk, email])
            answers.append(cursor.fetchone()[0])
    assert answers == ["bob@example.com", "nobody@example.com"]
    with pytest.raises(DatabaseError, match="Not found"), as_role("authenticated", bob) as cursor:
        cursor.execute("SELECT public.stack_contributor_add(%s, 'x@example.com', 'viewer')", [invited.pk])
    with pytest.raises(ProgrammingError, match="permission denied"), as_role("anon") as cursor:
        cursor.execute("SELECT public.stack_contributor_add(%s, 'x@example.com', 'viewer')", [invited.pk])


def test_the_definer_functions_live_in_private_behind_an_invoker_wrapper(db, sql):
    rows = sql(
        """
        SELECT n.nspname || '.' || p.proname, p.prosecdef, p.proconfig,
               has_function_privilege('anon', p.oid, 'EXECUTE'),
               has_function_privilege('authenticated', p.oid, 'EXECUTE'),
               EXISTS (SELECT 1 FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) AS a
                       WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
        FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
        WHERE p.proname IN ('stack_contributor_add', 'stack_invites_accept')
        ORDER BY 1
        """
    )
    assert rows == [
        # name, SECURITY DEFINER, config, anon, authenticated, PUBLIC may execute
        ("private.stack_contributor_add", True, ['search_path=""'], False, True, False),
        ("private.stack_invites_accept", True, ['search_path=""'], False, False, False),
        ("public.stack_contributor_add", False, ['search_path=""'], False, True, False),
    ]
    triggers = sql(
        "SELECT t.tgname, p.proname FROM pg_trigger AS t JOIN pg_proc AS p ON p.oid = t.tgfoid "
        "WHERE t.tgrelid = 'auth.users'::regclass AND NOT t.tgisinternal ORDER BY 1"
    )
    assert ("on_auth_user_created_accept_invites", "stack_invites_accept") in triggers


def test_every_column_a_policy_filters_on_is_indexed(db, sql):
    """stack_id (the policies, through stack_role) leads the unique index; email (the
    sign-up trigger's lookup) has its own."""
    indexes = sql(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'stack_invites' ORDER BY 1"
    )
    definitions = " ".join(row[0] for row in indexes)
    assert "(stack_id, email)" in definitions
    assert "(email)" in definitions
    policies = sql("SELECT policyname, cmd, roles::text FROM pg_policies WHERE tablename = 'stack_invites' ORDER BY 1")
    assert policies == [
        ("stack_invites_delete_by_owner", "DELETE", "{authenticated}"),
        ("stack_invites_select_by_owner", "SELECT", "{authenticated}"),
    ]


# --- the migration -----------------------------------------------------------------------


def test_the_invite_migration_reverses_to_the_old_function_and_reapplies(scratch_db):  # noqa: F811
    url, params = scratch_db
    manage(url, "migrate", "--no-input")

    def state():
        with psycopg.connect(**params) as conn:
            functions = conn.execute(
                "SELECT n.nspname || '.' || p.proname, p.prosecdef, pg_get_function_result(p.oid) "
                "FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace "
                "WHERE p.proname IN ('stack_contributor_add', 'stack_invites_accept') ORDER BY 1"
            ).fetchall()
            table = conn.execute("SELECT to_regclass('public.stack_invites') IS NOT NULL").fetchone()[0]
            trigger = conn.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgname = 'on_auth_user_created_accept_invites'"
            ).fetchone()[0]
        return functions, table, trigger

    applied = state()
    assert applied == (
        [
            ("private.stack_contributor_add", True, "text"),
            ("private.stack_invites_accept", True, "trigger"),
            ("public.stack_contributor_add", False, "text"),
        ],
        True,
        1,
    )

    manage(url, "migrate", "stylestacks", "0005", "--no-input")
    assert state() == ([("public.stack_contributor_add", True, "uuid")], False, 0)

    manage(url, "migrate", "--no-input")
    assert state() == applied
