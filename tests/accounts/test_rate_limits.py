"""Rate limits of login, register and refresh: per IP and per email (refresh: per user),
429 in the API's error shape with Retry-After, counters in the shared database cache."""

import json
import re

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import ProgrammingError

from accounts import throttles
from accounts.models import User
from tests.conftest import as_role
from tests.factories import PASSWORD, UserFactory
from tests.helpers import run_together

LOGIN, REGISTER, REFRESH = "/api/v1/auth/login", "/api/v1/auth/register", "/api/v1/auth/refresh"
GENEROUS = "1000/min"
THROTTLED = re.compile(r"(?P<what>.+)\. Try again in (?P<seconds>\d+) seconds?\.")


@pytest.fixture
def limits(settings):
    """``limits(login_email="3/min", …)``: those rates, every other scope generous."""

    def set_rates(num_proxies=None, **rates):
        scopes = ("login_ip", "login_email", "register_ip", "register_email", "refresh_ip", "refresh_user")
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {scope: rates.get(scope, GENEROUS) for scope in scopes},
        }
        if num_proxies is not None:
            settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": num_proxies}

    return set_rates


@pytest.fixture
def clock(monkeypatch):
    """The throttles' clock, moved by hand."""
    now = {"t": 1_800_000_000.0}
    monkeypatch.setattr(throttles.AuthRateThrottle, "timer", lambda self: now["t"])
    return now


def login(api, email, password=PASSWORD, ip="10.0.0.1", **extra):
    return api.post(LOGIN, {"email": email, "password": password}, format="json", REMOTE_ADDR=ip, **extra)


def register(api, email, ip="10.0.0.1"):
    return api.post(REGISTER, {"email": email, "password": PASSWORD}, format="json", REMOTE_ADDR=ip)


def refresh(api, token, ip="10.0.0.1"):
    return api.post(REFRESH, {"refresh": token}, format="json", REMOTE_ADDR=ip)


def assert_throttled(response, what: str, max_wait: int) -> int:
    """A 429 in the error shape, naming the limit, with a Retry-After that agrees."""
    assert response.status_code == 429, response.content
    body = response.json()
    assert set(body) == {"detail", "code"}
    assert body["code"] == "throttled"
    match = THROTTLED.fullmatch(body["detail"])
    assert match, body["detail"]
    assert match["what"] == what
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= max_wait
    assert int(match["seconds"]) == retry_after
    return retry_after


# --- login ---------------------------------------------------------------------------


def test_login_is_limited_per_email_counting_failed_attempts(alice, api, limits, clock):
    limits(login_email="3/min")
    for _ in range(3):  # wrong passwords: 401s, and DRF rolls each request back
        assert login(api, "alice@example.com", "wrong-password").status_code == 401

    clock["t"] += 20
    # Even the right password, from another address, in another spelling of the email.
    response = login(api, " ALICE@Example.com ", ip="10.0.0.2")
    assert assert_throttled(response, "Too many login attempts for this email", 60) == 40


def test_other_emails_can_still_log_in_when_one_is_limited(alice, bob, api, limits, clock):
    limits(login_email="2/min")
    for _ in range(2):
        login(api, "alice@example.com", "wrong-password")
    assert login(api, "alice@example.com").status_code == 429

    response = login(api, "bob@example.com")
    assert response.status_code == 200
    assert set(response.json()) == {"access", "refresh", "user"}


def test_the_email_limit_lifts_when_the_window_has_passed(alice, api, limits, clock):
    limits(login_email="2/min")
    login(api, "alice@example.com", "wrong-password")
    clock["t"] += 30
    login(api, "alice@example.com", "wrong-password")
    clock["t"] += 10
    assert_throttled(login(api, "alice@example.com"), "Too many login attempts for this email", 20)

    clock["t"] += 21  # the first attempt is now more than a minute old
    assert login(api, "alice@example.com").status_code == 200


def test_login_is_limited_per_ip_and_another_ip_is_not(alice, api, limits, clock):
    limits(login_ip="3/min")
    for n in range(3):
        assert login(api, f"nobody{n}@example.com", ip="203.0.113.7").status_code == 401

    assert_throttled(login(api, "alice@example.com", ip="203.0.113.7"), "Too many login attempts from this address", 60)
    assert login(api, "alice@example.com", ip="203.0.113.8").status_code == 200


def test_x_forwarded_for_is_ignored_without_trusted_proxies(alice, api, limits, clock):
    # NUM_PROXIES=0 (the default): the header can be forged, so it names nobody.
    limits(login_ip="2/min", num_proxies=0)
    for n in range(2):
        login(api, f"nobody{n}@example.com", HTTP_X_FORWARDED_FOR=f"198.51.100.{n}")

    response = login(api, "alice@example.com", HTTP_X_FORWARDED_FOR="198.51.100.99")
    assert_throttled(response, "Too many login attempts from this address", 60)


def test_x_forwarded_for_names_the_client_behind_num_proxies(alice, api, limits, clock):
    limits(login_ip="2/min", num_proxies=1)
    for n in range(2):
        login(api, f"nobody{n}@example.com", ip="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.1")
    assert login(api, "alice@example.com", ip="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.1").status_code == 429

    # Same proxy, another client: its own budget.
    assert login(api, "alice@example.com", ip="10.9.9.9", HTTP_X_FORWARDED_FOR="198.51.100.2").status_code == 200


def test_a_refused_request_is_not_counted_against_the_email(alice, api, limits, clock):
    """The IP limit answers first; the email's budget is left alone, so one address
    cannot lock someone out beyond its own budget."""
    limits(login_ip="2/min", login_email="3/min")
    login(api, "alice@example.com", "wrong-password", ip="203.0.113.1")
    login(api, "alice@example.com", "wrong-password", ip="203.0.113.1")
    for _ in range(3):
        assert login(api, "alice@example.com", "wrong-password", ip="203.0.113.1").status_code == 429

    assert login(api, "alice@example.com", ip="203.0.113.2").status_code == 200  # 3rd of 3


def test_login_without_an_email_is_a_400_and_counts_per_ip(db, api, limits, clock):
    limits(login_ip="1/min")
    response = api.post(LOGIN, {"password": "x"}, format="json", REMOTE_ADDR="10.0.0.1")
    assert response.status_code == 400
    assert login(api, "a@example.com").status_code == 429


@pytest.mark.django_db(transaction=True)
def test_a_refused_login_writes_nothing_but_its_count_stays(api, limits, clock, monkeypatch):
    """As in production, no test transaction around the request: the view's work is
    rolled back for real when it refuses, while the throttle's count is kept."""
    from django.core.cache import cache
    from django.utils import timezone
    from rest_framework.exceptions import AuthenticationFailed

    from accounts.serializers import LoginSerializer

    carol = UserFactory(email="carol@example.com")

    def write_then_refuse(self, attrs):
        User.objects.filter(pk=carol.pk).update(last_login=timezone.now())
        raise AuthenticationFailed("Invalid email or password.", "no_active_account")

    monkeypatch.setattr(LoginSerializer, "validate", write_then_refuse)
    limits(login_email="2/min")
    try:
        for _ in range(2):
            assert login(api, "carol@example.com").status_code == 401
        assert_throttled(login(api, "carol@example.com"), "Too many login attempts for this email", 60)
        carol.refresh_from_db()
        assert carol.last_login is None
    finally:
        cache.clear()  # committed rows: leave none to later tests


@pytest.mark.django_db(transaction=True)
def test_a_request_that_crashes_still_counts(limits, clock, monkeypatch):
    """Counters are committed as they are written, not with the request's transaction."""
    from django.core.cache import cache
    from rest_framework.test import APIClient

    from accounts.serializers import LoginSerializer

    def crash(self, attrs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(LoginSerializer, "validate", crash)
    limits(login_ip="1/min")
    api = APIClient(raise_request_exception=False)
    try:
        assert login(api, "dave@example.com").status_code == 500
        assert_throttled(login(api, "dave@example.com"), "Too many login attempts from this address", 60)
    finally:
        cache.clear()


@pytest.mark.parametrize("path", [LOGIN, REGISTER, REFRESH])
def test_bodies_the_throttles_cannot_read_still_get_the_views_400_and_count_per_ip(db, api, limits, clock, path):
    limits(login_ip="2/min", register_ip="2/min", refresh_ip="2/min")
    broken = api.post(path, "{not json", content_type="application/json", REMOTE_ADDR="10.0.0.1")
    assert (broken.status_code, broken.json()["code"]) == (400, "parse_error")
    listed = api.post(path, ["not", "an", "object"], format="json", REMOTE_ADDR="10.0.0.1")
    assert listed.status_code in (400, 401), listed.content
    assert api.post(path, {}, format="json", REMOTE_ADDR="10.0.0.1").status_code == 429


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_parallel_attempts_gets_exactly_the_limit(limits, clock):
    """Each request on its own thread and database connection, all at once: the check
    is atomic per key, so no two of them read the same old count."""
    from django.core.cache import cache
    from rest_framework.test import APIClient

    limits(login_email="3/min")

    def attempt(n):
        return lambda: login(APIClient(), "erin@example.com", "wrong-password", ip=f"10.1.0.{n}").status_code

    try:
        codes = run_together(*[attempt(n) for n in range(12)], timeout=30)
        assert sorted(codes) == [401] * 3 + [429] * 9
    finally:
        cache.clear()


@pytest.mark.parametrize("path", [LOGIN, REGISTER, REFRESH])
def test_odd_text_in_the_keyed_fields_is_the_views_answer_not_a_crash(db, api, limits, clock, path):
    limits(num_proxies=1)
    for value in ("\ud800@example.com", "é" * 300, "x" * 10_000):
        body = {"email": value, "password": "a-Long-and-unusual-pass-7", "refresh": value}
        body = {key: body[key] for key in (("refresh",) if path == REFRESH else ("email", "password"))}
        raw = json.dumps(body)  # ASCII, the lone surrogate escaped as \\ud800
        response = api.post(
            path, raw, content_type="application/json", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="z" * 400
        )
        assert response.status_code in (400, 401), (value[:10], response.content)


def test_the_ip_key_is_the_address_or_a_bounded_digest(db, api, limits, clock, sql):
    limits(num_proxies=1)
    login(api, "a@example.com", ip="10.0.0.1", HTTP_X_FORWARDED_FOR="2001:DB8::1")
    login(api, "a@example.com", ip="10.0.0.1", HTTP_X_FORWARDED_FOR="not an address " * 30)
    keys = [key for (key,) in sql("SELECT cache_key FROM public.cache_entries WHERE cache_key LIKE %s", ["%login_ip%"])]
    assert len(keys) == 2
    assert any(key.endswith("login_ip_2001:db8::1") for key in keys)
    assert all(len(key) < 100 for key in keys)


# --- register ------------------------------------------------------------------------


def test_register_is_limited_per_ip(db, api, limits, clock):
    limits(register_ip="2/hour")
    assert register(api, "one@example.com").status_code == 201
    assert register(api, "two@example.com").status_code == 201

    assert_throttled(register(api, "three@example.com"), "Too many sign-ups from this address", 3600)
    assert not User.objects.filter(email="three@example.com").exists()
    assert register(api, "three@example.com", ip="10.0.0.2").status_code == 201


def test_register_is_limited_per_email(db, api, limits, clock):
    limits(register_email="2/hour")
    assert register(api, "Taken@example.com", ip="10.0.0.1").status_code == 201
    assert register(api, "taken@example.com", ip="10.0.0.2").status_code == 400  # taken: counted too

    response = register(api, "TAKEN@example.com", ip="10.0.0.3")
    assert_throttled(response, "Too many sign-up attempts for this email", 3600)
    assert register(api, "other@example.com", ip="10.0.0.3").status_code == 201


# --- refresh -------------------------------------------------------------------------


def tokens(api, email):
    response = login(api, email, ip="192.0.2.250")
    assert response.status_code == 200
    return response.json()["refresh"]


def test_refresh_is_limited_per_ip(alice, api, limits, clock):
    limits(refresh_ip="2/min")
    token = tokens(api, "alice@example.com")
    assert refresh(api, token).status_code == 200
    assert refresh(api, token).status_code == 200

    assert_throttled(refresh(api, token), "Too many token refreshes from this address", 60)
    assert refresh(api, token, ip="10.0.0.2").status_code == 200


def test_refresh_is_limited_per_user_of_the_token(alice, bob, api, limits, clock):
    limits(refresh_user="2/min")
    alices, bobs = tokens(api, "alice@example.com"), tokens(api, "bob@example.com")
    assert refresh(api, alices, ip="10.0.0.1").status_code == 200
    assert refresh(api, alices, ip="10.0.0.2").status_code == 200

    assert_throttled(refresh(api, alices, ip="10.0.0.3"), "Too many token refreshes for this account", 60)
    assert refresh(api, bobs, ip="10.0.0.3").status_code == 200


def test_an_invalid_refresh_token_spends_no_ones_user_budget(alice, api, limits, clock):
    limits(refresh_user="1/min")
    token = tokens(api, "alice@example.com")
    for garbage in ("garbage", token[:-4] + "AAAA"):  # the second: alice's id, a forged signature
        assert refresh(api, garbage).status_code == 401
    assert refresh(api, token).status_code == 200


# --- where the counters live ---------------------------------------------------------


def test_counters_live_in_the_shared_cache_table_without_the_email(alice, api, limits, clock, sql):
    limits()
    login(api, "alice@example.com")

    keys = [key for (key,) in sql("SELECT cache_key FROM public.cache_entries ORDER BY cache_key")]
    assert len(keys) == 2  # one per throttle: IP and email
    assert any("login_ip" in key for key in keys) and any("login_email" in key for key in keys)
    assert not any("alice" in key for key in keys)


def test_the_cache_table_has_rls_and_no_api_grants(db, sql):
    assert sql("SELECT relrowsecurity FROM pg_class WHERE oid = 'public.cache_entries'::regclass") == [(True,)]
    assert sql("SELECT policyname, roles FROM pg_policies WHERE tablename = 'cache_entries'") == [
        ("cache_entries_service", ["service_role"])
    ]
    for role in ("anon", "authenticated"):
        with pytest.raises(ProgrammingError, match="permission denied"), as_role(role) as cursor:
            cursor.execute("SELECT count(*) FROM public.cache_entries")


def test_every_auth_throttle_has_a_default_rate_and_bad_rates_are_refused(monkeypatch):
    from django.urls import resolve

    from accounts import throttles
    from velro import settings as velro_settings

    scopes = {
        throttle.scope for path in (LOGIN, REGISTER, REFRESH) for throttle in resolve(path).func.cls.throttle_classes
    }
    # /auth/v1's emails and codes (accounts/gotrue_flows.py).
    scopes |= {throttles.EmailSendIPThrottle.scope, throttles.EmailSendThrottle.scope, throttles.VerifyIPThrottle.scope,
               throttles.VerifyEmailThrottle.scope}  # fmt: skip
    assert scopes == set(velro_settings._RATE_LIMIT_DEFAULTS)
    assert velro_settings._RATE_LIMIT_DEFAULTS["login_email"] == "5/min"
    assert velro_settings._RATE_LIMIT_DEFAULTS["login_ip"] == "20/min"
    assert velro_settings._RATE_LIMIT_DEFAULTS["register_ip"] == "5/hour"

    monkeypatch.setenv("RATE_LIMIT_LOGIN_IP", "off")
    assert velro_settings._rate_limit("login_ip", "20/min") is None
    monkeypatch.setenv("RATE_LIMIT_LOGIN_IP", "5/month")
    with pytest.raises(ImproperlyConfigured, match="RATE_LIMIT_LOGIN_IP must look like"):
        velro_settings._rate_limit("login_ip", "20/min")
