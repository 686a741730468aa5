"""Schemathesis against the project's own OpenAPI schema, in-process over WSGI, as a
signed-in person with data: credits, projects, generations in every state, style stacks
with versions and contributors.

* ``test_stateful`` — scenarios along the links schemathesis infers from the schema
  (create a project → read / change / delete / restore it; create a generation → cancel /
  favourite it; a stack → fork / compose / versions / contributors …).
* ``test_api`` — every operation of the schema through schemathesis' examples, coverage
  (boundary and negative values, request-shape probes) and fuzzing phases. Stored ids are
  swapped into path parameters and id-like query parameters and body fields of positive
  cases, so requests reach real objects and not only the 404 / 400 paths.
* ``test_the_fuzzed_schema_is_the_served_one`` — what is fuzzed is what /api/v1/schema serves.
* ``test_request_budget`` — the run made at least ``MIN_REQUESTS`` requests (keep it last).

Every response must pass schemathesis' checks: not a server error, a documented status
code, the documented content type and headers, a body valid against its schema, auth
enforced (the same request without or with a bad token is refused), created resources
reachable, deleted ones gone. Two checks are off, see ``CONFIG``.

Not fuzzed: /api/v1/schema, /docs, /redoc and the /api/v1/ catch-all are not in the
schema (they describe or serve the API, they are not operations of it); /admin/ and
/media/ are not part of the API. Every operation of the schema is fuzzed, the webhook
too: it gets a valid signature of its JSON body four times in five.

Budget: ``FUZZ_EXAMPLES`` fuzzing examples per operation and stateful scenarios (default
20, the CI run: about 3,000 requests) and ``FUZZ_SEED`` (default fixed; ``random`` draws
one, printed with any failure). ``make fuzz`` runs ten times the budget with a random
seed. Run this module in one process (under pytest-xdist: ``--dist loadfile``), or the
budget cannot be counted.
"""

from __future__ import annotations

import copy
import json
import os
import random
import traceback
import zlib
from collections import Counter
from typing import Any

import hypothesis
import pytest
import schemathesis
import yaml
from django.core import signals
from django.core.cache import caches
from django.db import close_old_connections, transaction
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.renderers import OpenApiJsonRenderer
from hypothesis import strategies as st
from schemathesis.core import NOT_SET
from schemathesis.core.result import Ok
from schemathesis.generation.meta import TestPhase
from schemathesis.openapi.checks import UseAfterFree
from schemathesis.transport.serialization import serialize_json

from accounts.models import Session, User
from accounts.sessions import session_start
from billing.models import CreditPack, Plan
from credits.services import credits_grant
from generations import services as generation_services
from generations.models import AIModel
from generations.outputs import store_outputs
from generations.providers.local import LocalProvider
from generations.webhooks import SIGNATURE_HEADER, sign
from projects.services import project_create
from stylestacks.models import StylePreset
from stylestacks.services import contributor_add, stylestack_create, stylestack_update
from velro.wsgi import application

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 20)
_seed = os.environ.get("FUZZ_SEED") or "20260714"
SEED = random.SystemRandom().randrange(2**32) if _seed == "random" else int(_seed)
REPLAY = f"Replay with FUZZ_SEED={SEED} FUZZ_EXAMPLES={EXAMPLES}."
MIN_REQUESTS = 2000
STATEFUL_STEPS = 12
WEBHOOK_SECRET = "fuzz-webhook-secret"
WEBHOOK_PATH = "/api/v1/webhooks/{provider}"
# Stripe's webhook is fuzzed unsigned: its body is Stripe's (signed events are
# tests/billing's), so every case is its documented 400.
STRIPE_WEBHOOK_PATH = "/api/v1/billing/stripe/webhook"
PASSWORD = "a-Long-and-unusual-pass-7"


def _load_schema() -> dict:
    # The document /api/v1/schema serves (test_the_fuzzed_schema_is_the_served_one checks
    # that), built without a request so that it exists at collection time, before any
    # database does.
    document = SchemaGenerator().get_schema(request=None, public=True)
    return json.loads(OpenApiJsonRenderer().render(document))


RAW_SCHEMA = _load_schema()
CONFIG = schemathesis.Config.from_dict(
    {
        "seed": SEED,
        "generation": {"max-examples": EXAMPLES, "database": "none"},
        "continue-on-failure": True,  # every distinct failure of an operation, not only the first
        "checks": {
            # Off: the API validates more than a JSON Schema can say (the referenced model,
            # project or preset exists, password strength, a name not taken yet, who may
            # change what, unknown fields are refused), so schema-valid input is often
            # rightly a 400; and lenient query parsing (an empty filter is ignored) is no
            # defect. What a response says is checked in full either way.
            "positive_data_acceptance": {"enabled": False},
            "negative_data_rejection": {"enabled": False},
        },
        "phases": {"stateful": {"max-steps": STATEFUL_STEPS}},
    }
)
# schemathesis adds the links it infers to the document it is given: hand it a copy.
schema = schemathesis.openapi.from_dict(copy.deepcopy(RAW_SCHEMA), config=CONFIG)
schema.app = application

# ---------------------------------------------------------------------------------------
# Ids of the current test's data, swapped into generated requests.

KNOWN: dict[str, list[Any]] = {}
TOKEN: dict[str, str] = {}
REQUESTS: Counter = Counter()  # requests sent, by operation label (and "stateful")
STATUSES: dict[str, Counter] = {}  # response status codes, by operation label

PATH_POOLS = {"user_id": "user_id", "version": "version", "slug": "preset_slug", "provider": "provider"}
ID_POOLS = {
    "/api/v1/generations/": "generation",
    "/api/v1/projects/": "project",
    "/api/v1/style-stacks/": "stack",
    "/api/v1/models/": "ai_model",
}
BODY_POOLS = {  # and query parameters
    "ai_model": "ai_model",
    "project": "project",
    "parent": "generation",
    "style_stack": "stack",
    "preset": "preset_slug",
    "email": "email",
    "generation_id": "generation",
    "request_id": "request_id",
    "pack": "pack_slug",
    "plan": "plan_slug",
}


def _pool(path: str, name: str) -> str | None:
    if name == "id":
        return next((pool for prefix, pool in ID_POOLS.items() if path.startswith(prefix)), None)
    return PATH_POOLS.get(name)


def _pick(pool: str, rnd: random.Random) -> Any:
    values = KNOWN.get(pool) or ["00000000-0000-0000-0000-000000000000"]
    return values[rnd.randrange(len(values))]


def _substitute(case, rnd: random.Random):
    """Put stored ids into about two thirds of the path parameters and of the id-like
    query parameters and body fields of a positive case. Negative cases stay negative, and stateful scenarios keep
    the ids their links put in place."""
    meta = case.meta
    if meta is not None and (meta.generation.mode.name == "NEGATIVE" or meta.phase.name == TestPhase.STATEFUL):
        return case
    if case.path_parameters:
        params = dict(case.path_parameters)
        for name in params:
            pool = _pool(case.operation.path, name)
            if pool and rnd.random() < 0.7:
                params[name] = _pick(pool, rnd)
        case.path_parameters = params
    if case.query:
        query = dict(case.query)
        for name in query:
            if name in BODY_POOLS and rnd.random() < 0.6:
                query[name] = str(_pick(BODY_POOLS[name], rnd))
        case.query = query
    if isinstance(case.body, dict):
        body = dict(case.body)
        for name in body:
            if name in BODY_POOLS and rnd.random() < 0.6:
                body[name] = str(_pick(BODY_POOLS[name], rnd))
        case.body = body
    return case


@schema.hook
def flatmap_case(context, case):
    # Hypothesis draws the choices, so a failing case replays and shrinks.
    return st.randoms(use_true_random=False).map(lambda rnd: _substitute(case, rnd))


@schema.hook("filter_failure")
def an_archived_project_is_not_a_deleted_one(context, failure, case, response):
    """``DELETE projects/{id}`` archives a project that has generations (200, as
    documented: no generation loses its project) and deletes only an empty one (204).
    use_after_free takes any 2xx DELETE for a deletion; for a project that still has
    generations, a later 200 is the documented outcome. An empty project must be gone
    after its DELETE, and the check still holds the API to that."""
    if isinstance(failure, UseAfterFree) and failure.free.startswith("DELETE /api/v1/projects/"):
        try:
            return not response.json().get("generation_count")
        except (ValueError, AttributeError):
            return True
    return True


# ---------------------------------------------------------------------------------------
# Who calls, with what data.

PLACEHOLDER = "fuzz-user-token"


@schema.auth(refresh_interval=None).skip_for(path=[WEBHOOK_PATH, STRIPE_WEBHOOK_PATH])
class FuzzUserAuth:
    """The fuzz user's access token on every request, set the way schemathesis knows, so
    ignored_auth can check that the same request without it (or with a bad one) is
    refused. The examples phase builds its cases at collection time, before the user
    exists: they carry a placeholder that ``_with_token`` swaps for the current token."""

    def get(self, case, context):
        return PLACEHOLDER

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def _with_token(case) -> None:
    if case.headers:
        # A generated Host header (an empty one, say) is the web server's 400 to give
        # (Django's DisallowedHost), before any view: not something the API documents.
        case.headers = {name: value for name, value in case.headers.items() if name.lower() != "host"}
    if case.headers and case.headers.get("Authorization") == f"Bearer {PLACEHOLDER}":
        if not Session.objects.filter(pk=TOKEN["session"]).exists():  # a fuzzed logout ended it
            _sign_in(User.objects.get(email="fuzz@example.com"))
        case.headers["Authorization"] = f"Bearer {TOKEN['access']}"


def _sign_in(user) -> None:
    issued = session_start(user)
    TOKEN.update(access=issued.access_token, session=str(issued.session.pk))


@pytest.fixture
def fuzz_stripe(settings):
    """Stripe's API on loopback (tests/fakes/stripe.py), so checkout and the portal answer."""
    from tests.fakes.stripe import FakeStripe

    with FakeStripe() as server:
        server.use(settings)
        yield server


@pytest.fixture
def fuzz_user(db, settings, tmp_path, fuzz_stripe):
    """A person with a million credits, two projects (one with a generation, one empty and
    public), generations pending, processing (with a provider request id, for webhooks),
    completed (real files from the local provider) and failed, a stack with a previous
    version and a viewer, and another person's public stack they may edit."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.PASSWORD_BREACH_CHECK = False  # no internet: the bundled list of breached passwords
    for cache in caches.all():  # no rate-limit counters from earlier tests
        cache.clear()

    user = User.objects.create_user("fuzz@example.com", PASSWORD, raw_user_meta_data={"full_name": "Fuzz Tester"})
    other = User.objects.create_user("other@example.com", PASSWORD, raw_user_meta_data={"full_name": "Other Person"})
    credits_grant(user=user, amount=1_000_000, reason="fuzzing")

    projects = [
        project_create(user=user, name="Noir shorts", description="detectives"),
        project_create(user=user, name="Empty", visibility="public"),
    ]
    style = {"schema_version": 2, "prompt_blocks": {"style": {"text": "high-contrast black and white"}}}
    stack = stylestack_create(user=user, name="Noir", style=style, tags=["noir", "film"])
    stylestack_update(stack=stack, user=user, data={"style": {**style, "parameters": {"seed": 7}}})
    contributor_add(stack=stack, user=user, email=other.email, role="viewer")
    shared = stylestack_create(user=other, name="Pastel", style=style, visibility="public")
    contributor_add(stack=shared, user=other, email=user.email, role="editor")

    flux = AIModel.objects.get(pk="fal-ai/flux/dev")
    small = {"width": 256, "height": 256, "seed": 3}
    generations = [
        generation_services.generation_create(
            user=user, ai_model=flux, prompt=prompt, parameters=small, project=projects[0] if i == 0 else None
        )
        for i, prompt in enumerate(["a red fox", "a blue owl", "a green frog", "a grey wolf"])
    ]
    generations.append(
        generation_services.generation_create(user=user, ai_model=flux, prompt="a noir alley", style_stack=stack)
    )
    # One stays pending; the others move on as a worker and a provider would move them.
    completed = generation_services.generation_claim_next()
    outputs = store_outputs(completed, LocalProvider().run(completed).outputs)
    assert generation_services.generation_complete(generation=completed, outputs=outputs)
    failed = generation_services.generation_claim_next()
    assert generation_services.generation_fail(generation=failed, error="The provider reported an error.")
    processing = generation_services.generation_claim_next()
    processing.provider_request_id = "req-fuzz-1"
    processing.save(update_fields=["provider_request_id"])

    # Packs and plans for sale (the seeded ones get Stripe prices).
    CreditPack.objects.filter(slug__in=["starter", "creator"]).update(stripe_price_id="price_fuzz_pack")
    Plan.objects.filter(slug__in=["basic", "pro"]).update(stripe_price_id="price_fuzz_plan")

    KNOWN.clear()
    KNOWN.update(
        pack_slug=["starter", "creator"],
        plan_slug=["basic", "pro"],
        generation=[str(g.pk) for g in generations],
        project=[str(p.pk) for p in projects],
        stack=[str(stack.pk), str(shared.pk)],
        ai_model=list(AIModel.objects.order_by("pk").values_list("pk", flat=True)),
        preset_slug=list(StylePreset.objects.order_by("slug").values_list("slug", flat=True)[:20]),
        user_id=[str(other.pk), str(user.pk)],
        version=[1, 2],
        email=[other.email, user.email],
        provider=["fal"],
        request_id=["req-fuzz-1"],
    )
    _sign_in(user)
    return user


@pytest.fixture
def app_calls(fuzz_user):
    """Call the WSGI app the way Django's test client does: the test's transaction stays
    open (no close_old_connections around requests). Collects the exception behind each
    500, for the failure report."""
    caught: list[str] = []

    def on_exception(sender, request=None, **kwargs):
        where = f"{request.method} {request.get_full_path()}\n" if request is not None else ""
        caught.append(where + traceback.format_exc())

    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    signals.got_request_exception.connect(on_exception)
    try:
        yield caught
    finally:
        signals.got_request_exception.disconnect(on_exception)
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


def _webhook_request(case) -> dict:
    """A provider's webhook: sign its JSON body with the configured secret, four times in
    five (the rest keep the generated signature header). The body is serialized here and
    sent as is, so the signature covers exactly the bytes sent."""
    if case.operation.path != WEBHOOK_PATH or case.media_type != "application/json" or case.body is NOT_SET:
        return {}
    serialized = serialize_json(case.body)
    raw = serialized["data"] if "data" in serialized else json.dumps(serialized["json"]).encode()
    if zlib.crc32(raw) % 5 == 0:
        return {}
    return {"headers": {SIGNATURE_HEADER: sign(raw, secret=WEBHOOK_SECRET)}, "data": raw}


def _explain(exc: BaseException, tracebacks: list[str]) -> None:
    for text in tracebacks:
        exc.add_note("Server traceback:\n" + text)
    exc.add_note(REPLAY)


# ---------------------------------------------------------------------------------------
# Stateful: scenarios along the inferred links. First, so that what test_api's responses
# taught schemathesis (values it reuses) does not change the scenarios a seed draws.


class Workflow(schema.as_state_machine()):
    """Each scenario runs in a savepoint rolled back at its end, so it starts from the
    seeded data and a failing one replays and shrinks. A failure lists the scenario's
    requests."""

    caught: list[str] = []
    rule_order_seed = SEED

    def setup(self):
        self.savepoint = transaction.savepoint()
        self.seen = len(self.caught)
        self.steps: list[str] = []

    def teardown(self):
        transaction.savepoint_rollback(self.savepoint)

    def get_call_kwargs(self, case):
        return _webhook_request(case)

    def call(self, case, **kwargs):
        REQUESTS["stateful"] += 1
        _with_token(case)
        response = case.call(**kwargs)
        STATUSES.setdefault("stateful", Counter())[response.status_code] += 1
        body = response.request.body
        body = body.decode(errors="replace") if isinstance(body, bytes) else body or ""
        self.steps.append(f"{case.method} {response.request.url} {body[:300]} -> {response.status_code}")
        return response

    def validate_response(self, response, case, additional_checks=None, **kwargs):
        try:
            super().validate_response(response, case, additional_checks=additional_checks, **kwargs)
        except BaseException as exc:
            exc.add_note("The scenario's requests:\n  " + "\n  ".join(self.steps))
            _explain(exc, self.caught[self.seen :])
            raise
        finally:
            self.seen = len(self.caught)


def test_stateful(app_calls):
    Workflow.caught = app_calls
    before = REQUESTS["stateful"]
    hypothesis.seed(SEED)(Workflow).run(
        settings=hypothesis.settings(
            max_examples=EXAMPLES,
            stateful_step_count=STATEFUL_STEPS,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
        )
    )
    assert REQUESTS["stateful"] - before >= EXAMPLES  # the scenarios ran


# ---------------------------------------------------------------------------------------
# Every operation.


@schema.parametrize()
@hypothesis.settings(deadline=None, suppress_health_check=list(hypothesis.HealthCheck), print_blob=False)
def test_api(case, app_calls):
    """One case, and the requests its checks send, in a savepoint rolled back afterwards:
    every example starts from the seeded data, so a failure replays and shrinks."""
    REQUESTS[case.operation.label] += 1
    _with_token(case)
    kwargs = _webhook_request(case)
    seen = len(app_calls)
    savepoint = transaction.savepoint()
    try:
        response = case.call(**kwargs)
        STATUSES.setdefault(case.operation.label, Counter())[response.status_code] += 1
        case.validate_response(response, headers=kwargs.get("headers"), transport_kwargs=kwargs or None)
    except BaseException as exc:
        _explain(exc, app_calls[seen:])
        raise
    finally:
        transaction.savepoint_rollback(savepoint)


# ---------------------------------------------------------------------------------------


def test_the_fuzzed_schema_is_the_served_one(db, client):
    response = client.get("/api/v1/schema")
    assert response.status_code == 200
    assert yaml.safe_load(response.content) == RAW_SCHEMA  # YAML by default (and JSON is YAML)


def test_request_budget():
    """At least MIN_REQUESTS requests when the whole module ran here; when only some
    operations did (``-k``, pytest-xdist), at least their share of it."""
    operations = {result.ok().label for result in schema.get_all_operations() if isinstance(result, Ok)}
    ran = operations & set(REQUESTS)
    total = sum(REQUESTS.values())
    lines = [f"schemathesis: {total} requests, seed {SEED}, {EXAMPLES} examples per operation"]
    for label, count in sorted(REQUESTS.items()):
        statuses = " ".join(f"{code}×{n}" for code, n in sorted(STATUSES.get(label, {}).items()))
        lines.append(f"  {count:5d}  {label:60s} {statuses}")
    print("\n" + "\n".join(lines))
    assert ran, "no operation was fuzzed in this process; run tests/fuzz in one process (--dist loadfile)"
    assert total >= MIN_REQUESTS * len(ran) / len(operations), "\n".join(lines)
