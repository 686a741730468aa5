"""Bad input, table-driven over every write endpoint and every filter of /api/v1/.

Over-long strings, wrong JSON types, malformed JSON, huge bodies, invalid ids, unknown
fields, NUL bytes, lone surrogates, unicode edge cases and SQL-looking searches: each is
a 4xx in the one error shape ``{"detail", "code", "errors"?}`` (the field named in
``errors`` for validation failures), or — where the input is legitimate — a 2xx that
stores the value unchanged. A refused write stores nothing: every table the API writes
(and the media folder) is compared before and after, and the ledger invariant is checked
after every test by ``tests/conftest.py``.
"""

import contextlib
import copy
import functools
import io
import json
import re
from dataclasses import dataclass, field
from urllib.parse import quote

import pytest
from django.conf import settings as django_settings
from django.core.cache import caches
from django.db import connection, transaction
from PIL import Image
from rest_framework.test import APIClient

from accounts.models import Profile, User
from accounts.sessions import session_start
from credits.models import CreditTransaction
from generations.models import AIModel, Generation
from generations.services import generation_create
from projects.models import Project
from projects.services import project_create
from stylestacks.models import StackContributor, StylePreset, StyleStack, StyleStackVersion
from stylestacks.services import stylestack_create
from tests.conftest import bearer
from tests.factories import PASSWORD, UserFactory

API = "/api/v1/"
FLUX = "fal-ai/flux/dev"  # image, 25 credits, negative prompts and references, prompts ≤ 1000
STYLE = {"schema_version": 2, "prompt_blocks": {"style": {"text": "high-contrast black and white"}}}
TOO_BIG = django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1024
MISSING = object()


# --- the world every case runs against ------------------------------------------------


@dataclass
class World:
    alice: User
    bob: User
    carol: User
    project: Project
    stack: StyleStack
    preset: str
    media: object
    clients: dict = field(default_factory=dict)

    @functools.cached_property
    def ids(self) -> dict:
        return {
            "project": str(self.project.pk),
            "stack": str(self.stack.pk),
            "bob": str(self.bob.pk),
            "preset": self.preset,
            "refresh": session_start(self.alice).refresh_token,
        }

    def client(self, who: str | None) -> APIClient:
        if who not in self.clients:
            client = APIClient()
            client.raise_request_exception = False  # a 500 is a response to assert on, not a crash
            if who is not None:
                client.credentials(**bearer(getattr(self, who)))
            self.clients[who] = client
        return self.clients[who]


@pytest.fixture(autouse=True)
def _offline(settings):
    # No call to the Have I Been Pwned API from these tests (registering checks passwords).
    settings.PASSWORD_BREACH_CHECK = False


@pytest.fixture
def carol(db):
    return UserFactory(email="carol@example.com", raw_user_meta_data={"full_name": "Carol Third"})


@pytest.fixture
def world(alice, bob, carol, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    project = project_create(user=alice, name="Moodboard")
    stack = stylestack_create(user=alice, name="Noir", style=copy.deepcopy(STYLE), visibility="public")
    StackContributor.objects.create(stack=stack, user=bob, role="viewer", email=bob.email, invited_by=alice)
    preset = StylePreset.objects.filter(is_active=True).order_by("sort_order", "slug").values_list("slug", flat=True)
    world = World(alice, bob, carol, project, stack, preset.first(), settings.MEDIA_ROOT)
    # Sessions and alice's sign-in made now, outside the savepoints the cases roll back.
    assert world.ids["refresh"]
    for who in (None, "alice", "bob", "carol"):
        world.client(who)
    return world


TABLES = (
    User,
    Profile,
    Project,
    StyleStack,
    StackContributor,
    StyleStackVersion,
    Generation,
    CreditTransaction,
    StylePreset,
)
# One round trip: an md5 of every row of every table the API can write.
SNAPSHOT_SQL = "SELECT " + ", ".join(
    f"""(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM "{model._meta.db_table}" AS t)"""
    for model in TABLES
)


def snapshot(world) -> dict:
    """Every row the API can write (by table), and the media folder's files."""
    with connection.cursor() as cursor:
        cursor.execute(SNAPSHOT_SQL)
        state = dict(zip([model._meta.label for model in TABLES], cursor.fetchone(), strict=True))
    root = world.media
    state["media"] = sorted(str(p.relative_to(root)) for p in root.rglob("*")) if root.exists() else []
    return state


class Failures:
    """Run every case of a table row, then fail once listing each case that failed."""

    def __init__(self):
        self.items: dict[str, str] = {}

    @contextlib.contextmanager
    def case(self, label: str):
        """One case, in a savepoint rolled back afterwards: cases never see each other's rows."""
        try:
            with transaction.atomic():
                try:
                    yield
                finally:
                    transaction.set_rollback(True)
        except AssertionError as exc:
            self.items[label] = " ".join(str(exc).split())[:400]

    def check(self):
        assert not self.items, "\n" + "\n".join(f"  [{label}] {message}" for label, message in self.items.items())


def assert_refused(response, field=None) -> dict:
    """A clean 4xx: JSON of the one error shape; ``field`` named in ``errors``."""
    status = response.status_code
    assert 400 <= status < 500, f"{status}: {response.content[:300]!r}"
    content_type = response.get("Content-Type", "")
    assert content_type.startswith("application/json"), f"{status} {content_type}: {response.content[:120]!r}"
    body = response.json()
    assert isinstance(body.get("detail"), str) and body["detail"].strip(), body
    assert isinstance(body.get("code"), str) and body["code"], body
    if field is not None:
        if status == 400 and body["code"] == "parse_error" and UNSTORABLE.search(body["detail"]):
            return body  # NUL / lone surrogates: the parser refuses the whole body first
        assert status == 400 and body["code"] == "invalid", f"{status}: {body}"
        assert field in body.get("errors", {}), body
    return body


UNSTORABLE = re.compile(r"Null characters|surrogate")


def assert_accepted(response) -> dict:
    assert 200 <= response.status_code < 300, f"{response.status_code}: {response.content[:300]!r}"
    return response.json()


# --- the write endpoints ----------------------------------------------------------------


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # under /api/v1/; {project}, {stack}, {bob} filled from the world
    body: dict  # a valid body; string values "{project}" etc. are filled from the world
    user: str | None = "alice"  # None: anonymous


PROJECT_BODY = {"name": "Renamed", "description": "New", "visibility": "public"}
STACK_BODY = {
    "name": "Pastel",
    "description": "Soft light",
    "tags": ["soft"],
    "category": "general",
    "visibility": "private",
    "style": STYLE,
    "compatible_models": [FLUX],
}
GENERATION_BODY = {
    "ai_model": FLUX,
    "prompt": "a red fox in snow",
    "negative_prompt": "blurry",
    "parameters": {"seed": 7},
    "project": "{project}",
}
ENDPOINTS = {
    "register": Endpoint(
        "POST", "auth/register", {"email": "new@example.com", "password": PASSWORD, "full_name": "New Person"}, None
    ),
    "login": Endpoint("POST", "auth/login", {"email": "alice@example.com", "password": PASSWORD}, None),
    "refresh": Endpoint("POST", "auth/refresh", {"refresh": "{refresh}"}, None),
    "me": Endpoint("PATCH", "me", {"full_name": "Alice Renamed", "avatar_url": "https://example.com/a.png"}),
    "project-create": Endpoint(
        "POST", "projects", {"name": "Storyboard", "description": "Shots", "visibility": "private"}
    ),
    "project-patch": Endpoint("PATCH", "projects/{project}", PROJECT_BODY),
    "project-put": Endpoint("PUT", "projects/{project}", PROJECT_BODY),
    "generation-create": Endpoint("POST", "generations", GENERATION_BODY),
    "stack-create": Endpoint("POST", "style-stacks", STACK_BODY),
    "stack-patch": Endpoint("PATCH", "style-stacks/{stack}", STACK_BODY),
    "stack-put": Endpoint("PUT", "style-stacks/{stack}", STACK_BODY),
    "stack-fork": Endpoint("POST", "style-stacks/{stack}/fork", {"name": "My fork"}),
    "stack-compose": Endpoint(
        "POST",
        "style-stacks/{stack}/compose",
        {"ai_model": FLUX, "prompt": "a red fox", "negative_prompt": "blurry", "parameters": {"seed": 7}},
    ),
    "contributor-add": Endpoint(
        "POST", "style-stacks/{stack}/contributors", {"email": "carol@example.com", "role": "editor"}
    ),
    "contributor-role": Endpoint("PATCH", "style-stacks/{stack}/contributors/{bob}", {"role": "editor"}),
    "from-preset": Endpoint("POST", "style-stacks/from-preset", {"preset": "{preset}", "name": "From a preset"}),
}


def fill(value, ids: dict):
    if isinstance(value, dict):
        return {key: fill(item, ids) for key, item in value.items()}
    if isinstance(value, list):
        return [fill(item, ids) for item in value]
    if isinstance(value, str) and value.startswith("{") and value.endswith("}") and value[1:-1] in ids:
        return ids[value[1:-1]]
    return value


def valid_body(world, name: str) -> dict:
    return fill(copy.deepcopy(ENDPOINTS[name].body), world.ids)


def send(world, name: str, body=MISSING, *, raw: bytes | None = None, content_type="application/json", **extra):
    """One request to endpoint ``name``: ``body`` as JSON (``json.dumps`` escapes NUL and
    lone surrogates as \\u0000 and \\ud800, as a client would), or ``raw`` bytes."""
    endpoint = ENDPOINTS[name]
    if endpoint.user is None:
        caches["default"].clear()  # the auth endpoints' rate limits are not what is tested here
    if raw is None:
        raw = json.dumps(valid_body(world, name) if body is MISSING else body).encode()
    path = API + endpoint.path.format(**world.ids)
    return world.client(endpoint.user).generic(endpoint.method, path, raw, content_type=content_type, **extra)


def refused_write(world, name, field=None, **kwargs):
    """The request is a clean 4xx (naming ``field``) and no stored row changed."""
    before = snapshot(world)
    response = send(world, name, **kwargs)
    assert_refused(response, field)
    assert snapshot(world) == before, "a refused request changed stored data"
    return response


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_the_valid_body_of_each_endpoint_is_accepted(world, name):
    """The baseline that every other case changes in one place."""
    assert_accepted(send(world, name))


# --- malformed JSON ---------------------------------------------------------------------

MALFORMED = {
    "truncated": b'{"name": "x"',
    "trailing-garbage": b'{"name": "x"} trailing',
    "invalid-utf8": b'{"name": "\xff\xfe"}',
    "overlong-utf8": b'{"name": "\xc0\xaf"}',
    "utf16": '{"name": "x"}'.encode("utf-16"),
    "single-quotes": b"{'name': 'x'}",
    "nan": b'{"name": NaN}',
    "deep-arrays-10000": b"[" * 10_000 + b"]" * 10_000,
    "deep-objects-10000": b'{"a":' * 10_000 + b"1" + b"}" * 10_000,
}
NOT_AN_OBJECT = {"array": b"[1, 2]", "string": b'"x"', "null": b"null"}


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_malformed_json_is_a_400(world, name):
    """Syntax errors (deep nesting included) are a 400 ``parse_error``; a document that
    is not an object is a 400 ``invalid``."""
    failures = Failures()
    for kind, raw in {**MALFORMED, **NOT_AN_OBJECT}.items():
        with failures.case(kind):
            body = refused_write(world, name, raw=raw).json()
            assert body["code"] == ("parse_error" if kind in MALFORMED else "invalid"), body
    # Valid JSON, but a field's value nested 900 deep: refused as too deep (parse_error)
    # or as the wrong type for that field.
    first = next(iter(ENDPOINTS[name].body))
    rest = json.dumps({k: v for k, v in valid_body(world, name).items() if k != first})
    raw = f'{{"{first}": {"[" * 900}{"]" * 900}{"}" if rest == "{}" else ", " + rest[1:]}'.encode()
    assert json.loads(raw)  # valid JSON (just deep)
    with failures.case("deep-value-900"):
        body = refused_write(world, name, raw=raw).json()
        assert body["code"] == "parse_error" or first in body.get("errors", {}), body
    failures.check()


# --- huge bodies ------------------------------------------------------------------------

HUGE = "x" * TOO_BIG


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_a_body_over_the_size_limit_is_a_json_413_or_400(world, name):
    """> DATA_UPLOAD_MAX_MEMORY_SIZE: refused before parsing, in the API's error shape."""
    body = valid_body(world, name)
    response = refused_write(world, name, body={**body, next(iter(body)): HUGE})
    assert response.status_code in (400, 413), response.status_code


# --- unknown and read-only fields --------------------------------------------------------

EXTRA_KEYS = {"unknown": "bogus_field", "unicode": "ñame", "nul": "na\x00me", "empty": "", "long": "k" * 10_000}
READ_ONLY = {
    "me": ("credits_balance", 99_999),
    "project-create": ("generation_count", 5),
    "project-patch": ("archived_at", None),
    "generation-create": ("status", "completed"),
    "stack-create": ("usage_count", 10),
    "stack-patch": ("fork_count", 10),
}


@pytest.mark.parametrize("name", list(ENDPOINTS))
def test_unknown_fields_are_a_400_naming_them(world, name):
    failures = Failures()
    for label, key in EXTRA_KEYS.items():
        with failures.case(label):
            refused_write(world, name, key, body={**valid_body(world, name), key: "x"})
    if name in READ_ONLY:
        key, value = READ_ONLY[name]
        with failures.case(f"read-only {key}"):
            body = refused_write(world, name, key, body={**valid_body(world, name), key: value}).json()
            assert body["errors"][key] == ["This field is read-only."], body
    failures.check()


# --- the fields of every write endpoint -------------------------------------------------
# (endpoint, field, kind, limit): kind picks the wrong types and the bad values; limit is
# the maximum length (for lists: of an item).

FIELDS = [
    ("register", "email", "email", 254),
    ("register", "password", "text", 128),
    ("register", "full_name", "text", 100),
    ("login", "email", "login", None),
    ("login", "password", "login", None),
    ("refresh", "refresh", "login", None),
    ("me", "full_name", "text", 100),
    ("me", "avatar_url", "url", 2048),
    ("project-create", "name", "text", 120),
    ("project-create", "description", "text", 500),
    ("project-create", "visibility", "choice", None),
    ("project-patch", "name", "text", 120),
    ("project-patch", "description", "text", 500),
    ("project-patch", "visibility", "choice", None),
    ("generation-create", "ai_model", "ref", None),
    ("generation-create", "prompt", "text", 1000),  # flux's max_prompt_length
    ("generation-create", "negative_prompt", "text", 1000),
    ("generation-create", "parameters", "object", None),
    ("generation-create", "project", "nullable-ref", None),
    ("generation-create", "parent", "nullable-ref", None),
    ("generation-create", "style_stack", "nullable-ref", None),
    ("generation-create", "preset", "nullable-ref", None),
    ("stack-create", "name", "text", 100),
    ("stack-create", "description", "text", 1000),
    ("stack-create", "category", "choice", None),
    ("stack-create", "visibility", "choice", None),
    ("stack-create", "style", "object", None),
    ("stack-create", "tags", "list", 40),
    ("stack-create", "compatible_models", "list", 200),
    ("stack-patch", "name", "text", 100),
    ("stack-patch", "description", "text", 1000),
    ("stack-patch", "style", "object", None),
    ("stack-patch", "tags", "list", 40),
    ("stack-fork", "name", "text", 100),
    ("stack-compose", "ai_model", "ref", None),
    ("stack-compose", "prompt", "text", 10_000),
    ("stack-compose", "negative_prompt", "text", 1000),
    ("stack-compose", "parameters", "object", None),
    ("contributor-add", "email", "email", 254),
    ("contributor-add", "role", "choice", None),
    ("contributor-role", "role", "choice", None),
    ("from-preset", "preset", "ref", None),
    ("from-preset", "name", "text", 100),
]
FIELD_IDS = [f"{name}.{field_name}" for name, field_name, _, _ in FIELDS]
SCALAR_WRONG = {"int": 12, "true": True, "object": {"a": 1}, "list": ["a"], "null": None}
WRONG_TYPES = {
    "text": SCALAR_WRONG,
    "email": SCALAR_WRONG,
    "url": SCALAR_WRONG,
    "login": SCALAR_WRONG,
    "choice": SCALAR_WRONG,
    "ref": SCALAR_WRONG,
    "nullable-ref": {k: v for k, v in SCALAR_WRONG.items() if v is not None},  # null: "none"
    "object": {"int": 12, "true": True, "string": "text", "list": ["a"], "null": None},
    "list": {
        "int": 12,
        "true": True,
        "string": "text",
        "object": {"a": 1},
        "null": None,
        "item-int": [12],
        "item-object": [{"a": 1}],
        "item-list": [["a"]],
        "item-null": [None],
    },
}


def refused_field(world, name, field_name, kind, value):
    """The valid body with one field replaced is refused naming the field, and nothing
    changes (login and refresh may answer 401: "wrong credentials" is clean too)."""
    before = snapshot(world)
    response = send(world, name, {**valid_body(world, name), field_name: value})
    if kind == "login" and response.status_code == 401:
        assert_refused(response)
    else:
        assert_refused(response, field_name)
    assert snapshot(world) == before, f"{response.status_code}, but stored data changed"


@pytest.mark.parametrize(("name", "field_name", "kind", "limit"), FIELDS, ids=FIELD_IDS)
def test_wrong_json_types_are_a_400_naming_the_field(world, name, field_name, kind, limit):
    """Numbers, booleans, objects, lists and null where the field wants something else."""
    failures = Failures()
    for label, value in WRONG_TYPES[kind].items():
        with failures.case(label):
            refused_field(world, name, field_name, kind, value)
    failures.check()


@pytest.mark.parametrize("field_name", ["project", "parent", "style_stack", "preset"])
def test_null_is_accepted_for_optional_references(world, field_name):
    body = {**valid_body(world, "generation-create"), field_name: None}
    assert assert_accepted(send(world, "generation-create", body))[field_name] is None


# --- over-long strings ------------------------------------------------------------------


def sized(kind: str, length: int, char: str = "x") -> str:
    """A value of ``kind`` exactly ``length`` characters long."""
    if kind == "email":
        return char * (length - len("@example.com")) + "@example.com"
    if kind == "url":
        return "https://example.com/" + char * (length - len("https://example.com/"))
    return char * length


LIMITED = [(n, f, k, limit) for n, f, k, limit in FIELDS if limit is not None]


@pytest.mark.parametrize(("name", "field_name", "kind", "limit"), LIMITED, ids=[f"{n}.{f}" for n, f, _, _ in LIMITED])
def test_one_character_over_the_limit_is_a_400_naming_the_field(world, name, field_name, kind, limit):
    """limit + 1 characters, in ASCII and in emoji (4 UTF-8 bytes, 2 UTF-16 units each:
    the limit counts characters, the same as PostgreSQL's varchar)."""
    failures = Failures()
    chars = {"ascii": "x"} if kind in ("email", "url") else {"ascii": "x", "emoji": "🎬"}
    for label, char in chars.items():
        value = sized(kind, limit + 1, char)
        with failures.case(label):
            refused_field(world, name, field_name, kind, [value] if kind == "list" else value)
    failures.check()


OTHER_LIMITS = {
    "login.email-100k": ("login", "email", "a" * 100_000 + "@example.com"),
    "login.password-100k": ("login", "password", "p" * 100_000),
    "refresh.refresh-100k": ("refresh", "refresh", "r" * 100_000),
    "compose.prompt-10001": ("stack-compose", "prompt", "x" * 10_001),
    "generation.prompt-10001": ("generation-create", "prompt", "x" * 10_001),
    "stack-create.tags-21": ("stack-create", "tags", [f"tag{n}" for n in range(21)]),
    "stack-create.compatible_models-51": ("stack-create", "compatible_models", [FLUX] * 51),
    "stack-patch.tags-21": ("stack-patch", "tags", [f"tag{n}" for n in range(21)]),
}


@pytest.mark.parametrize("case", list(OTHER_LIMITS))
def test_other_limits(world, case):
    name, field_name, value = OTHER_LIMITS[case]
    refused_field(world, name, field_name, "login" if name in ("login", "refresh") else "text", value)


# --- NUL bytes and lone surrogates --------------------------------------------------------
# PostgreSQL text cannot store NUL and UTF-8 cannot encode a lone surrogate: both must be
# a 400 naming the field, never a 500.


def poisoned(world, name: str, field_name: str, kind: str, char: str):
    """The field's valid value with ``char`` in it."""
    if kind == "object":
        if field_name == "style":
            return {"schema_version": 2, "base_json": {"note": f"a{char}b"}}
        return {"seed": f"7{char}"}
    if kind == "list":
        return [f"a{char}b"]
    if kind in ("ref", "nullable-ref"):
        reference = {"ai_model": FLUX, "preset": world.preset, "project": str(world.project.pk)}
        return reference.get(field_name, str(world.stack.pk)) + char
    valid = valid_body(world, name)[field_name]
    return valid[: len(valid) // 2] + char + valid[len(valid) // 2 :]


@pytest.mark.parametrize(("name", "field_name", "kind", "limit"), FIELDS, ids=FIELD_IDS)
def test_nul_bytes_and_lone_surrogates_are_a_400_naming_the_field(world, name, field_name, kind, limit):
    failures = Failures()
    for label, char in {"nul": "\x00", "lone-surrogate": "\ud800"}.items():
        with failures.case(label):
            refused_field(world, name, field_name, kind, poisoned(world, name, field_name, kind, char))
    failures.check()


IN_STYLE = {
    "base_json-value": {"schema_version": 2, "base_json": {"note": "a\x00b"}},
    "base_json-key": {"schema_version": 2, "base_json": {"no\x00te": "x"}},
    "block-text": {"schema_version": 2, "prompt_blocks": {"style": {"text": "noir\x00"}}},
    "keyword-item": {"schema_version": 2, "prompt_blocks": {"keywords": {"items": ["rain\x00"]}}},
    "parameters": {"schema_version": 2, "parameters": {"sampler": "euler\x00"}},
    "old-shape-block": {"prompt_blocks": {"style": "noir\x00"}},
    "surrogate-in-base_json": {"schema_version": 2, "base_json": {"note": "\udfff"}},
}
IN_PARAMETERS = {"nul-key": {"seed\x00": 7}, "nul-value": {"seed": "7\x00"}, "surrogate": {"seed": "\ud800"}}


@pytest.mark.parametrize(
    ("name", "field_name", "cases"),
    [
        ("stack-create", "style", IN_STYLE),
        ("stack-patch", "style", IN_STYLE),
        ("generation-create", "parameters", IN_PARAMETERS),
        ("stack-compose", "parameters", IN_PARAMETERS),
    ],
    ids=["stack-create.style", "stack-patch.style", "generation-create.parameters", "stack-compose.parameters"],
)
def test_nul_bytes_inside_json_documents_are_a_400(world, name, field_name, cases):
    """Anywhere inside the style document or the parameters: jsonb cannot store \\u0000."""
    failures = Failures()
    for label, value in cases.items():
        with failures.case(label):
            refused_field(world, name, field_name, "object", value)
    failures.check()


# --- unicode edge cases: accepted and stored unchanged -----------------------------------

UNICODE = {
    "emoji": "🎬 noir 🌧️",
    "combining-marks": "cafe\u0301 noir",
    "rtl": "\u202eriou\u202c فيلم נואר",
    "zwj-sequence": "👩\u200d👩\u200d👧\u200d👦 family",
    "zero-width": "zero\u200bwidth\u200cjoin\u2060",
    "astral": "𝔫𝔬𝔦𝔯 𓂀",
    "noncharacters": "x\ufdd0\uffffy",
    "bom-inside": "x\ufeffy",
    "control-chars": "bell\x07 esc\x1b[0m",
    "long-grapheme-cluster": None,  # sized to the limit: "e" and limit - 1 combining acutes
    "emoji-at-limit": None,  # limit × U+1F3AC
    "ascii-at-limit": None,
}
ROUND_TRIP = [
    ("register", "full_name", 100),
    ("me", "full_name", 100),
    ("project-create", "name", 120),
    ("project-create", "description", 500),
    ("project-patch", "name", 120),
    ("generation-create", "prompt", 1000),
    ("generation-create", "negative_prompt", 1000),
    ("stack-create", "name", 100),
    ("stack-create", "description", 1000),
    ("stack-create", "tags", 40),
    ("stack-patch", "name", 100),
    ("stack-fork", "name", 100),
    ("from-preset", "name", 100),
]


def unicode_value(label: str, limit: int) -> str:
    if label == "long-grapheme-cluster":
        return "e" + "\u0301" * (limit - 1)
    if label == "emoji-at-limit":
        return "🎬" * limit
    if label == "ascii-at-limit":
        return "x" * limit
    return UNICODE[label]


def stored(world, name: str, field_name: str, body: dict, email: str):
    """(the value in the response, the value in the database)."""
    if name == "register":
        return body["user"][field_name], Profile.objects.get(email=email).full_name
    if name == "me":
        return body[field_name], getattr(Profile.objects.get(pk=world.alice.pk), field_name)
    model = {"project": Project, "generation": Generation, "stack": StyleStack, "from": StyleStack}[name.split("-")[0]]
    return body[field_name], getattr(model.objects.get(pk=body["id"]), field_name)


@pytest.mark.parametrize(("name", "field_name", "limit"), ROUND_TRIP, ids=[f"{n}.{f}" for n, f, _ in ROUND_TRIP])
def test_unicode_edge_cases_are_stored_unchanged(world, name, field_name, limit):
    """Accepted, and the response and the row hold exactly what was sent (no
    normalisation, no trimming of invisible characters, limits in characters)."""
    failures = Failures()
    for n, label in enumerate(UNICODE):
        value = unicode_value(label, limit)
        sent = [value] if field_name == "tags" else value
        email = f"new{n}@example.com"
        extra = {"email": email} if name == "register" else {}
        with failures.case(label):
            body = assert_accepted(send(world, name, {**valid_body(world, name), **extra, field_name: sent}))
            in_response, in_database = stored(world, name, field_name, body, email)
            assert in_response == sent, f"response: {in_response!r}"
            assert in_database == sent, f"database: {in_database!r}"
    failures.check()


# --- multipart: POST generations with a reference image ----------------------------------

BOUNDARY = "velroBoundary7MA4YWxkTrZu0gW"
MULTIPART_TYPE = f"multipart/form-data; boundary={BOUNDARY}"
MULTIPART_FIELDS = {"ai_model": FLUX, "prompt": "a red fox in snow", "parameters": '{"seed": 7}'}


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def multipart(fields: dict, files: dict | None = None) -> bytes:
    """A multipart/form-data body built by hand, so file names reach the server as sent."""
    parts = []
    for key, value in fields.items():
        head = f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"\r\n\r\n'
        parts.append(head.encode() + value.encode("utf-8", "surrogatepass") + b"\r\n")
    for key, (filename, content, content_type) in (files or {}).items():
        head = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{key}"; filename="{filename}"\r\n'
            f"Content-Type: {content_type}\r\n\r\n"
        )
        parts.append(head.encode() + content + b"\r\n")
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def send_multipart(world, fields: dict, files: dict | None = None):
    body = multipart({**MULTIPART_FIELDS, **fields}, files)
    return world.client("alice").generic("POST", API + "generations", body, content_type=MULTIPART_TYPE)


def image(filename: str, content: bytes, content_type: str = "image/png") -> dict:
    return {"reference_image": (filename, content, content_type)}


MULTIPART_REFUSED = {
    "nul-in-prompt": ({"prompt": "a\x00b"}, None, "prompt"),
    "nul-in-ai_model": ({"ai_model": FLUX + "\x00"}, None, "ai_model"),
    "nul-in-preset": ({"preset": "noir\x00"}, None, "preset"),
    "nul-in-parameters": ({"parameters": '{"seed": "7\\u0000"}'}, None, "parameters"),
    "parameters-not-json": ({"parameters": '{"seed": 7'}, None, "parameters"),
    "parameters-a-list": ({"parameters": "[7]"}, None, "parameters"),
    "parameters-deep-10000": ({"parameters": "[" * 10_000 + "]" * 10_000}, None, "parameters"),
    "unknown-field": ({"bogus_field": "1"}, None, "bogus_field"),
    "read-only-field": ({"status": "completed"}, None, "status"),
    "prompt-over-model-limit": ({"prompt": "x" * 1001}, None, "prompt"),
    "not-an-image": ({}, image("fox.png", b"hello, not a picture"), "reference_image"),
    "empty-file": ({}, image("fox.png", b""), "reference_image"),
    "truncated-png": ({}, image("fox.png", png_bytes()[:40]), "reference_image"),
    "svg": ({}, image("fox.svg", b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"), "reference_image"),
    "filename-over-200": ({}, image("f" * 250 + ".png", png_bytes()), "reference_image"),
    "file-as-text-field": ({"reference_image": "not a file"}, None, "reference_image"),
    "over-20-mb": (
        {},
        image("big.png", png_bytes() + b"\0" * (django_settings.REFERENCE_IMAGE_MAX_BYTES + 1)),
        "reference_image",
    ),
}


def test_multipart_bad_input_is_a_400_naming_the_field(world):
    failures = Failures()
    for label, (fields, files, field_name) in MULTIPART_REFUSED.items():
        with failures.case(label):
            before = snapshot(world)
            assert_refused(send_multipart(world, fields, files), field_name)
            assert snapshot(world) == before, "stored data changed (or an upload was left behind)"
    failures.check()


@pytest.mark.parametrize("case", ["text-field-over-limit", "too-many-fields"])
def test_multipart_over_the_size_limits_is_a_json_413_or_400(world, case):
    if case == "text-field-over-limit":
        fields = {"negative_prompt": HUGE}
    else:
        fields = {f"f{n}": "x" for n in range(django_settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1)}
    before = snapshot(world)
    response = send_multipart(world, fields)
    assert response.status_code in (400, 413), response.status_code
    assert_refused(response)
    assert snapshot(world) == before


def test_odd_reference_file_names_are_stored_safely_under_the_users_folder(world):
    names = {
        "dot-dot-slash": "../../escape.png",
        "backslashes": "..\\..\\windows.png",
        "nul": "a\x00b.png",
        "unicode-rtl": "фото 🎬\u202egnp.png",
        "blank-stem": "  .png",
    }
    failures = Failures()
    for label, filename in names.items():
        with failures.case(label):
            body = assert_accepted(send_multipart(world, {}, image(filename, png_bytes())))
            name = Generation.objects.get(pk=body["id"]).reference_image.name
            assert name.startswith(f"references/{world.alice.pk}/"), name
            assert ".." not in name and "\x00" not in name and "\\" not in name, name
            path = (world.media / name).resolve()
            assert path.is_file() and world.media.resolve() in path.parents, path
    failures.check()


# --- the Idempotency-Key header -----------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "accepted"),
    [("a\x00b", False), ("k" * 101, False), ("é" * 50, True), ("🎬", True)],
    ids=["nul", "over-100", "latin-1", "emoji"],
)
def test_the_idempotency_key_header(world, key, accepted):
    headers = {"HTTP_IDEMPOTENCY_KEY": key.encode().decode("latin-1")}  # as WSGI hands a header over
    if accepted:
        assert_accepted(send(world, "generation-create", **headers))
        assert_accepted(send(world, "generation-create", **headers))  # the retry: the same generation
        assert Generation.objects.filter(user=world.alice).count() == 1
    else:
        before = snapshot(world)
        assert_refused(send(world, "generation-create", **headers))
        assert snapshot(world) == before


# --- query parameters ---------------------------------------------------------------------

UUID = "6f1c2a8e-7b7d-4c1e-9a55-0c8f3b7d2e10"
SQL = "%27%20OR%201%3D1%20--"  # ' OR 1=1 --
# (path, query string, the parameter the 400 must name)
QUERY_REFUSED = [
    ("projects", "visibility=bogus", "visibility"),
    ("projects", f"visibility={SQL}", "visibility"),
    ("projects", "archived=maybe", "archived"),
    ("projects", "q=" + "a" * 121, "q"),
    ("generations", "status=bogus", "status"),
    ("generations", "status=pending&status=bogus", "status"),
    ("generations", "ai_model=" + "a" * 201, "ai_model"),
    ("generations", "project=not-a-uuid", "project"),
    ("generations", f"project={UUID}0", "project"),
    ("generations", f"project={SQL}", "project"),
    ("generations", "created_after=yesterday", "created_after"),
    ("generations", "created_after=2024-13-45", "created_after"),
    ("generations", "created_after=99999-01-01", "created_after"),
    ("generations", "created_before=2024-02-30T10:00:00Z", "created_before"),
    ("generations", "is_favorite=maybe", "is_favorite"),
    ("credits/transactions", "type=bogus", "type"),
    ("credits/transactions", f"type={SQL}", "type"),
    ("style-stacks", "tags=" + "a" * 401, "tags"),
    ("style-stacks", "category=bogus", "category"),
    ("style-stacks", "visibility=bogus", "visibility"),
    ("style-stacks/explore", "q=" + "a" * 201, "q"),
    ("style-stacks/explore", "tags=" + "a," * 201, "tags"),
    ("style-stacks/explore", "category=bogus", "category"),
    ("style-stacks/explore", "sort=bogus", "sort"),
    ("style-stacks/explore", "sort=usage%3B%20DROP%20TABLE%20style_stacks", "sort"),
    ("style-stacks/explore", "page=0", "page"),
    ("style-stacks/explore", "page=abc", "page"),
    ("style-stacks/explore", "page=99999999999999999999", "page"),
    ("style-stacks/explore", "page_size=0", "page_size"),
    ("style-stacks/explore", "page_size=101", "page_size"),
    ("style-stacks/explore", "page_size=1.5", "page_size"),
    ("presets", "q=" + "a" * 101, "q"),
    ("presets", "tags=" + "a" * 401, "tags"),
    ("presets", "category=bogus", "category"),
    ("presets", "complexity_level=bogus", "complexity_level"),
    ("presets", "is_featured=maybe", "is_featured"),
    ("models", "kind=bogus", "kind"),
    ("models", f"kind=image{SQL}", "kind"),
]
FILTERS = {
    "projects": ["q", "visibility", "archived"],
    "generations": ["status", "ai_model", "project", "created_after", "created_before", "is_favorite"],
    "credits/transactions": ["type"],
    "style-stacks": ["tags", "category", "visibility"],
    "style-stacks/explore": ["q", "tags", "category", "sort", "page", "page_size"],
    "presets": ["q", "tags", "category", "subcategory", "complexity_level", "is_featured"],
    "models": ["kind"],
}
PAGING = {
    "projects": "page",
    "style-stacks": "page",
    "presets": "page",
    "models": "page",
    "generations": "cursor",
    "credits/transactions": "cursor",
}


@pytest.mark.parametrize("path", list(FILTERS))
def test_bad_filter_values_are_a_400_naming_the_parameter(world, path):
    failures = Failures()
    for query, param in [(query, param) for p, query, param in QUERY_REFUSED if p == path]:
        with failures.case(query[:40]):
            assert_refused(world.client("alice").get(f"{API}{path}?{query}"), param)
    failures.check()


@pytest.mark.parametrize("path", list(FILTERS))
def test_nul_bytes_in_filters_are_a_400_naming_the_parameter(world, path):
    failures = Failures()
    for param in FILTERS[path]:
        for value in ["%00", "a%00b"]:
            with failures.case(f"{param}={value}"):
                assert_refused(world.client("alice").get(f"{API}{path}?{param}={value}"), param)
    failures.check()


@pytest.mark.parametrize("path", list(FILTERS))
def test_unicode_in_filters_is_a_200_or_a_400_naming_the_parameter(world, path):
    """Emoji, an RTL override, combining marks, a lone surrogate (%ED%A0%80) and bytes
    that are no UTF-8 at all (%FF): never a 500."""
    failures = Failures()
    for param in FILTERS[path]:
        for value in ["%F0%9F%8E%AC", "%E2%80%AEx", "e%CC%81" * 30, "%ED%A0%80", "%FF"]:
            with failures.case(f"{param}={value[:12]}"):
                response = world.client("alice").get(f"{API}{path}?{param}={value}")
                if response.status_code != 200:
                    assert_refused(response, param)
    failures.check()


@pytest.mark.parametrize("path", list(PAGING))
def test_a_bad_page_or_cursor_is_a_clean_4xx(world, path):
    """DRF's 404 "Invalid page." / "Invalid cursor" (or a 400), in the error shape —
    never a 500, never silently another page."""
    param = PAGING[path]
    client = world.client("alice")
    failures = Failures()
    for value in ["0", "-1", "abc", "%00", "99999999999999999999", "1.5", "%27%20OR%201%3D1"]:
        with failures.case(value):
            response = client.get(f"{API}{path}?{param}={value}")
            if param == "cursor" and response.status_code == 200:
                # DRF decodes cursors leniently (base64 skips the bytes it does not know): what
                # decodes to nothing is the first page, harmless.
                assert response.json() == client.get(f"{API}{path}").json()
            else:
                assert_refused(response)
    failures.check()


@pytest.mark.parametrize("path", [*PAGING, "style-stacks/explore"])
def test_a_bad_page_size_is_clamped_or_refused(world, path):
    """``page_size`` ≤ 100: anything else falls back to the default or is a 400."""
    failures = Failures()
    for value in ["0", "-1", "abc", "%00", "100000", "1e3"]:
        with failures.case(value):
            response = world.client("alice").get(f"{API}{path}?page_size={value}")
            if response.status_code == 200:
                assert len(response.json()["results"]) <= 100
            else:
                assert_refused(response, "page_size")
    failures.check()


# --- SQL-looking and operator-laden searches --------------------------------------------

PROJECT_NAMES = ["Alpha", "Beta 100%", "under_score", "back\\slash", "quote's", "Üni 🎬"]


@pytest.fixture
def gallery(alice, bob, carol):
    for name in PROJECT_NAMES:
        project_create(user=alice, name=name)
    for name in ["Bob 100%", "bob_under", "bob's"]:
        project_create(user=bob, name=name)  # never anyone else's
    rainy = stylestack_create(
        user=alice,
        name="Rainy noir alley",
        description="Detectives in the rain",
        tags=["noir", "city"],
        style=copy.deepcopy(STYLE),
        visibility="public",
    )
    sunny = stylestack_create(
        user=bob, name="Sunny beach", description="Summer holiday", tags=["summer"], style={}, visibility="public"
    )
    stylestack_create(user=alice, name="Secret noir", tags=["noir"], style={}, visibility="private")
    stylestack_create(user=bob, name="Unlisted noir", tags=["noir"], style={}, visibility="unlisted")
    StyleStack.objects.filter(pk=rainy.pk).update(usage_count=5)
    StyleStack.objects.filter(pk=sunny.pk).update(usage_count=1)
    generation_create(user=alice, ai_model=AIModel.objects.get(pk=FLUX), prompt="a red fox in snow")
    return {"rainy": rainy, "sunny": sunny}


def listed(client, url, key="name") -> set:
    response = client.get(url)
    assert response.status_code == 200, response.content[:400]
    body = response.json()
    items = body["results"] if isinstance(body, dict) else body
    return {item[key] for item in items}


PROJECT_SEARCHES = {
    "%25": {"Beta 100%"},
    "_": {"under_score"},
    "%5C": {"back\\slash"},
    "%27": {"quote's"},
    "_score": {"under_score"},
    "a%25": set(),
    "%25%25": set(),
    SQL: set(),
    "%25%27%20OR%20%271%27%3D%271": set(),  # %' OR '1'='1
    "%22%3B%20DROP%20TABLE%20projects%3B%20--": set(),
    "%F0%9F%8E%AC": {"Üni 🎬"},
    "%ED%A0%80": set(),
    "%20": set(PROJECT_NAMES),  # blank: no filter
}


def test_project_name_search_is_literal(gallery, alice, api_as):
    """``?q=`` is "name contains" with %, _ and \\ taken literally; only the caller's."""
    failures = Failures()
    for q, expected in PROJECT_SEARCHES.items():
        with failures.case(q):
            assert listed(api_as(alice), f"{API}projects?q={q}&page_size=100") == expected
    failures.check()


EXPLORE_SEARCHES = {
    "noir": {"rainy"},
    "%22noir%20alley%22": {"rainy"},
    "%22noir": {"rainy"},  # an unterminated quote is a phrase to the end
    "%22unterminated": set(),
    "-noir": {"sunny"},
    "noir%20OR%20beach": {"rainy", "sunny"},
    "noir%20-rain": set(),
    "OR": set(),
    "-": set(),
    SQL: set(),
    "%25": set(),
    "_": set(),
    "%5C": set(),
    "!%3A*%26%7C()%3C%3E": set(),  # !:*&|()<> (to_tsquery operators)
    "noir%20%26%20beach": set(),
    "%F0%9F%8E%AC": set(),
    "%ED%A0%80": set(),
    "%20%20": {"rainy", "sunny"},  # blank: no search
}


def test_explore_search_is_websearch_syntax_and_never_leaks(gallery, carol, api_as):
    """``?q=`` is websearch syntax: operators work, nothing is an error, and only public
    stacks ever come back."""
    by_id = {str(stack.pk): name for name, stack in gallery.items()}
    failures = Failures()
    for q, expected in EXPLORE_SEARCHES.items():
        with failures.case(q):
            found = listed(api_as(carol), f"{API}style-stacks/explore?q={q}", key="id")
            assert found <= set(by_id), "explore listed a private or unlisted stack"
            assert {by_id[pk] for pk in found} == expected
    failures.check()


TAG_SEARCHES = {
    "style-stacks/explore?tags=noir": {"Rainy noir alley"},
    "style-stacks/explore?tags=NOIR,city": {"Rainy noir alley"},
    "style-stacks/explore?tags=%25": set(),
    "style-stacks/explore?tags=noir,%25": set(),
    f"style-stacks/explore?tags={SQL}": set(),
    "style-stacks?tags=noir": {"Rainy noir alley", "Secret noir"},
    "style-stacks?tags=%25": set(),
    "style-stacks?tags=%7B%7D": set(),
    f"style-stacks?tags={SQL}": set(),
    "generations?ai_model=fal-ai/flux/dev": {"a red fox in snow"},
    "generations?ai_model=%25": set(),
    "generations?ai_model=fal-ai/flux/%25": set(),
    "generations?ai_model=fal-ai_flux_dev": set(),
    f"generations?ai_model={SQL}": set(),
}


def test_tag_and_model_filters_are_exact(gallery, alice, carol, api_as):
    failures = Failures()
    for url, expected in TAG_SEARCHES.items():
        with failures.case(url):
            who = carol if "explore" in url else alice
            key = "prompt" if url.startswith("generations") else "name"
            assert listed(api_as(who), API + url, key=key) == expected
    failures.check()


def test_preset_searches_are_literal(db, api):
    presets = list(StylePreset.objects.filter(is_active=True).values_list("slug", "name"))
    assert presets, "the seeded presets"
    failures = Failures()
    for q in ["%", "_", "\\", "' OR 1=1 --", "noir", "NOIR", "a%b", "🎬", "\u202e"]:
        with failures.case(f"q={q}"):
            expected = {slug for slug, name in presets if q.lower() in name.lower()}
            assert listed(api, f"{API}presets?q={quote(q)}&page_size=100", key="slug") == expected
    for tags in ["%", "_", "' OR 1=1 --", "{}", "noir,%"]:
        with failures.case(f"tags={tags}"):
            assert listed(api, f"{API}presets?tags={quote(tags)}&page_size=100", key="slug") == set()
    failures.check()


# --- ids in the path ----------------------------------------------------------------------
# (method, path with {id}, the resource whose real id "real id + suffix" abuses, a valid body)

PATH_ENDPOINTS = [
    ("GET", "projects/{id}", "project", None),
    ("PATCH", "projects/{id}", "project", {"name": "Renamed"}),
    ("DELETE", "projects/{id}", "project", None),
    ("POST", "projects/{id}/restore", "project", None),
    ("GET", "generations/{id}", "generation", None),
    ("POST", "generations/{id}/cancel", "generation", None),
    ("POST", "generations/{id}/favorite", "generation", None),
    ("DELETE", "generations/{id}/favorite", "generation", None),
    ("GET", "style-stacks/{id}", "stack", None),
    ("PATCH", "style-stacks/{id}", "stack", {"name": "Renamed"}),
    ("DELETE", "style-stacks/{id}", "stack", None),
    ("POST", "style-stacks/{id}/fork", "stack", {}),
    ("POST", "style-stacks/{id}/compose", "stack", {"ai_model": FLUX, "prompt": "a fox"}),
    ("GET", "style-stacks/{id}/versions", "stack", None),
    ("POST", "style-stacks/{id}/versions/1/restore", "stack", None),
    ("GET", "style-stacks/{id}/contributors", "stack", None),
    ("POST", "style-stacks/{id}/contributors", "stack", {"email": "carol@example.com"}),
    ("PATCH", "style-stacks/{stack}/contributors/{id}", "bob", {"role": "editor"}),
    ("DELETE", "style-stacks/{stack}/contributors/{id}", "bob", None),
    ("GET", "models/{id}", "model", None),
    ("GET", "presets/{id}", "preset", None),
]
BAD_IDS = {
    "not-a-uuid": "not-a-uuid",
    "nul": "%00",
    "real-id+nul": "{real}%00",
    "real-id+suffix": "{real}0",
    "long": "a" * 5000,
    "emoji": "%F0%9F%8E%AC",
    "lone-surrogate": "%ED%A0%80",
    "sql": SQL,
    "dashes-36": "-" * 36,
}


@pytest.mark.parametrize(
    ("method", "template", "resource", "body"), PATH_ENDPOINTS, ids=[f"{m} {t}" for m, t, _, _ in PATH_ENDPOINTS]
)
def test_invalid_ids_in_the_path_are_a_json_404(world, method, template, resource, body):
    generation = generation_create(user=world.alice, ai_model=AIModel.objects.get(pk=FLUX), prompt="a red fox")
    real = {
        "project": world.project.pk,
        "generation": generation.pk,
        "stack": world.stack.pk,
        "bob": world.bob.pk,
        "model": FLUX,
        "preset": world.preset,
    }[resource]
    raw = json.dumps(body).encode() if body is not None else b""
    failures = Failures()
    for label, bad in BAD_IDS.items():
        path = API + template.replace("{stack}", str(world.stack.pk)).replace("{id}", bad.replace("{real}", str(real)))
        with failures.case(label):
            before = snapshot(world) if method != "GET" else None
            response = world.client("alice").generic(method, path, raw, content_type="application/json")
            assert_refused(response)
            assert response.status_code == 404, response.json()  # the bodies are valid: "no such object"
            assert method == "GET" or snapshot(world) == before
    failures.check()
