"""Who may call what, at the HTTP level: every API endpoint × method × actor, one table of
expected status codes, every cell requested for real.

Each row of MATRIX is one request (path and body below); each cell is that request sent
with the actor's real access token, against a fresh copy of the world (every request
runs in a savepoint that is rolled back), compared by status code. A served endpoint
and method with no row, or a row for one that is gone, fails the suite; so does a
``docs/access-matrix.md`` that differs from the rendering of both matrices.
"""

import json
import os
import uuid

import pytest
from django.db import transaction
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from accounts.models import Session
from accounts.sessions import session_start
from generations.models import AIModel, Generation
from generations.services import generation_create
from projects.models import Project
from projects.services import project_create, project_delete
from stylestacks.models import StackContributor, StackInvite, StylePreset, StyleStack
from stylestacks.services import stylestack_create
from tests.conftest import bearer
from tests.factories import PASSWORD, UserFactory
from tests.security import DOC_PATH, REGENERATE, render_access_matrix

API = "/api/v1/"
ACTORS = ("anon", "owner", "other", "editor", "viewer", "staff")
NA = None  # not applicable: the endpoint has no contributors

LEGEND = """
**Actors.** `anon`: no token. `owner`: alice, whose objects the paths name. `other`: bob,
signed in, nothing shared with him. `editor` / `viewer`: carol / dave, contributors of
alice's private stack `{stack}` (stack endpoints only). `staff`: an `is_staff` user's
token — staff have no extra API rights except the health report.

**Paths.** `{private}` alice's private (empty) project, `{public}` her public project,
`{archived}` her archived project, `{generation}` her pending generation, `{stack}` her
private stack (one earlier version), `{public_stack}` her public stack, `{viewer}` dave's
user id, `{invite}` a pending invite of `{stack}` (an address with no account), `{preset}`
an active preset, `{refresh}` alice's refresh token, `{session}` a session of alice's
(another device than the one asking).

**Cells.** The status code: 2xx done; 400 refused as invalid (an editor changing
`visibility`); 401 no or bad credentials (a user's token is no webhook signature); 403
signed in but not allowed (a contributor whose role does not allow it, a non-staff health
report); 404 not found — an object not shared with the caller is always a 404, never a
403; `—` not applicable. A method an endpoint does not serve is a 405 (after the 401/403
of its row).
"""

# Request bodies, by row (the same key as in MATRIX). String values may name the
# world's objects as in the paths.
NEON = {"schema_version": 2, "prompt_blocks": {"style": {"text": "neon-soaked cyberpunk night"}}}
BODIES = {
    "POST auth/register": {"email": "newcomer@example.com", "password": PASSWORD, "full_name": "New Comer"},
    "POST auth/login": {"email": "alice@example.com", "password": PASSWORD},
    "POST auth/refresh": {"refresh": "{refresh}"},
    "PATCH me": {"full_name": "Renamed"},
    "POST projects": {"name": "New project"},
    "PUT projects/{private}": {"name": "Renamed", "description": "", "visibility": "private"},
    "PATCH projects/{private}": {"name": "Renamed"},
    "PATCH projects/{public}": {"name": "Renamed"},
    "POST generations": {"ai_model": "fal-ai/flux/schnell", "prompt": "a lighthouse"},
    "POST webhooks/fal": {"generation_id": "{generation}", "status": "OK"},
    "POST webhooks/local": {"generation_id": "{generation}", "status": "OK"},
    "POST billing/checkout": {"pack": "starter"},
    "POST style-stacks": {"name": "New stack"},
    "POST style-stacks/from-preset": {"preset": "{preset}"},
    "PUT style-stacks/{stack}": {"name": "Renamed", "style": NEON},
    "PATCH style-stacks/{stack}": {"description": "changed"},
    "PATCH style-stacks/{public_stack}": {"description": "changed"},
    "PATCH style-stacks/{stack} (visibility)": {"visibility": "public"},
    "POST style-stacks/{stack}/compose": {"ai_model": "fal-ai/flux/dev", "prompt": "a lighthouse"},
    "POST style-stacks/{stack}/contributors": {"email": "erin@example.com", "role": "viewer"},
    "POST style-stacks/{stack}/contributors (no account)": {"email": "nobody@example.com", "role": "viewer"},
    "PATCH style-stacks/{stack}/contributors/{viewer}": {"role": "editor"},
}

# fmt: off
MATRIX = {
    #                                                    anon  owner other editor viewer staff
    "POST auth/register":                                (201, 201,  201,  NA,    NA,    201),
    "POST auth/login":                                   (200, 200,  200,  NA,    NA,    200),
    "POST auth/refresh":                                 (200, 200,  200,  NA,    NA,    200),
    "POST auth/logout":                                  (401, 204,  204,  NA,    NA,    204),
    "GET me/sessions":                                   (401, 200,  200,  NA,    NA,    200),
    "DELETE me/sessions/{session}":                      (401, 204,  404,  NA,    NA,    404),
    "GET me":                                            (401, 200,  200,  NA,    NA,    200),
    "PATCH me":                                          (401, 200,  200,  NA,    NA,    200),
    "GET projects":                                      (401, 200,  200,  NA,    NA,    200),
    "POST projects":                                     (401, 201,  201,  NA,    NA,    201),
    "GET projects/{private}":                            (401, 200,  404,  NA,    NA,    404),
    "GET projects/{public}":                             (401, 200,  200,  NA,    NA,    200),
    "PUT projects/{private}":                            (401, 200,  404,  NA,    NA,    404),
    "PATCH projects/{private}":                          (401, 200,  404,  NA,    NA,    404),
    "PATCH projects/{public}":                           (401, 200,  404,  NA,    NA,    404),
    "DELETE projects/{private}":                         (401, 204,  404,  NA,    NA,    404),
    "POST projects/{archived}/restore":                  (401, 200,  404,  NA,    NA,    404),
    "GET models":                                        (200, 200,  200,  NA,    NA,    200),
    "GET models/fal-ai/flux/dev":                        (200, 200,  200,  NA,    NA,    200),
    "GET generations":                                   (401, 200,  200,  NA,    NA,    200),
    "POST generations":                                  (401, 201,  201,  NA,    NA,    201),
    "GET generations/stats":                             (401, 200,  200,  NA,    NA,    200),
    # The stream itself is served by the events process (ASGI): here, a WSGI server
    # answers 421 (Misdirected Request) events_not_routed to everyone (its 401s and owner-only rows are tested
    # against a real events process: tests/generations/test_events.py).
    "GET generations/events":                            (421, 421,  421,  NA,    NA,    421),
    "POST generations/events/token":                     (401, 201,  201,  NA,    NA,    201),
    "GET generations/{generation}":                      (401, 200,  404,  NA,    NA,    404),
    "DELETE generations/{generation}":                   (401, 409,  404,  NA,    NA,    404),
    "POST generations/{generation}/cancel":              (401, 200,  404,  NA,    NA,    404),
    "POST generations/{generation}/favorite":            (401, 200,  404,  NA,    NA,    404),
    "DELETE generations/{generation}/favorite":          (401, 200,  404,  NA,    NA,    404),
    "GET credits/balance":                               (401, 200,  200,  NA,    NA,    200),
    "GET credits/transactions":                          (401, 200,  200,  NA,    NA,    200),
    "POST webhooks/fal":                                 (401, 401,  401,  NA,    NA,    401),
    "POST webhooks/local":                               (401, 401,  401,  NA,    NA,    401),
    "GET style-stacks":                                  (401, 200,  200,  NA,    NA,    200),
    "POST style-stacks":                                 (401, 201,  201,  NA,    NA,    201),
    "GET style-stacks/explore":                          (401, 200,  200,  NA,    NA,    200),
    "GET style-stacks/schema":                           (200, 200,  200,  NA,    NA,    200),
    "POST style-stacks/from-preset":                     (401, 201,  201,  NA,    NA,    201),
    "GET style-stacks/{stack}":                          (401, 200,  404,  200,   200,   404),
    "GET style-stacks/{public_stack}":                   (401, 200,  200,  200,   200,   200),
    "PATCH style-stacks/{public_stack}":                 (401, 200,  404,  404,   404,   404),
    "POST style-stacks/{public_stack}/fork":             (401, 201,  201,  201,   201,   201),
    "GET style-stacks/{public_stack}/versions":          (401, 200,  404,  404,   404,   404),
    "GET style-stacks/{public_stack}/contributors":      (401, 200,  404,  404,   404,   404),
    "PUT style-stacks/{stack}":                          (401, 200,  404,  200,   403,   404),
    "PATCH style-stacks/{stack}":                        (401, 200,  404,  200,   403,   404),
    "PATCH style-stacks/{stack} (visibility)":           (401, 200,  404,  400,   403,   404),
    "DELETE style-stacks/{stack}":                       (401, 204,  404,  404,   404,   404),
    "POST style-stacks/{stack}/fork":                    (401, 201,  404,  201,   201,   404),
    "POST style-stacks/{stack}/compose":                 (401, 200,  404,  200,   200,   404),
    "GET style-stacks/{stack}/versions":                 (401, 200,  404,  200,   200,   404),
    "POST style-stacks/{stack}/versions/1/restore":      (401, 200,  404,  200,   403,   404),
    "GET style-stacks/{stack}/contributors":             (401, 200,  404,  200,   200,   404),
    "POST style-stacks/{stack}/contributors":            (401, 202,  404,  404,   404,   404),
    "POST style-stacks/{stack}/contributors (no account)": (401, 202, 404,  404,   404,   404),
    "PATCH style-stacks/{stack}/contributors/{viewer}":  (401, 200,  404,  403,   403,   404),
    "DELETE style-stacks/{stack}/contributors/{viewer}": (401, 204,  404,  403,   204,   404),
    "DELETE style-stacks/{stack}/invites/{invite}":      (401, 204,  404,  404,   404,   404),
    "GET presets":                                       (200, 200,  200,  NA,    NA,    200),
    "GET presets/{preset}":                              (200, 200,  200,  NA,    NA,    200),
    "GET billing/packs":                                 (200, 200,  200,  NA,    NA,    200),
    "GET billing/plans":                                 (200, 200,  200,  NA,    NA,    200),
    "GET billing/orders":                                (401, 200,  200,  NA,    NA,    200),
    # No STRIPE_SECRET_KEY in tests: refused as not configured, after authentication.
    "POST billing/checkout":                             (401, 503,  503,  NA,    NA,    503),
    "POST billing/portal":                               (401, 503,  503,  NA,    NA,    503),
    # A user's token is no Stripe signature: 400, as Stripe expects for a bad one.
    "POST billing/stripe/webhook":                       (400, 400,  400,  NA,    NA,    400),
    "GET health":                                        (200, 200,  200,  NA,    NA,    200),
    "GET health/report":                                 (401, 403,  403,  NA,    NA,    200),
    "GET /":                                             (200, 200,  200,  NA,    NA,    200),
    "GET schema":                                        (200, 200,  200,  NA,    NA,    200),
    "GET docs":                                          (200, 200,  200,  NA,    NA,    200),
    "GET redoc":                                         (200, 200,  200,  NA,    NA,    200),
}
# fmt: on


def request_of(key: str) -> tuple[str, str, dict | None]:
    """``"PATCH style-stacks/{stack} (visibility)"`` → (method, path template, body)."""
    method, path = key.split()[:2]
    return method.lower(), "" if path == "/" else path, BODIES.get(key)


def body_text(body: dict) -> str:
    return json.dumps(body, separators=(", ", ": "))


def cell_text(cell) -> str:
    return "—" if cell is NA else str(cell)


# --- the world -----------------------------------------------------------------------


@pytest.fixture
def world(alice, bob, staff, settings):
    """alice's objects the paths name, contributors carol (editor) and dave (viewer) of
    her private stack, and erin, whom the owner invites."""
    settings.PASSWORD_BREACH_CHECK = False  # never the network (accounts/passwords.py)
    carol = UserFactory(email="carol@example.com")
    dave = UserFactory(email="dave@example.com")
    UserFactory(email="erin@example.com")
    private = project_create(user=alice, name="Private")
    public = project_create(user=alice, name="Public", visibility="public")
    archived = project_create(user=alice, name="Archived")
    flux = AIModel.objects.get(pk="fal-ai/flux/dev")
    generation_create(user=alice, ai_model=flux, prompt="kept", project=archived)
    assert project_delete(project=Project.objects.get(pk=archived.pk)) is not None  # archived, not deleted
    generation = generation_create(user=alice, ai_model=flux, prompt="a violet heron")
    stack = stylestack_create(user=alice, name="Private stack")
    for person, role in ((carol, "editor"), (dave, "viewer")):
        StackContributor.objects.create(stack=stack, user=person, role=role, email=person.email, invited_by=alice)
    StyleStack.objects.filter(pk=stack.pk).update(style=NEON)  # version 1 is kept
    invite = StackInvite.objects.create(stack=stack, email="frank@example.com", role="viewer", invited_by=alice)
    public_stack = stylestack_create(user=alice, name="Public stack", visibility="public")
    preset = StylePreset.objects.create(slug="matrix-noir", name="Noir", style=NEON)
    assert Generation.objects.get(pk=generation.pk).status == "pending"
    return {
        "people": {"owner": alice, "other": bob, "editor": carol, "viewer": dave, "staff": staff},
        "ids": {
            "private": str(private.pk),
            "public": str(public.pk),
            "archived": str(archived.pk),
            "generation": str(generation.pk),
            "stack": str(stack.pk),
            "public_stack": str(public_stack.pk),
            "viewer": str(dave.pk),
            "invite": str(invite.pk),
            "preset": preset.slug,
            "refresh": session_start(alice).refresh_token,
            "session": str(Session.objects.create(user=alice).pk),
        },
    }


def fill(key: str, ids: dict):
    method, path, body = request_of(key)
    if body is not None:
        body = {name: value.format(**ids) if isinstance(value, str) else value for name, value in body.items()}
    return method, API + path.format(**ids), body


class Undo(Exception):
    """Raised to roll a request's savepoint back once its status is known."""


def status_of(api, method: str, path: str, body, person) -> int:
    """The status ``person`` (None: no token) gets; whatever the request changed is rolled back."""
    try:
        with transaction.atomic():
            response = getattr(api, method)(path, body, format="json", **(bearer(person) if person else {}))
            raise Undo
    except Undo:
        return response.status_code


@pytest.mark.parametrize("key", list(MATRIX))
def test_access_matrix_api(world, api, key):
    method, path, body = fill(key, world["ids"])
    want = dict(zip(ACTORS, MATRIX[key], strict=True))
    got = {
        actor: NA if cell is NA else status_of(api, method, path, body, world["people"].get(actor))
        for actor, cell in want.items()
    }
    assert got == want


# --- the matrix covers the API -------------------------------------------------------

HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def join_route(prefix: str, route: str) -> str:
    # As django.urls.resolvers._join_route, so the walk and resolve() agree.
    return prefix + route.removeprefix("^") if prefix else route


def api_routes(resolver=None, prefix=""):
    """(route, methods served) of every URL pattern under api/v1/."""
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
            if methods:  # not the catch-all 404 (its route is the API root's, api/v1/)
                yield route, methods


DUMMY_IDS = {
    **{name: str(uuid.UUID(int=0)) for name in ("private", "public", "archived", "generation", "stack", "session")},
    **{"public_stack": str(uuid.UUID(int=1)), "viewer": str(uuid.UUID(int=2)), "invite": str(uuid.UUID(int=3))},
    **{"preset": "x", "refresh": "x"},
}


def covered() -> dict[tuple[str, str], str]:
    """(route, method) → the first MATRIX row requesting it."""
    pairs = {}
    for key in MATRIX:
        method, path, _ = fill(key, DUMMY_IDS)
        pairs.setdefault((resolve(path).route, method), key)
    return pairs


def test_every_endpoint_and_method_has_a_row():
    served = {(route, method) for route, methods in api_routes() for method in methods}
    assert len(served) > 40, "the walk found the API"
    assert sorted(served - set(covered())) == [], "add a row to MATRIX for these"
    assert sorted(set(covered()) - served) == [], "MATRIX has rows for endpoints that are gone"


def test_methods_an_endpoint_does_not_serve_are_405(world, api):
    """The other side of the walk: on every route, a method it does not serve is a 405 —
    after authentication and permissions, so where the route's row says 401 or 403 (no
    token, a webhook without a signature, the staff-only report) it is that instead."""
    served = dict(api_routes())
    first_row = {}
    for (route, _), key in covered().items():
        first_row.setdefault(route, key)
    wrong = {}
    for route, key in first_row.items():
        _, path, _ = fill(key, world["ids"])
        for method in sorted(set(HTTP_METHODS) - served[route]):
            for actor in ("anon", "owner"):
                cell = MATRIX[key][ACTORS.index(actor)]
                want = cell if cell in (401, 403) else 405
                status = status_of(api, method, path, {}, world["people"].get(actor))
                if status != want:
                    wrong[f"{method.upper()} {path} as {actor}"] = (status, want)
    assert len(first_row) > 30
    assert wrong == {}


# --- the rendering ---------------------------------------------------------------------


def test_docs_access_matrix_is_up_to_date():
    rendered = render_access_matrix()
    if os.environ.get("UPDATE_ACCESS_MATRIX"):
        DOC_PATH.parent.mkdir(exist_ok=True)
        DOC_PATH.write_text(rendered)
    current = DOC_PATH.read_text() if DOC_PATH.exists() else ""
    assert current == rendered, f"{DOC_PATH.name} is out of date with the matrices; regenerate it: {REGENERATE}"
