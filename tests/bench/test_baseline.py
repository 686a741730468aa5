"""The benchmark's baseline app answers ``GET /api/v1/generations`` with the same bytes
as the Django API: every page, both directions, ties in created_at, page sizes, errors.

The baseline runs in-process on its own psycopg connection, so the rows must be
committed: these tests are transactional and bring their own AI models (the flush at the
end of a transactional test removes the seeded catalog)."""

import datetime as dt
import io
import json
from urllib.parse import urlsplit
from wsgiref.util import setup_testing_defaults

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from rest_framework.test import APIClient

from accounts.sessions import session_start
from accounts.tokens import AccessToken
from bench.baseline import Baseline
from generations.models import AIModel, Generation
from projects.models import Project
from tests.factories import UserFactory
from tests.helpers import database_url
from velro.jwt_keys import key_set

pytestmark = pytest.mark.django_db(transaction=True)

PATH = "/api/v1/generations"
HOST = "testserver"
T0 = dt.datetime(2025, 3, 1, 12, 0, 0, 123456, tzinfo=dt.UTC)
# Rows per created_at, newest first: ties smaller and larger than the page sizes used
# below (1, 3, 7, 50), then single rows up to ROWS.
TIES = [1, 2, 1, 3, 1, 12, 1, 1, 2, 1, 5, 1, 60, 1, 2, 1, 8]
ROWS = 130
STATUSES = ["completed", "pending", "processing", "failed", "cancelled"]
OUTPUTS = [
    {"url": "/media/outputs/a b/ü.png", "width": 1024, "content_type": "image/png"},
    {"url": "https://cdn.example.com/x.png?sig=1&b=2"},
    {"width": 1},
    {"url": "outputs/relative.png", "seed": 3.5},
    {"url": "/media/../other/y.png"},
    {"url": "/media/./z.png"},
    {"url": ""},
    {"path": "generations/abc/0.png", "mime_type": "image/png", "width": 64},
    {"url": "http://testserver/media/generations/abc/1.png"},
    {"url": "http://elsewhere.example/media/generations/abc/1.png"},
]


class FrozenClock:
    """Media links carry an expiry rounded to a tenth of the TTL: the Django API and the
    baseline mint them at the same instant here, so a test never straddles a step."""

    @staticmethod
    def time():
        return 1_900_000_123.5


@pytest.fixture
def baseline(transactional_db, monkeypatch):
    monkeypatch.setattr("velro.media_links.time", FrozenClock)
    monkeypatch.setattr("bench.baseline.time", FrozenClock)
    # As bench/runner.py configures it: the app's published keys, and its secret for HS256.
    app = Baseline(
        database_url=database_url(),
        jwks=json.dumps(key_set().jwks()),
        jwt_key=settings.SIMPLE_JWT["SIGNING_KEY"],
        media_url=settings.MEDIA_URL,
        secret_key=settings.SECRET_KEY,
    )
    yield app
    app.close()  # before the test database is flushed or dropped


@pytest.fixture
def people(transactional_db):
    alice = UserFactory(email="alice@example.com")
    bob = UserFactory(email="bob@example.com")
    image = AIModel.objects.create(id="test/bench-image", display_name="I", kind="image", credits_cost=25)
    video = AIModel.objects.create(id="test/bench-video", display_name="V", kind="video", credits_cost=500)
    project = Project.objects.create(user=alice, name="Noir")
    stamps = []
    for index, size in enumerate(TIES + [1] * (ROWS - sum(TIES))):
        # Every other timestamp on a whole second: str() then has no microseconds.
        stamp = T0 - dt.timedelta(minutes=index, microseconds=0 if index % 2 else 1000 + index)
        stamps += [stamp] * size
    assert len(stamps) == ROWS
    rows = []
    for i, created in enumerate(stamps):
        status = STATUSES[i % len(STATUSES)]
        done = status in ("completed", "failed", "cancelled")
        rows.append(
            Generation(
                user=alice,
                ai_model=image if i % 3 else video,
                project=project if i % 5 == 0 else None,
                parent=rows[-1] if i % 7 == 3 else None,
                prompt=f'prompt {i} — “quoted” \\ \u2028 "x" <b>',
                adapted_prompt=f"adapted {i}" if i % 4 == 0 else "",
                negative_prompt="blurry" if i % 6 == 0 else "",
                parameters={"seed": i, "cfg": 7.5, "nested": {"a": [1, 2.0, None, True]}, "ünï": "✓", "big": 10**20},
                reference_image=f"references/2025/03/ref {i} é.png" if i % 4 == 1 else "",
                status=status,
                credits_charged=25 if i % 3 else 500,
                outputs=OUTPUTS if status == "completed" else [],
                error_message="provider timeout" if status == "failed" else "",
                attempts=i % 3,
                is_favorite=i % 9 == 0,
                created_at=created,
                started_at=created + dt.timedelta(seconds=1) if status != "pending" else None,
                completed_at=created + dt.timedelta(seconds=5, microseconds=500) if done else None,
            )
        )
    Generation.objects.bulk_create(rows)
    return alice, bob


def token_for(user, **changes) -> str:
    token = AccessToken(session_start(user).access_token)
    for key, value in changes.items():
        token[key] = value
    return str(token)


class Both:
    """Sends the same GET to the Django API and to the baseline and checks the answers
    are the same bytes; returns the parsed body."""

    def __init__(self, app, token=None):
        self.app, self.token = app, token
        self.client = APIClient()
        if token is not None:
            self.client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    def baseline(self, query="", path=PATH, method="GET"):
        environ = {}
        setup_testing_defaults(environ)
        environ.update(PATH_INFO=path, QUERY_STRING=query, HTTP_HOST=HOST, REQUEST_METHOD=method)
        if self.token is not None:
            environ["HTTP_AUTHORIZATION"] = f"Bearer {self.token}"
        answer = {}

        def start_response(status, headers):
            answer["status"], answer["headers"] = int(status.split()[0]), dict(headers)

        answer["body"] = b"".join(self.app(environ, start_response))
        return answer

    def get(self, query="", status=200):
        django = self.client.get(PATH + ("?" + query if query else ""), HTTP_HOST=HOST)
        base = self.baseline(query)
        assert (django.status_code, base["status"]) == (status, status), base["body"]
        assert base["headers"]["Content-Type"] == "application/json"
        assert json.loads(base["body"]) == json.loads(django.content)
        assert base["body"] == django.content
        self.last = base
        return json.loads(base["body"])

    def follow(self, link, status=200):
        assert link.startswith(f"http://{HOST}{PATH}?")
        return self.get(urlsplit(link).query, status)


def walk(both, query):
    """Every page forwards from ``query``, then every page backwards from the last."""
    pages = [both.get(query)]
    while pages[-1]["next"]:
        pages.append(both.follow(pages[-1]["next"]))
    backwards = [pages[-1]]
    while backwards[-1]["previous"]:
        backwards.append(both.follow(backwards[-1]["previous"]))
    return pages, backwards


def test_every_page_forwards_and_backwards_is_the_same(baseline, people):
    alice, _ = people
    both = Both(baseline, token_for(alice))
    pages, backwards = walk(both, "")
    assert [len(page["results"]) for page in pages] == [50, 50, 30]
    ids = [row["id"] for page in pages for row in page["results"]]
    assert ids == [str(pk) for pk in Generation.objects.filter(user=alice).values_list("pk", flat=True)]
    assert len(backwards) > 1
    assert both.last["headers"]["X-Query-Count"] == "2"


@pytest.mark.parametrize("page_size", [7, 3, 1])
def test_small_pages_over_ties_are_the_same(baseline, people, page_size):
    alice, _ = people
    both = Both(baseline, token_for(alice))
    pages, backwards = walk(both, f"page_size={page_size}")
    seen = [row["id"] for page in pages for row in page["results"]]
    assert len(seen) == len(set(seen)) == ROWS
    assert len(backwards) > 1


def test_a_previous_link_from_a_deep_page_is_the_same(baseline, people):
    alice, _ = people
    both = Both(baseline, token_for(alice))
    page = both.get("page_size=7")
    for _ in range(9):  # into the 60-row tie
        page = both.follow(page["next"])
    back = both.follow(page["previous"])
    assert back["results"]
    assert both.follow(back["previous"])["results"]


def test_page_size_is_clamped_like_drf(baseline, people):
    alice, _ = people
    both = Both(baseline, token_for(alice))
    assert len(both.get("page_size=1000")["results"]) == 100
    for junk in ("abc", "0", "-3", ""):
        assert len(both.get(f"page_size={junk}")["results"]) == 50
    assert len(both.get("page_size=2&page_size=9")["results"]) == 9  # the last value, as QueryDict


def test_other_query_parameters_are_kept_in_the_links(baseline, people):
    alice, _ = people
    both = Both(baseline, token_for(alice))
    page = both.get("zeta=1&foo=b%20ar+x&empty=&page_size=10&foo=%C3%A9")
    page = both.follow(page["next"])
    assert "foo=" in page["previous"]


@pytest.mark.filterwarnings("ignore:DateTimeField Generation.created_at received a naive datetime")
def test_an_invalid_cursor_is_the_same_404(baseline, people):
    alice, _ = people
    both = Both(baseline, token_for(alice))
    assert both.get("cursor=not-base64!!", status=404)["detail"] == "Invalid cursor"
    assert both.get("cursor=bz0tMw==", status=404)  # o=-3
    assert both.get("cursor=cj14", status=404)  # r=x
    # A position that is no datetime: Django's ValidationError on the filter, a 400.
    assert both.get("cursor=cD1ub29u", status=400)["code"] == "invalid"  # p=noon
    # A naive position is taken as UTC; an empty cursor is the first page.
    assert both.get("cursor=cD0yMDI1LTAzLTAxIDEyOjAwOjAw&page_size=3")["results"]
    assert both.get("cursor=")["results"]


def test_someone_else_sees_none_of_it(baseline, people):
    _, bob = people
    page = Both(baseline, token_for(bob)).get("page_size=5")
    assert page == {"next": None, "previous": None, "results": []}


@pytest.mark.parametrize(
    "token",
    [None, "not-a-jwt", "expired", "refresh-role", "another-key", "hs256-secret"],
)
def test_no_valid_token_is_a_401(baseline, people, token):
    alice, _ = people
    if token in ("another-key", "hs256-secret"):
        real = token_for(alice)
        claims = jwt.decode(real, options={"verify_signature": False})
        if token == "another-key":  # naming our key
            kid = jwt.get_unverified_header(real)["kid"]
            token = jwt.encode(claims, ec.generate_private_key(ec.SECP256R1()), algorithm="ES256", headers={"kid": kid})
        else:  # the legacy mode's signature, while tokens are ES256
            token = jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS256")
    elif token == "expired":
        access = AccessToken(session_start(alice).access_token)
        access.set_exp(lifetime=-dt.timedelta(seconds=5))
        token = str(access)
    elif token == "refresh-role":
        token = token_for(alice, role="service_role")
    both = Both(baseline, token)
    body = both.get(status=401)
    assert body["code"] in ("not_authenticated", "token_not_valid")
    assert both.last["headers"]["WWW-Authenticate"] == 'Bearer realm="api"'
    assert both.last["headers"]["X-Query-Count"] == "0"


@pytest.fixture
def legacy_hs256(settings):
    settings.JWT_ALGORITHM = "HS256"


def test_legacy_hs256_tokens_are_verified_with_the_secret(legacy_hs256, baseline, people):
    alice, _ = people
    token = token_for(alice)
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    assert [row["id"] for row in Both(baseline, token).get("page_size=3")["results"]] == [
        str(pk) for pk in Generation.objects.filter(user=alice).values_list("pk", flat=True)[:3]
    ]


def test_only_the_list_is_served(baseline, people):
    alice, _ = people
    both = Both(baseline, token_for(alice))
    answer = both.baseline(path=PATH + "/")
    assert answer["status"] == 404
    assert json.loads(answer["body"]) == {"detail": "Not found.", "code": "not_found"}
    assert both.baseline(method="PUT")["status"] == 405
    assert both.baseline("status=completed")["status"] == 400  # filters: not reproduced


def test_a_post_creates_the_generation_the_app_creates(baseline, people):
    """POST: the same database function with the same arguments as the app's service, the
    same JSON back (but for the new row's id and time), the same charge on the ledger."""
    from credits.selectors import credits_invariant_violations
    from generations.schemas import validate_parameters

    alice, _ = people
    model = AIModel.objects.get(pk="test/bench-image")
    body = {"ai_model": model.pk, "prompt": "a lighthouse at dusk", "parameters": {"seed": 7}}
    body["parameters"] = validate_parameters(model.parameter_schema, body["parameters"])  # as the benchmark sends
    token = token_for(alice)
    both = Both(baseline, token)
    django = both.client.post(PATH, body, format="json", HTTP_HOST=HOST)
    raw = json.dumps(body).encode()
    environ = {}
    setup_testing_defaults(environ)
    environ.update(
        PATH_INFO=PATH, REQUEST_METHOD="POST", HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {token}",
        CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(raw)), **{"wsgi.input": io.BytesIO(raw)},
    )  # fmt: skip
    answer = {}
    created = b"".join(baseline(environ, lambda status, headers: answer.update(status=status)))
    assert (django.status_code, answer["status"]) == (201, "201 Created"), created
    app_row, base_row = django.json(), json.loads(created)
    assert app_row["id"] != base_row["id"]
    for row in (app_row, base_row):
        del row["id"], row["created_at"]
    assert base_row == app_row
    assert Generation.objects.filter(user=alice, prompt="a lighthouse at dusk").count() == 2
    assert alice.credit_transactions.filter(type="usage").count() == 2
    assert credits_invariant_violations() == []


def test_a_post_the_function_refuses_is_a_400(baseline, people):
    alice, _ = people
    raw = json.dumps({"ai_model": "no/such-model", "prompt": "x"}).encode()
    environ = {}
    setup_testing_defaults(environ)
    environ.update(
        PATH_INFO=PATH, REQUEST_METHOD="POST", HTTP_HOST=HOST, HTTP_AUTHORIZATION=f"Bearer {token_for(alice)}",
        CONTENT_LENGTH=str(len(raw)), **{"wsgi.input": io.BytesIO(raw)},
    )  # fmt: skip
    answer = {}
    body = b"".join(baseline(environ, lambda status, headers: answer.update(status=status)))
    assert answer["status"] == "400 Bad Request", body
    assert not Generation.objects.filter(prompt="x").exists()


def test_a_lost_connection_is_replaced(baseline, people, sql):
    alice, _ = people
    both = Both(baseline, token_for(alice))
    assert both.baseline()["status"] == 200
    sql("SELECT pg_terminate_backend(%s)", [baseline._cursor().connection.info.backend_pid])
    answer = both.baseline()
    assert answer["status"] == 200
    assert answer["headers"]["X-Query-Count"] == "2"
