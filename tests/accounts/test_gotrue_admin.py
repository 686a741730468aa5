"""``/auth/v1/admin/users`` (issue 16): GoTrue's admin API for people, for the
service_role bearer only, as supabase-py's ``auth.admin`` calls it."""

import json
from datetime import timedelta

import httpx
import pytest
from django.core import signals
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.utils import timezone

from accounts.apikeys import api_key
from accounts.gotrue_admin import go_duration
from accounts.models import Profile, RefreshToken, Session, User
from accounts.sessions import session_start
from credits.models import CreditTransaction
from credits.services import credits_charge
from generations.models import AIModel, Generation
from generations.services import generation_file_names
from projects.models import Project
from tests.factories import PASSWORD, UserFactory

NEW_PASSWORD = "velvet-orchard-compass-19"
USERS = "/auth/v1/admin/users"

pytestmark = pytest.mark.django_db


def keys(apikey: str = "service_role", bearer: str | None = "service_role") -> dict:
    headers = {"HTTP_APIKEY": api_key(apikey)}
    if bearer is not None:
        headers["HTTP_AUTHORIZATION"] = f"Bearer {api_key(bearer)}"
    return headers


ADMIN = keys()


def send(client, method: str, path: str, body=None, **headers):
    headers = headers or ADMIN
    if method == "get":  # supabase-py sends the JSON content type on GETs too, no body
        return client.get(path, content_type="application/json", **headers)
    data = json.dumps(body) if body is not None else ""
    return getattr(client, method)(path, data, content_type="application/json", **headers)


def sign_in(client, email: str, password: str):
    return client.post(
        "/auth/v1/token?grant_type=password",
        {"email": email, "password": password},
        content_type="application/json",
        HTTP_APIKEY=api_key("anon"),
    )


def me(client, access_token: str):
    return client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {access_token}")


def error(response) -> tuple[int, str]:
    return response.status_code, response.json()["code"]


# --- who may call it -------------------------------------------------------------------------


ENDPOINTS = [("get", "list"), ("post", "list"), ("get", "one"), ("put", "one"), ("delete", "one")]


@pytest.mark.parametrize(("method", "target"), ENDPOINTS)
def test_only_the_service_role_bearer_may_call_the_admin_api(client, alice, method, target):
    path = USERS if target == "list" else f"{USERS}/{alice.pk}"
    body = {"email": "new@example.com", "ban_duration": "24h"} if method in ("post", "put") else None
    user_token = session_start(alice).access_token
    refused = [
        keys("anon", "anon"),  # a browser's client
        keys("service_role", "anon"),  # the service key in apikey alone is not enough
        keys("service_role", None),
        {"HTTP_APIKEY": api_key("service_role"), "HTTP_AUTHORIZATION": f"Bearer {user_token}"},  # a person
        {"HTTP_APIKEY": api_key("anon"), "HTTP_AUTHORIZATION": f"Bearer {user_token}"},
    ]
    for headers in refused:
        response = send(client, method, path, body, **headers)
        assert error(response) == (403, "not_admin"), headers
        assert response.json()["message"] == "User not allowed"
    alice.refresh_from_db()
    assert alice.banned_until is None and User.objects.count() == 1  # nothing happened
    assert me(client, user_token).status_code == 200

    # The gateway's key check still comes first, and the anon apikey with the service
    # bearer is how a server-side client configured with the anon key calls it.
    assert send(client, method, path, body, HTTP_AUTHORIZATION="Bearer nonsense").status_code == 401
    assert send(client, "get", path, None, **keys("anon", "service_role")).status_code == 200


# --- GET admin/users -------------------------------------------------------------------------


@pytest.fixture
def five(alice, bob):
    """Five people; created_at apart for three of them, tied for the rest (one
    transaction), so the order needs the id too."""
    people = [alice, bob, *(UserFactory(email=f"p{n}@example.com") for n in range(3))]
    base = timezone.now()
    for offset, person in zip((3, 1, 2), people[:3], strict=True):
        User.objects.filter(pk=person.pk).update(created_at=base - timedelta(days=offset))
    return sorted(User.objects.all(), key=lambda u: (u.created_at, u.pk), reverse=True)


def test_the_list_is_paged_newest_first_with_gotrues_headers(client, five, django_assert_num_queries):
    # The request's savepoint and its release, the count, the page: whatever the page size.
    with django_assert_num_queries(4):
        assert len(send(client, "get", f"{USERS}?per_page=5").json()["users"]) == 5
    with django_assert_num_queries(4):
        response = send(client, "get", f"{USERS}?page=1&per_page=2")
    assert response.status_code == 200
    body = response.json()
    assert body["aud"] == "authenticated" and [u["id"] for u in body["users"]] == [str(u.pk) for u in five[:2]]
    assert response["X-Total-Count"] == "5"
    assert response["Link"] == f'<{USERS}?page=2&per_page=2>; rel="next", <{USERS}?page=3&per_page=2>; rel="last"'
    seen = []
    for page in (1, 2, 3, 4):
        response = send(client, "get", f"{USERS}?per_page=2&page={page}")
        seen += [u["id"] for u in response.json()["users"]]
    assert seen == [str(u.pk) for u in five]  # every person once, in order
    assert response["Link"] == f'<{USERS}?page=3&per_page=2>; rel="last"'  # past the end: no next

    last = send(client, "get", f"{USERS}?page=3&per_page=2")
    assert last["Link"] == f'<{USERS}?page=3&per_page=2>; rel="last"'
    user = last.json()["users"][0]
    assert {"id", "aud", "role", "email", "app_metadata", "user_metadata", "identities", "created_at"} <= set(user)


def test_empty_page_values_are_the_defaults_as_supabase_py_sends_them(client, five):
    response = send(client, "get", f"{USERS}?page=&per_page=")
    assert response.status_code == 200 and len(response.json()["users"]) == 5
    assert response["X-Total-Count"] == "5"
    assert response["Link"] == f'<{USERS}?page=1&per_page=>; rel="last"'  # GoTrue keeps what was sent
    plain = send(client, "get", USERS)
    assert plain["Link"] == f'<{USERS}?page=1>; rel="last"'
    capped = send(client, "get", f"{USERS}?per_page=5000")
    assert capped.status_code == 200 and len(capped.json()["users"]) == 5


def test_nobody_at_all_is_an_empty_page_and_page_zero_last(client):
    response = send(client, "get", USERS)
    assert response.json()["users"] == [] and response["X-Total-Count"] == "0"
    assert response["Link"] == f'<{USERS}?page=0>; rel="last"'


@pytest.mark.parametrize("query", ["page=x", "page=0", "page=-1", "page=1.5", "per_page=0", "per_page=%C2%B2"])
def test_bad_page_values_are_refused(client, alice, query):
    response = send(client, "get", f"{USERS}?{query}")
    assert error(response) == (400, "validation_failed")
    assert response.json()["message"].startswith("Bad Pagination Parameters")


# --- POST admin/users ------------------------------------------------------------------------


def test_create_a_confirmed_person_with_metadata(client):
    response = send(
        client,
        "post",
        USERS,
        {
            "email": "  Nia@Example.com ",
            "password": NEW_PASSWORD,
            "email_confirm": True,
            "user_metadata": {"full_name": "Nia Okafor"},
            "app_metadata": {"plan": "pro", "gone": None},
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["email"] == "nia@example.com" and body["user_metadata"] == {"full_name": "Nia Okafor"}
    assert body["app_metadata"] == {"provider": "email", "providers": ["email"], "plan": "pro"}
    assert body["email_confirmed_at"] and body["identities"][0]["identity_data"]["email_verified"] is True
    assert "access_token" not in body  # a bare User, no session

    user = User.objects.get(email="nia@example.com")
    assert str(user.pk) == body["id"] and user.raw_app_meta_data == {"plan": "pro"}
    profile = Profile.objects.get(pk=user.pk)
    assert profile.credits_balance == 100 and profile.full_name == "Nia Okafor"  # the sign-up trigger
    assert CreditTransaction.objects.filter(user=user).count() == 1
    assert sign_in(client, "nia@example.com", NEW_PASSWORD).status_code == 200


def test_create_without_email_confirm_or_password(client, settings):
    settings.AUTH_EMAIL_CONFIRM = True
    response = send(client, "post", USERS, {"email": "link-only@example.com", "ban_duration": "1h"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert "email_confirmed_at" not in body and body["banned_until"]
    user = User.objects.get(email="link-only@example.com")
    assert not user.has_usable_password() and user.is_banned


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"email": "ALICE@example.com", "password": NEW_PASSWORD}, 422, "email_exists"),
        ({"password": NEW_PASSWORD}, 400, "validation_failed"),
        ({"email": "", "password": NEW_PASSWORD}, 400, "validation_failed"),
        ({"email": "not-an-address", "password": NEW_PASSWORD}, 400, "validation_failed"),
        ({"email": "new@example.com", "password": "abc"}, 422, "weak_password"),
        ({"email": "new@example.com", "ban_duration": "1d"}, 400, "validation_failed"),
        ({"email": "new@example.com", "user_metadata": ["a"]}, 400, "validation_failed"),
        ({"email": "new@example.com", "user_metadata": {"x": ["a\u0000b"]}}, 400, "validation_failed"),
        ({"email": "new@example.com", "email_confirm": "yes"}, 400, "validation_failed"),
        ({"email": "new@example.com", "phone": "+15555550100"}, 400, "validation_failed"),
        ({"email": "new@example.com", "role": "service_role"}, 400, "validation_failed"),
    ],
)
def test_create_refusals_leave_nothing_behind(client, alice, body, status, code):
    response = send(client, "post", USERS, body)
    assert error(response) == (status, code), response.content
    assert list(User.objects.values_list("email", flat=True)) == ["alice@example.com"]
    assert Profile.objects.count() == 1
    if code == "email_exists":
        assert response.json()["message"] == "A user with this email address has already been registered"
    if code == "weak_password":
        assert "length" in response.json()["weak_password"]["reasons"]


# --- GET admin/users/{id} --------------------------------------------------------------------


def test_get_one_person(client, alice):
    response = send(client, "get", f"{USERS}/{alice.pk}")
    assert response.status_code == 200
    assert response.json()["id"] == str(alice.pk) and response.json()["email"] == "alice@example.com"


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_an_unknown_or_malformed_id_is_a_404(client, alice, method):
    unknown = send(client, method, f"{USERS}/00000000-0000-4000-8000-000000000000", {})
    assert error(unknown) == (404, "user_not_found") and unknown.json()["message"] == "User not found"
    malformed = send(client, method, f"{USERS}/not-a-uuid", {})
    assert malformed.status_code == 404
    assert User.objects.filter(pk=alice.pk).exists()


# --- PUT admin/users/{id} --------------------------------------------------------------------


def test_update_address_and_metadata(client, alice):
    User.objects.filter(pk=alice.pk).update(
        email_confirmed_at=None, email_change="pending@example.com", raw_app_meta_data={"plan": "free", "x": 1}
    )
    response = send(
        client,
        "put",
        f"{USERS}/{alice.pk}",
        {
            "email": "Alice.New@example.com",
            "user_metadata": {"full_name": None, "city": "Lagos"},
            "app_metadata": {"plan": "pro", "x": None},
        },
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["email"] == "alice.new@example.com" and body["email_confirmed_at"]  # no confirmation needed
    assert "new_email" not in body  # the person's own pending change is dropped
    assert body["user_metadata"] == {"city": "Lagos"}
    assert body["app_metadata"] == {"provider": "email", "providers": ["email"], "plan": "pro"}
    alice.refresh_from_db()
    assert alice.email_change == "" and alice.raw_app_meta_data == {"plan": "pro"}
    assert Profile.objects.get(pk=alice.pk).email == "alice.new@example.com"  # the sync trigger
    assert sign_in(client, "alice.new@example.com", PASSWORD).status_code == 200


def test_email_confirm_alone_confirms(client, alice):
    User.objects.filter(pk=alice.pk).update(email_confirmed_at=None)
    assert "email_confirmed_at" not in send(client, "get", f"{USERS}/{alice.pk}").json()
    response = send(client, "put", f"{USERS}/{alice.pk}", {"email_confirm": True})
    assert response.status_code == 200 and response.json()["email_confirmed_at"]


def test_a_new_password_signs_out_every_session(client, alice):
    tokens = [session_start(alice).access_token for _ in range(2)]
    response = send(client, "put", f"{USERS}/{alice.pk}", {"password": NEW_PASSWORD})
    assert response.status_code == 200, response.content
    assert not Session.objects.filter(user=alice).exists() and not RefreshToken.objects.exists()
    for token in tokens:
        assert me(client, token).status_code == 401
    assert error(sign_in(client, "alice@example.com", PASSWORD)) == (400, "invalid_credentials")
    assert sign_in(client, "alice@example.com", NEW_PASSWORD).status_code == 200


def test_a_ban_ends_the_sessions_and_refuses_sign_in_until_lifted(client, alice):
    issued = session_start(alice)
    token = issued.access_token
    assert me(client, token).status_code == 200
    before = timezone.now()
    response = send(client, "put", f"{USERS}/{alice.pk}", {"ban_duration": "24h"})
    assert response.status_code == 200, response.content
    alice.refresh_from_db()
    assert before + timedelta(hours=24) <= alice.banned_until <= timezone.now() + timedelta(hours=24)
    assert response.json()["banned_until"]
    assert not Session.objects.filter(user=alice).exists()
    assert me(client, token).status_code == 401
    assert error(sign_in(client, "alice@example.com", PASSWORD)) == (400, "user_banned")
    refresh = client.post(
        "/auth/v1/token?grant_type=refresh_token",
        {"refresh_token": issued.refresh_token},
        content_type="application/json",
        HTTP_APIKEY=api_key("anon"),
    )
    assert refresh.status_code == 400
    login = {"email": "alice@example.com", "password": PASSWORD}
    assert client.post("/api/v1/auth/login", login, content_type="application/json").status_code == 401

    lifted = send(client, "put", f"{USERS}/{alice.pk}", {"ban_duration": "none"})
    assert lifted.status_code == 200 and "banned_until" not in lifted.json()
    alice.refresh_from_db()
    assert alice.banned_until is None
    assert sign_in(client, "alice@example.com", PASSWORD).status_code == 200


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"ban_duration": "forever"}, 400, "validation_failed"),
        ({"ban_duration": "24"}, 400, "validation_failed"),
        ({"password": "abc"}, 422, "weak_password"),
        ({"password": ""}, 422, "weak_password"),
        ({"email": "bob@example.com"}, 422, "email_exists"),
        ({"email": "nope"}, 400, "validation_failed"),
        ({"app_metadata": "pro"}, 400, "validation_failed"),
    ],
)
def test_a_refused_update_changes_nothing(client, alice, bob, body, status, code):
    token = session_start(alice).access_token
    before = User.objects.get(pk=alice.pk)
    # Valid changes sent with the bad one: none of them may land.
    body = {"user_metadata": {"full_name": "Changed"}, "email_confirm": True, "ban_duration": "1h", **body}
    if "password" not in body:
        body["password"] = NEW_PASSWORD
    response = send(client, "put", f"{USERS}/{alice.pk}", body)
    assert error(response) == (status, code), response.content
    after = User.objects.get(pk=alice.pk)
    for field in ("email", "password", "raw_user_meta_data", "raw_app_meta_data", "banned_until", "updated_at"):
        assert getattr(after, field) == getattr(before, field), field
    assert me(client, token).status_code == 200  # still signed in


# --- DELETE admin/users/{id} -----------------------------------------------------------------


def test_delete_removes_the_person_and_everything_theirs(client, alice, bob, django_capture_on_commit_callbacks):
    from procrastinate.contrib.django.models import ProcrastinateJob

    flux = AIModel.objects.get(pk="fal-ai/flux/dev")
    generation = Generation.objects.create(
        user=alice,
        ai_model=flux,
        prompt="a lighthouse",
        parameters={},
        status=Generation.Status.COMPLETED,
        credits_charged=25,
        outputs=[{"path": f"outputs/{alice.pk}/a.png", "thumbnail_path": f"thumbnails/{alice.pk}/a.webp"}],
    )
    credits_charge(user=alice, amount=25, description="a lighthouse", generation=generation)
    Project.objects.create(user=alice, name="Coast")
    session_start(alice)
    bobs_token = session_start(bob).access_token

    with django_capture_on_commit_callbacks(execute=True):
        response = send(client, "delete", f"{USERS}/{alice.pk}", {"should_soft_delete": False})
    assert response.status_code == 200 and response.json() == {}
    assert not User.objects.filter(pk=alice.pk).exists() and not Profile.objects.filter(pk=alice.pk).exists()
    assert not Generation.objects.filter(user_id=alice.pk).exists()
    assert not Project.objects.filter(user_id=alice.pk).exists()
    assert not CreditTransaction.objects.filter(user_id=alice.pk).exists()
    assert not Session.objects.filter(user_id=alice.pk).exists()
    # Her files go once the deletion committed, as when the Django admin deletes someone.
    jobs = [sorted(args["names"]) for args in ProcrastinateJob.objects.values_list("args", flat=True)]
    assert sorted(generation_file_names(generation)) in jobs
    assert me(client, bobs_token).status_code == 200  # nobody else is touched
    assert error(send(client, "get", f"{USERS}/{alice.pk}")) == (404, "user_not_found")


def test_delete_without_a_body_and_soft_delete_refused(client, alice, bob):
    soft = send(client, "delete", f"{USERS}/{alice.pk}", {"should_soft_delete": True})
    assert error(soft) == (400, "validation_failed") and User.objects.filter(pk=alice.pk).exists()
    assert send(client, "delete", f"{USERS}/{alice.pk}").status_code == 200
    assert list(User.objects.values_list("email", flat=True)) == ["bob@example.com"]


# --- Go durations ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("30m", timedelta(minutes=30)),
        ("876000h", timedelta(hours=876000)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1.5h", timedelta(minutes=90)),
        ("2h45m30.5s", timedelta(hours=2, minutes=45, seconds=30.5)),
        ("300ms", timedelta(milliseconds=300)),
        ("1500us", timedelta(microseconds=1500)),
        ("-1h", timedelta(hours=-1)),
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
    ],
)
def test_go_durations(value, expected):
    assert go_duration(value) == expected


@pytest.mark.parametrize("value", ["", "1", "1d", "h", "abc", "1h 30m", "1h-30m", "２h", "2562048h"])
def test_bad_go_durations(value):
    with pytest.raises(ValueError, match="invalid duration"):
        go_duration(value)


# --- the real supabase-py client -----------------------------------------------------------------


@pytest.fixture
def in_process():
    """An httpx transport into this process, inside the test's transaction. Django's
    request signals would close the connection (it is mid-transaction), so they are
    off meanwhile, as Django's test client turns them off (and so it is not used here:
    it turns them back on)."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield httpx.WSGITransport(app=get_wsgi_application())
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


def supabase_client(transport, key: str):
    supabase = pytest.importorskip("supabase")
    options = supabase.ClientOptions(
        httpx_client=httpx.Client(transport=transport), auto_refresh_token=False, persist_session=False
    )
    return supabase.create_client("http://testserver", key, options=options)


def test_supabase_py_auth_admin(alice, in_process):
    AuthApiError = pytest.importorskip("supabase_auth.errors").AuthApiError  # noqa: N806

    admin = supabase_client(in_process, api_key("service_role")).auth.admin
    api = httpx.Client(transport=in_process, base_url="http://testserver")
    created = admin.create_user(
        {
            "email": "kofi@example.com",
            "password": NEW_PASSWORD,
            "email_confirm": True,
            "user_metadata": {"full_name": "Kofi Mensah"},
            "app_metadata": {"plan": "pro"},
        }
    ).user
    assert created.email == "kofi@example.com" and created.app_metadata["plan"] == "pro"
    assert created.email_confirmed_at is not None

    listed = admin.list_users(page=1, per_page=1)
    assert len(listed) == 1
    assert {u.email for u in admin.list_users()} == {"alice@example.com", "kofi@example.com"}

    assert admin.get_user_by_id(created.id).user.user_metadata == {"full_name": "Kofi Mensah"}
    token = session_start(User.objects.get(pk=created.id)).access_token
    banned = admin.update_user_by_id(created.id, {"ban_duration": "876000h", "user_metadata": {"city": "Accra"}}).user
    assert banned.banned_until is not None and banned.user_metadata == {"full_name": "Kofi Mensah", "city": "Accra"}
    assert api.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401

    with pytest.raises(AuthApiError) as refused:
        admin.update_user_by_id(created.id, {"ban_duration": "a while"})
    assert refused.value.status == 400 and refused.value.code == "validation_failed"
    with pytest.raises(AuthApiError) as exists:
        admin.create_user({"email": "alice@example.com", "password": NEW_PASSWORD})
    assert exists.value.status == 422 and exists.value.code == "email_exists"

    admin.delete_user(created.id)
    assert not User.objects.filter(pk=created.id).exists()
    with pytest.raises(AuthApiError) as gone:
        admin.get_user_by_id(created.id)
    assert gone.value.status == 404 and gone.value.code == "user_not_found"

    # A client made with the anon key sends it as the bearer: not an admin.
    with pytest.raises(AuthApiError) as not_admin:
        supabase_client(in_process, api_key("anon")).auth.admin.list_users()
    assert not_admin.value.status == 403 and not_admin.value.code == "not_admin"
