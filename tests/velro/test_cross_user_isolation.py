"""Bob must never read, change or even learn of alice's data, through any endpoint.

One table holds a row for every (route, method) of the API that touches a person's
data: object endpoints on alice's ids (bob gets a 404 and alice's rows do not change),
create endpoints pointed at alice's objects, lists (bob sees only his own) and the
"mine" endpoints. ``test_every_api_route_has_an_isolation_row`` walks the URL patterns:
a new endpoint without a row here (or an explicit exemption) fails the suite.
"""

import dataclasses
import json
import uuid
from collections.abc import Callable

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from accounts.models import Profile, Session
from billing.models import CreditPack, Order
from credits.models import CreditTransaction
from credits.services import credits_grant
from generations.models import AIModel, Generation
from generations.services import generation_create
from projects.models import Project
from projects.services import project_create, project_delete
from stylestacks.models import StackContributor, StackInvite, StylePreset, StyleStack, StyleStackVersion
from stylestacks.schema import STYLE_SCHEMA
from stylestacks.services import stylestack_create
from tests.factories import UserFactory

API = "/api/v1/"
ALICE_PROMPT = "alice's secret prompt: a violet heron"
BOB_PROMPT = "bob's own prompt: a grey wolf"
ALICE_STACK = "Alice secret stack"
ALICE_STYLE = "alice's secret style: violet fog"
PRESET = "isolation-noir"
# The names of alice's objects a Case may use in its path or body.
ID_KEYS = ("private", "public", "archived", "g1", "g2", "stack", "member", "invite", "session")

# --- the data ------------------------------------------------------------------------


def generate(user, model_id, prompt, project=None):
    return generation_create(user=user, ai_model=AIModel.objects.get(pk=model_id), prompt=prompt, project=project)


def style(text):
    return {"schema_version": 2, "prompt_blocks": {"style": {"text": text}}}


@pytest.fixture
def world(alice, bob):
    """Alice: a private empty project, a public one with a favourite pending generation,
    an archived one with a generation, and a grant — so every write bob might attempt
    would visibly change something. A private style stack with a contributor (a viewer
    a PATCH would promote) and an earlier version (a restore would bring back), an
    unlisted and a public stack. Bob: his own projects, generation, ledger and stack, so
    his lists are not empty. And a preset anyone may start from."""
    private = project_create(user=alice, name="Alice private", description="hers")
    public = project_create(user=alice, name="Alice public", visibility="public")
    archived = project_create(user=alice, name="Alice archived")
    g1 = generate(alice, "fal-ai/flux/dev", ALICE_PROMPT, project=public)
    g2 = generate(alice, "fal-ai/flux/dev", ALICE_PROMPT + " (2)", project=archived)
    Generation.objects.filter(pk=g1.pk).update(is_favorite=True)
    assert project_delete(project=Project.objects.get(pk=archived.pk)) is not None
    grant = credits_grant(user=alice, amount=7, reason="Alice's goodwill")

    bob_private = project_create(user=bob, name="Bob private")
    bob_public = project_create(user=bob, name="Bob public", visibility="public")
    bob_generation = generate(bob, "fal-ai/flux/schnell", BOB_PROMPT, project=bob_private)

    member = UserFactory(email="member@example.com")
    stack = stylestack_create(user=alice, name=ALICE_STACK, style=style("first draft"), tags=["violetfog"])
    StackContributor.objects.create(stack=stack, user=member, role="viewer", email=member.email, invited_by=alice)
    invite = StackInvite.objects.create(stack=stack, email="pending@example.com", role="editor", invited_by=alice)
    StyleStack.objects.filter(pk=stack.pk).update(style=style(ALICE_STYLE))  # version 1 is kept
    assert StyleStackVersion.objects.filter(stack=stack).count() == 1
    unlisted = stylestack_create(user=alice, name="Alice unlisted stack", visibility="unlisted", tags=["violetfog"])
    alice_public_stack = stylestack_create(user=alice, name="Alice public stack", visibility="public")
    bob_stack = stylestack_create(user=bob, name="Bob stack")
    StylePreset.objects.create(slug=PRESET, name="Isolation noir", style=style("noir"), tags=["noir"])
    starter = CreditPack.objects.get(slug="starter")
    alice_order = Order.objects.create(
        user=alice, kind="pack", pack=starter, amount=500, currency="usd", credits=500, checkout_session_id="cs_alice"
    )

    ids = {
        "private": str(private.pk),
        "public": str(public.pk),
        "archived": str(archived.pk),
        "g1": str(g1.pk),
        "g2": str(g2.pk),
        "stack": str(stack.pk),
        "member": str(member.pk),
        "invite": str(invite.pk),
        "session": str(Session.objects.create(user=alice, user_agent="Alice's phone").pk),
    }
    assert set(ids) == set(ID_KEYS)
    alice_ledger = [str(pk) for pk in CreditTransaction.objects.filter(user=alice).values_list("pk", flat=True)]
    assert str(grant.pk) in alice_ledger
    return {
        "ids": ids,
        "alice": alice,
        "bob": bob,
        # Strings that must never appear in a response to bob (unless he sent them).
        "secrets": {
            *ids.values(),
            *alice_ledger,
            str(alice.pk),
            alice.email,
            ALICE_PROMPT,
            "Alice's goodwill",
            ALICE_STACK,
            ALICE_STYLE,
            "first draft",
            "violetfog",
            member.email,
            "pending@example.com",
            str(unlisted.pk),
            "Alice's phone",
            str(alice_order.pk),
            "cs_alice",
        },
        "bob_projects": [str(bob_public.pk), str(bob_private.pk)],
        "bob_public": str(bob_public.pk),
        "bob_generation": str(bob_generation.pk),
        "bob_stack": str(bob_stack.pk),
        "alice_public_stack": str(alice_public_stack.pk),
    }


def snapshot(user) -> dict:
    """Every row of ``user``'s data, as the owner connection sees it."""
    return {
        "profile": Profile.objects.filter(pk=user.pk).values().get(),
        "projects": list(Project.objects.filter(user=user).order_by("pk").values()),
        "generations": list(Generation.objects.filter(user=user).order_by("pk").values()),
        "ledger": list(CreditTransaction.objects.filter(user=user).order_by("pk").values()),
        "stacks": list(StyleStack.objects.filter(user=user).order_by("pk").values()),
        "contributors": list(StackContributor.objects.filter(stack__user=user).order_by("pk").values()),
        "invites": list(StackInvite.objects.filter(stack__user=user).order_by("pk").values()),
        "versions": list(StyleStackVersion.objects.filter(stack__user=user).order_by("pk").values()),
        "sessions": list(Session.objects.filter(user=user).order_by("pk").values()),
        "orders": list(Order.objects.filter(user=user).order_by("pk").values()),
    }


# --- the table -----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    """A request bob makes. ``path`` (relative to /api/v1/) and string values in ``body``
    may name alice's objects as ``{private}``, ``{public}``, ``{archived}``, ``{g1}``,
    ``{g2}`` (projects and generations), ``{stack}`` (her private style stack) and
    ``{member}`` (the user id of a contributor of that stack), ``{invite}`` (a pending
    invite of that stack), ``{session}`` (a session of hers)."""

    method: str
    path: str
    body: dict | None = None
    status: int = 404
    error_field: str | None = None  # for a 400: the one field at fault
    check: Callable | None = None  # (world, json body) -> None, more assertions

    def fill(self, ids: dict):
        body = None if self.body is None else {k: v.format(**ids) for k, v in self.body.items()}
        return API + self.path.format(**ids), body

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.path}" + (f" {json.dumps(self.body)}" if self.body else "")


RENAME = {"name": "Taken over", "description": "", "visibility": "public"}

# Object endpoints on alice's rows: 404, nothing changes. Each write is aimed at a row it
# would really change (an empty project a DELETE would remove, one with a generation it
# would archive, an archived one restore would bring back, a pending generation cancel
# would refund, a favourite DELETE would clear, a non-favourite POST would set).
OBJECT_CASES = [
    Case("get", "projects/{private}"),
    Case("get", "projects/{archived}"),
    Case("patch", "projects/{private}", {"name": "Taken over", "visibility": "public"}),
    Case("patch", "projects/{public}", {"name": "Taken over", "visibility": "private"}),
    Case("put", "projects/{private}", RENAME),
    Case("put", "projects/{public}", {**RENAME, "visibility": "private"}),
    Case("delete", "projects/{private}"),
    Case("delete", "projects/{public}"),
    Case("post", "projects/{archived}/restore"),
    Case("post", "projects/{public}/restore"),
    Case("get", "generations/{g1}"),
    Case("get", "generations/{g2}"),
    Case("post", "generations/{g1}/cancel"),
    Case("post", "generations/{g2}/favorite"),
    Case("delete", "generations/{g1}/favorite"),
    Case("delete", "generations/{g2}"),
    # Alice's private style stack: every route on it, reads and writes alike.
    Case("get", "style-stacks/{stack}"),
    Case("patch", "style-stacks/{stack}", {"name": "Taken over", "description": "bob's now"}),
    Case("put", "style-stacks/{stack}", {"name": "Taken over", "visibility": "public"}),
    Case("delete", "style-stacks/{stack}"),
    Case("post", "style-stacks/{stack}/fork"),
    Case("post", "style-stacks/{stack}/compose", {"ai_model": "fal-ai/flux/dev", "prompt": "peek"}),
    Case("get", "style-stacks/{stack}/versions"),
    Case("post", "style-stacks/{stack}/versions/1/restore"),
    Case("get", "style-stacks/{stack}/contributors"),
    Case("post", "style-stacks/{stack}/contributors", {"email": "bob@example.com", "role": "editor"}),
    Case("patch", "style-stacks/{stack}/contributors/{member}", {"role": "editor"}),
    Case("delete", "style-stacks/{stack}/contributors/{member}"),
    Case("delete", "style-stacks/{stack}/invites/{invite}"),
    # Signing alice out from bob's account.
    Case("delete", "me/sessions/{session}"),
]


def bobs_new_project(world, body):
    project = Project.objects.get(pk=body["id"])
    assert (project.user_id, body["is_owner"], body["generation_count"]) == (world["bob"].pk, True, 0)


def bobs_new_stack(world, body):
    stack = StyleStack.objects.get(pk=body["id"])
    assert (stack.user_id, body["role"], body["visibility"], body["parent"]) == (
        world["bob"].pk,
        "owner",
        "private",
        None,
    )


def bobs_stack_from_preset(world, body):
    stack = StyleStack.objects.get(pk=body["id"])
    assert (stack.user_id, stack.created_from, stack.created_from_preset.slug) == (world["bob"].pk, "preset", PRESET)


# Create endpoints aimed at alice's objects: refused by field, or created as bob's own.
CREATE_CASES = [
    Case(
        "post",
        "generations",
        {"ai_model": "fal-ai/flux/schnell", "prompt": "intruder", "project": "{private}"},
        400,
        "project",
    ),
    Case(
        "post",
        "generations",
        {"ai_model": "fal-ai/flux/schnell", "prompt": "intruder", "project": "{public}"},
        400,
        "project",
    ),
    Case(
        "post",
        "generations",
        {"ai_model": "fal-ai/flux/schnell", "prompt": "intruder", "parent": "{g1}"},
        400,
        "parent",
    ),
    # Names are unique per owner: alice's name is free for bob, and it is his project.
    Case("post", "projects", {"name": "Alice private"}, 201, check=bobs_new_project),
    Case(
        "post",
        "generations",
        {"ai_model": "fal-ai/flux/schnell", "prompt": "intruder", "style_stack": "{stack}"},
        400,
        "style_stack",
    ),
    # parent is the server's (fork): never a way to copy alice's stack.
    Case("post", "style-stacks", {"name": "Mine", "parent": "{stack}"}, 400, "parent"),
    Case("post", "style-stacks", {"name": ALICE_STACK}, 201, check=bobs_new_stack),
    Case("post", "style-stacks/from-preset", {"preset": PRESET}, 201, check=bobs_stack_from_preset),
]


def result_ids(body) -> list[str]:
    return [item["id"] for item in body["results"]]


def bobs_projects(world, body):
    # Both made in the test's one transaction: same created_at, so the order is the id's.
    assert sorted(result_ids(body)) == sorted(world["bob_projects"])
    assert body["count"] == 2


def bobs_public_projects(world, body):
    assert result_ids(body) == [world["bob_public"]]


def nothing(world, body):
    assert body["results"] == []


def bobs_generations(world, body):
    assert result_ids(body) == [world["bob_generation"]]
    assert body["results"][0]["prompt"] == BOB_PROMPT


def bobs_ledger(world, body):
    rows = [(item["type"], item["amount"], item["balance_after"]) for item in body["results"]]
    assert sorted(rows) == [("signup_bonus", 100, 100), ("usage", -10, 90)]


def bobs_stats(world, body):
    assert body == {
        "total": 1,
        "credits_charged": 10,
        "by_status": {"pending": {"count": 1, "credits_charged": 10}},
        "by_model": {"fal-ai/flux/schnell": {"count": 1, "credits_charged": 10}},
    }


def bobs_balance(world, body):
    assert body == {"credits_balance": 90, "current_plan": "free"}


def bobs_profile(world, body):
    assert (body["id"], body["email"], body["credits_balance"]) == (str(world["bob"].pk), "bob@example.com", 90)


def bobs_stacks(world, body):
    assert result_ids(body) == [world["bob_stack"]]


def public_stacks_only(world, body):
    assert result_ids(body) == [world["alice_public_stack"]]


def the_style_schema(world, body):
    assert body == STYLE_SCHEMA


def presets_listed(world, body):
    assert PRESET in [item["slug"] for item in body["results"]]


def the_preset(world, body):
    assert (body["slug"], body["name"]) == (PRESET, "Isolation noir")


def packs_listed(world, body):
    assert [item["slug"] for item in body] == ["starter", "creator", "studio"]


def plans_listed(world, body):
    assert [item["slug"] for item in body] == ["free", "basic", "pro"]


def bobs_renamed_profile(world, body):
    assert (body["id"], body["full_name"]) == (str(world["bob"].pk), "Bob Renamed")


# Lists and "mine" endpoints: 200 with bob's data only (filters naming alice's objects
# included: a filter must not be a way around the owner scope).
def bobs_sessions(world, body):
    assert [item["current"] for item in body["results"]] == [True]


def bobs_stream_token(world, body):
    from generations.events import stream_token_read

    assert stream_token_read(body["token"])["sub"] == str(world["bob"].pk)


LIST_CASES = [
    Case("get", "me/sessions", status=200, check=bobs_sessions),
    Case("post", "generations/events/token", status=201, check=bobs_stream_token),
    Case("get", "projects", status=200, check=bobs_projects),
    Case("get", "projects?visibility=public", status=200, check=bobs_public_projects),
    Case("get", "projects?archived=true", status=200, check=nothing),
    Case("get", "projects?q=alice", status=200, check=nothing),
    Case("get", "generations", status=200, check=bobs_generations),
    Case("get", "generations?project={public}", status=200, check=nothing),
    Case("get", "generations?is_favorite=true", status=200, check=nothing),
    Case("get", "generations?ai_model=fal-ai/flux/dev", status=200, check=nothing),
    Case("get", "credits/transactions", status=200, check=bobs_ledger),
    Case("get", "credits/transactions?type=grant", status=200, check=nothing),
    Case("get", "generations/stats", status=200, check=bobs_stats),
    Case("get", "credits/balance", status=200, check=bobs_balance),
    Case("get", "me", status=200, check=bobs_profile),
    Case("patch", "me", {"full_name": "Bob Renamed"}, status=200, check=bobs_renamed_profile),
    # Style stacks: his own and those shared with him; explore shows public ones only.
    Case("get", "style-stacks", status=200, check=bobs_stacks),
    Case("get", "style-stacks?visibility=private", status=200, check=bobs_stacks),
    Case("get", "style-stacks?tags=violetfog", status=200, check=nothing),
    Case("get", "style-stacks/explore", status=200, check=public_stacks_only),
    Case("get", "style-stacks/explore?q=secret", status=200, check=nothing),
    Case("get", "style-stacks/explore?tags=violetfog", status=200, check=nothing),
    Case("get", "style-stacks/explore?sort=newest", status=200, check=public_stacks_only),
    # Everyone's: the document schema and the preset library.
    Case("get", "style-stacks/schema", status=200, check=the_style_schema),
    Case("get", "presets?page_size=100", status=200, check=presets_listed),
    Case("get", f"presets/{PRESET}", status=200, check=the_preset),
    # Billing: everyone's catalog; bob's orders (none); without a Stripe key checkout and
    # the portal are refused before anything is written.
    Case("get", "billing/packs", status=200, check=packs_listed),
    Case("get", "billing/plans", status=200, check=plans_listed),
    Case("get", "billing/orders", status=200, check=nothing),
    Case("get", "billing/orders?state=pending", status=200, check=nothing),
    Case("post", "billing/checkout", {"pack": "starter"}, status=503),
    Case("post", "billing/portal", status=503),
    # The database health report is for staff; bob is not.
    Case("get", "health/report", status=403),
]

CASES = OBJECT_CASES + CREATE_CASES + LIST_CASES


def swap_ids(value, ids: dict, replacement: dict):
    """``value`` (a string or a JSON-like body) with alice's ids replaced."""
    text = json.dumps(value)
    for key, real in ids.items():
        text = text.replace(real, replacement[key])
    return json.loads(text)


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.id)
def test_bob_cannot_reach_alices_data(world, api_as, case):
    alice, ids = world["alice"], world["ids"]
    before = snapshot(alice)
    client = api_as(world["bob"])
    path, body = case.fill(ids)

    response = getattr(client, case.method)(path, body, format="json")

    assert response.status_code == case.status, response.content
    data = response.json()
    if case.status == 404:
        assert data == {"detail": "Not found.", "code": "not_found"}
    elif case.status == 400:
        assert data["code"] == "invalid"
        assert list(data["errors"]) == [case.error_field]
    if case.check is not None:
        case.check(world, data)
    assert snapshot(alice) == before

    # Nothing of alice's in the answer, except what bob sent himself.
    sent = path + json.dumps(body)
    leaked = {secret for secret in world["secrets"] if secret in response.content.decode() and secret not in sent}
    assert leaked == set()

    # No existence oracle: the same request with ids nobody has gets the same answer.
    if case.status in (400, 404):
        fresh = {key: str(uuid.uuid4()) for key in ids}
        other = getattr(client, case.method)(*case.fill(fresh), format="json")
        assert (other.status_code, swap_ids(other.json(), ids=fresh, replacement=ids)) == (case.status, data)
        assert snapshot(alice) == before


def test_alice_can_reach_what_bob_cannot(world, api_as):
    """The table's 404s are about who asks: the same reads as alice succeed."""
    client = api_as(world["alice"])
    for case in OBJECT_CASES:
        if case.method == "get":
            path, _ = case.fill(world["ids"])
            assert client.get(path).status_code == 200, path
    assert api_as(world["alice"]).get(API + "credits/balance").json()["credits_balance"] == 57


# --- every route has a row -----------------------------------------------------------

# Routes with no per-person data, by an example path and the URL name it must resolve
# to. Adding one here needs a reviewer's yes.
EXEMPT = {
    "/api/v1/auth/register": "auth-register",
    "/api/v1/auth/login": "auth-login",
    "/api/v1/auth/refresh": "auth-refresh",
    "/api/v1/auth/logout": "auth-logout",  # ends the caller's own sessions only
    "/api/v1/models": "ai-model-list",
    "/api/v1/models/fal-ai/flux/dev": "ai-model-detail",
    "/api/v1/webhooks/local": "provider-webhook",  # our HMAC scheme, no person
    "/api/v1/webhooks/fal": "fal-webhook",  # fal's ED25519 signature, no person
    "/api/v1/billing/stripe/webhook": "stripe-webhook",  # Stripe's signature, no person
    "/api/v1/health": "health",  # liveness: ok / unreachable, nobody's data
    "/api/v1/schema": "schema",  # the OpenAPI description and its two UIs
    "/api/v1/docs": "docs",
    "/api/v1/redoc": "redoc",
    "/api/v1/no/such/endpoint": "api-not-found",  # the catch-all
    # The status stream is served by the events process (ASGI), not this test client's
    # WSGI: two people's streams against a real one in tests/generations/test_events.py.
    "/api/v1/generations/events": "generation-events",
}

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def join_route(prefix: str, route: str) -> str:
    # As django.urls.resolvers._join_route, so the walk and resolve() agree.
    return prefix + route.removeprefix("^") if prefix else route


def api_routes(resolver=None, prefix=""):
    """(route, methods) of every URL pattern under api/v1/."""
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        route = join_route(prefix, str(entry.pattern))
        if isinstance(entry, URLResolver):
            yield from api_routes(entry, route)
        elif isinstance(entry, URLPattern) and route.startswith("api/v1/"):
            view = entry.callback
            actions = getattr(view, "actions", None)
            if actions is not None:
                methods = set(actions) - {"head", "options"}
            else:
                cls = getattr(view, "cls", None) or getattr(view, "view_class", None)
                methods = {name for name in HTTP_METHODS if hasattr(cls, name)}
            yield route, methods


def route_of(path: str) -> str:
    return resolve(path.split("?")[0]).route


def covered_pairs() -> set[tuple[str, str]]:
    dummy = {key: str(uuid.UUID(int=0)) for key in ID_KEYS}
    return {(route_of(case.fill(dummy)[0]), case.method) for case in CASES}


def test_the_walk_agrees_with_resolve():
    routes = {route for route, _ in api_routes()}
    assert {"api/v1/me", "api/v1/projects$", "api/v1/generations/(?P<pk>[^/.]+)/favorite$"} <= routes
    assert route_of("/api/v1/projects/" + str(uuid.uuid4())) in routes


def test_the_exemptions_still_exist():
    # A stale exemption (a path that now falls through to the catch-all, or resolves to
    # another view) would silently excuse something else.
    assert {path: resolve(path).url_name for path in EXEMPT} == EXEMPT


def test_every_api_route_has_an_isolation_row():
    exempt = {route_of(path) for path in EXEMPT}
    covered = covered_pairs()
    missing = sorted(
        f"{method.upper()} {route}"
        for route, methods in api_routes()
        if route not in exempt
        for method in methods
        if (route, method) not in covered
    )
    assert missing == [], "add a row to the isolation table (or a reviewed exemption) for these"


def test_the_table_has_no_rows_for_routes_that_are_gone():
    served = {(route, method) for route, methods in api_routes() for method in methods}
    assert covered_pairs() - served == set()
