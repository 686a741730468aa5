"""The admin's login is limited like the API's: failed sign-ins per account (the email
typed) and per client IP, counted in the shared database cache, refused with a 429 page
that says when to come back, and a WARNING log line (staffauth/limits.py)."""

import logging
import re

import pytest
from django.core.cache import cache
from django.test import Client

from accounts.throttles import digest
from tests.factories import PASSWORD, UserFactory
from tests.helpers import run_together

LOGIN = "/admin/login/"
WRONG = "not-the-password-1"
ACCOUNT_LIMITED = "Too many failed sign-ins for this account. Try again in 60 minutes."
IP_LIMITED = "Too many failed sign-ins from this address. Try again in 60 minutes."


def sign_in(client, email, password=WRONG, ip="10.0.0.1"):
    return client.post(f"{LOGIN}?next=/admin/", {"username": email, "password": password}, REMOTE_ADDR=ip)


def assert_wrong_password(response):
    assert response.status_code == 200
    assert b"Please enter the correct email and password for a staff account" in response.content


def assert_refused(response, message):
    assert response.status_code == 429
    assert 3500 < int(response["Retry-After"]) <= 3600  # the oldest failure ages out in an hour
    assert message in response.content.decode()
    assert not response.wsgi_request.user.is_authenticated


@pytest.fixture
def rates(settings):
    """Both limits at 40 an hour (the account's default is 10)."""
    settings.ADMIN_LOGIN_RATE_ACCOUNT = "40/hour"
    settings.ADMIN_LOGIN_RATE_IP = "40/hour"


def test_the_41st_wrong_password_from_one_address_is_refused_across_accounts(db, client, rates, caplog):
    people = [UserFactory(email=f"staff{n}@example.com", is_staff=True) for n in range(5)]
    for n in range(40):
        assert_wrong_password(sign_in(client, people[n % 4].email))
    with caplog.at_level(logging.WARNING, logger="staffauth"):
        refused = sign_in(client, people[4].email)  # an account with no failure yet
    assert_refused(refused, IP_LIMITED)
    (record,) = [r for r in caplog.records if r.name == "staffauth"]
    assert record.levelno == logging.WARNING
    assert "10.0.0.1" in record.getMessage() and digest(people[4].email) in record.getMessage()
    # Another address is not this one's business.
    assert_wrong_password(sign_in(client, people[4].email, ip="10.0.0.2"))


def test_the_41st_wrong_password_for_one_account_is_refused_from_any_address(db, client, rates, caplog):
    boss = UserFactory(email="boss@example.com", is_staff=True, is_superuser=True)
    for n in range(40):
        assert_wrong_password(sign_in(client, "Boss@Example.com", ip=f"10.2.0.{n}"))
    with caplog.at_level(logging.WARNING, logger="staffauth"):
        refused = sign_in(client, "boss@example.com", ip="10.3.0.1")
    assert_refused(refused, ACCOUNT_LIMITED)
    # The right password too, while the limit holds; and nothing of the secrets is logged.
    assert_refused(sign_in(client, boss.email, PASSWORD, ip="10.3.0.2"), ACCOUNT_LIMITED)
    lines = [r.getMessage() for r in caplog.records if r.name == "staffauth"]
    assert len(lines) == 2 and all(digest("boss@example.com") in line for line in lines)
    assert "10.3.0.1" in lines[0] and "10.3.0.2" in lines[1]
    assert not any(WRONG in line or PASSWORD in line or "boss@" in line for line in lines)
    # Other accounts from those addresses still sign in.
    UserFactory(email="other@example.com", is_staff=True)
    assert sign_in(client, "other@example.com", PASSWORD, ip="10.3.0.1").status_code == 302


def test_the_default_limit_per_account_is_ten_failures_an_hour(db, client, settings):
    assert (settings.ADMIN_LOGIN_RATE_ACCOUNT, settings.ADMIN_LOGIN_RATE_IP) == ("10/hour", "40/hour")
    UserFactory(email="boss@example.com", is_staff=True)
    for n in range(10):
        assert_wrong_password(sign_in(client, "boss@example.com", ip=f"10.4.0.{n}"))
    assert_refused(sign_in(client, "boss@example.com", ip="10.4.0.99"), ACCOUNT_LIMITED)


def test_successful_sign_ins_do_not_count_nor_reset_the_failures(db, settings):
    settings.ADMIN_LOGIN_RATE_ACCOUNT = "3/hour"
    settings.ADMIN_LOGIN_RATE_IP = "3/hour"
    UserFactory(email="boss@example.com", is_staff=True)
    client = Client()
    for _ in range(2):
        assert_wrong_password(sign_in(client, "boss@example.com"))
    for _ in range(5):
        signed_in = Client()
        response = sign_in(signed_in, "boss@example.com", PASSWORD)
        assert (response.status_code, response["Location"]) == (302, "/admin/")
        assert signed_in.get("/admin/").status_code == 200
    assert_wrong_password(sign_in(client, "boss@example.com"))  # the third failure
    response = sign_in(client, "boss@example.com")
    assert response.status_code == 429
    assert re.search(r"Try again in (59|60) minutes\.", response.content.decode())


def test_an_empty_form_is_the_forms_error_and_not_counted(db, client, settings):
    settings.ADMIN_LOGIN_RATE_IP = "1/hour"
    for _ in range(3):
        response = client.post(LOGIN, {"username": "", "password": ""}, REMOTE_ADDR="10.0.0.1")
        assert response.status_code == 200 and b"This field is required." in response.content
    assert_wrong_password(sign_in(client, "nobody@example.com"))
    assert sign_in(client, "nobody@example.com").status_code == 429


def test_off_turns_a_limit_off(db, client, settings):
    settings.ADMIN_LOGIN_RATE_ACCOUNT = None
    settings.ADMIN_LOGIN_RATE_IP = None
    UserFactory(email="boss@example.com", is_staff=True)
    for _ in range(15):
        assert_wrong_password(sign_in(client, "boss@example.com"))


def test_the_api_login_keeps_its_own_limits(db, client, api, settings):
    settings.ADMIN_LOGIN_RATE_ACCOUNT = "1/hour"
    boss = UserFactory(email="boss@example.com", is_staff=True)
    assert_wrong_password(sign_in(client, boss.email))
    assert sign_in(client, boss.email, PASSWORD).status_code == 429
    response = api.post("/api/v1/auth/login", {"email": boss.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200 and response.json()["access"]


@pytest.mark.django_db(transaction=True)
def test_failures_are_committed_as_counted_even_when_the_request_crashes(settings, monkeypatch):
    """No test transaction around the request, as in production (ATOMIC_REQUESTS): the
    count is committed before the password is checked, so a crash there keeps it."""
    from django.contrib.admin.forms import AdminAuthenticationForm

    cache.clear()
    settings.ADMIN_LOGIN_RATE_IP = "1/hour"

    def crash(self):
        raise RuntimeError("a bug")

    monkeypatch.setattr(AdminAuthenticationForm, "clean", crash)
    client = Client(raise_request_exception=False)
    try:
        assert sign_in(client, "boss@example.com").status_code == 500
        assert sign_in(client, "boss@example.com").status_code == 429
    finally:
        cache.clear()


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_parallel_wrong_passwords_gets_exactly_the_limit(settings):
    """Each attempt on its own thread and database connection, all at once: each takes
    its place in the counter under the key's lock before its password is checked."""
    cache.clear()
    settings.ADMIN_LOGIN_RATE_ACCOUNT = "3/hour"
    UserFactory(email="erin@example.com", is_staff=True)

    def attempt(n):
        return lambda: sign_in(Client(), "erin@example.com", ip=f"10.1.0.{n}").status_code

    try:
        codes = run_together(*[attempt(n) for n in range(12)], timeout=30)
        assert sorted(codes) == [200] * 3 + [429] * 9
    finally:
        cache.clear()


def test_the_login_page_is_the_admins_and_needs_csrf(db):
    client = Client(enforce_csrf_checks=True)
    page = client.get(LOGIN)
    assert page.status_code == 200 and b'id="login-form"' in page.content
    assert client.post(LOGIN, {"username": "a@example.com", "password": WRONG}).status_code == 403
