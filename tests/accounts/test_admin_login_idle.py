"""Staff sessions of the admin end after ADMIN_SESSION_IDLE_TIMEOUT seconds without a
request; the last-activity stamp in the session is rewritten at most once a minute; the
API never reads it (staffauth/middleware.py)."""

import time

import pytest

from staffauth.middleware import LAST_SEEN


def stamp(client, seconds_ago: int) -> None:
    session = client.session
    session[LAST_SEEN] = int(time.time()) - seconds_ago
    session.save()


def stored_stamp(client) -> int | None:
    return client.session.get(LAST_SEEN)


@pytest.fixture
def signed_in(staff, client):
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    return client


def test_the_first_admin_request_stamps_the_session(signed_in):
    assert abs(stored_stamp(signed_in) - time.time()) <= 2


def test_an_idle_staff_session_is_signed_out(signed_in, settings):
    assert settings.ADMIN_SESSION_IDLE_TIMEOUT == 1800
    stamp(signed_in, 1801)
    response = signed_in.get("/admin/accounts/user/")
    assert (response.status_code, response["Location"]) == (302, "/admin/login/?next=/admin/accounts/user/")
    assert "_auth_user_id" not in signed_in.session
    page = signed_in.get(response["Location"])
    assert page.status_code == 200
    assert b"You were signed out after 30 minutes without activity." in page.content
    assert signed_in.get("/admin/").status_code == 302


def test_a_session_active_within_the_timeout_goes_on(signed_in):
    stamp(signed_in, 1790)
    assert signed_in.get("/admin/").status_code == 200
    assert abs(stored_stamp(signed_in) - time.time()) <= 2  # older than a minute: renewed


def test_the_stamp_is_not_rewritten_more_than_once_a_minute(signed_in, sql):
    stamp(signed_in, 30)
    before = stored_stamp(signed_in)
    key = signed_in.session.session_key
    (row_before,) = sql("SELECT session_data, expire_date FROM public.django_session WHERE session_key = %s", [key])
    for _ in range(3):
        assert signed_in.get("/admin/").status_code == 200
    assert stored_stamp(signed_in) == before
    # No save at all: the row is as it was.
    assert sql("SELECT session_data, expire_date FROM public.django_session WHERE session_key = %s", [key]) == [
        row_before
    ]


def test_a_timeout_of_zero_never_signs_out(signed_in, settings):
    settings.ADMIN_SESSION_IDLE_TIMEOUT = 0
    stamp(signed_in, 10 * 86400)
    assert signed_in.get("/admin/").status_code == 200


def test_the_timeout_is_a_setting(signed_in, settings):
    settings.ADMIN_SESSION_IDLE_TIMEOUT = 300
    stamp(signed_in, 301)
    assert signed_in.get("/admin/").status_code == 302
    assert b"signed out after 5 minutes" in signed_in.get("/admin/login/").content


def test_requests_outside_the_admin_neither_expire_nor_stamp(signed_in, alice, api_as):
    stamp(signed_in, 7200)
    before = stored_stamp(signed_in)
    assert signed_in.get("/api/v1/health").status_code == 200
    assert stored_stamp(signed_in) == before and "_auth_user_id" in signed_in.session
    # A JWT client of the API is not touched either.
    assert api_as(alice).get("/api/v1/me").status_code == 200
