"""Two-factor sign-in for staff (django-otp): enrolling an authenticator app, the code
step after the password, recovery codes, the requirement for superusers, turning it off
and a superuser's reset (staffauth/)."""

import base64
import re

import pytest
from django.test import Client
from django_otp.oath import totp
from django_otp.plugins.otp_static.models import StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from staffauth import services
from tests.factories import PASSWORD, UserFactory

ENROL, VERIFY, MANAGE = "/admin/2fa/enrol/", "/admin/2fa/verify/", "/admin/2fa/"


def code(device: TOTPDevice, steps_ahead: int = 0) -> str:
    """The code an authenticator app shows for ``device`` now (or ``steps_ahead`` 30 s
    steps later: a code is accepted once, and the next step's is within tolerance)."""
    device.refresh_from_db()
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=steps_ahead):06d}"


def code_from_secret(secret: str, steps_ahead: int = 0) -> str:
    """As an app computes it from the secret typed in (base32)."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    return f"{totp(key, drift=steps_ahead):06d}"


def enrolled(user) -> tuple[TOTPDevice, list[str]]:
    device = services.enrolment_start(user)
    codes = services.enrolment_confirm(device, code(device))
    device.refresh_from_db()
    return device, codes


def password_step(client, email, password=PASSWORD):
    return client.post("/admin/login/?next=/admin/", {"username": email, "password": password})


@pytest.fixture
def boss(db):
    return UserFactory(email="boss@example.com", is_staff=True, is_superuser=True)


def test_enrolment_shows_a_qr_code_and_the_secret_and_confirms_with_a_right_code(boss, client):
    client.force_login(boss)
    page = client.get(ENROL)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<div id="staff-2fa-qr"' in html and "<svg" in html and "<path" in html
    secret = re.search(r'<code id="staff-2fa-secret"[^>]*>([A-Z2-7]+)</code>', html).group(1)
    device = TOTPDevice.objects.get(user=boss)
    assert device.confirmed is False and secret == services.enrolment_secret(device)
    assert "otpauth://totp/Velro%3Aboss%40example.com?secret=" + secret in services.enrolment_qr_source(device)
    # A reload keeps the same secret (the app may have scanned it already).
    assert secret in client.get(ENROL).content.decode()
    assert TOTPDevice.objects.filter(user=boss).count() == 1

    wrong = client.post(ENROL, {"otp_token": "000000" if code_from_secret(secret) != "000000" else "111111"})
    assert wrong.status_code == 200 and b"That code is not right" in wrong.content
    assert TOTPDevice.objects.get(user=boss).confirmed is False

    done = client.post(ENROL, {"otp_token": code_from_secret(secret)})
    assert done.status_code == 200
    codes = re.findall(r'<code class="staff-2fa-recovery-code">([a-z2-7]{8})</code>', done.content.decode())
    assert len(codes) == 10 and len(set(codes)) == 10
    assert 'id="staff-2fa-recovery-codes"' in done.content.decode()
    assert TOTPDevice.objects.get(user=boss).confirmed is True
    assert sorted(StaticToken.objects.filter(device__user=boss).values_list("token", flat=True)) == sorted(codes)
    # This session is verified by the enrolment: the admin opens.
    assert client.get("/admin/").status_code == 200
    assert b'id="staff-2fa-link"' in client.get("/admin/").content


def test_signing_in_with_an_authenticator_takes_the_password_then_a_code(boss):
    device, _ = enrolled(boss)
    client = Client()
    response = password_step(client, "boss@example.com")
    assert (response.status_code, response["Location"]) == (302, "/admin/")
    held = client.get("/admin/accounts/user/")
    assert (held.status_code, held["Location"]) == (302, f"{VERIFY}?next=%2Fadmin%2Faccounts%2Fuser%2F")
    page = client.get(held["Location"])
    assert page.status_code == 200 and b'name="otp_token"' in page.content

    right = code(device, steps_ahead=1)  # this step's was used by the enrolment
    wrong = client.post(VERIFY, {"otp_token": "123456" if right != "123456" else "654321", "next": "/admin/"})
    assert wrong.status_code == 200 and b"That code is not right" in wrong.content
    assert client.get("/admin/").status_code == 302

    key_before = client.session.session_key
    done = client.post(VERIFY, {"otp_token": right, "next": "/admin/accounts/user/"})
    assert (done.status_code, done["Location"]) == (302, "/admin/accounts/user/")
    assert client.session.session_key != key_before
    assert client.get("/admin/accounts/user/").status_code == 200

    # The same code is not accepted twice (another session, same 30 s step).
    again = Client()
    password_step(again, "boss@example.com")
    assert again.post(VERIFY, {"otp_token": right}).status_code == 200
    assert again.get("/admin/").status_code == 302


def test_a_recovery_code_signs_in_once(boss):
    _, codes = enrolled(boss)
    first = Client()
    password_step(first, "boss@example.com")
    response = first.post(VERIFY, {"otp_token": f" {codes[3][:4]}-{codes[3][4:].upper()} ", "next": "/admin/"})
    assert response.status_code == 302
    page = first.get("/admin/")
    assert page.status_code == 200 and b"You signed in with a recovery code; 9 left." in page.content

    second = Client()
    password_step(second, "boss@example.com")
    assert second.post(VERIFY, {"otp_token": codes[3]}).status_code == 200
    assert second.get("/admin/").status_code == 302
    assert services.recovery_codes_left(boss) == 9


def test_wrong_codes_count_as_failed_sign_ins(boss, settings):
    settings.ADMIN_LOGIN_RATE_ACCOUNT = "3/hour"
    device, codes = enrolled(boss)
    client = Client()
    password_step(client, "boss@example.com")
    for _ in range(3):
        assert client.post(VERIFY, {"otp_token": "000000"}).status_code == 200
    refused = client.post(VERIFY, {"otp_token": code(device, steps_ahead=1)})
    assert refused.status_code == 429
    assert b"Too many failed sign-ins for this account. Try again in 60 minutes." in refused.content
    assert client.post(VERIFY, {"otp_token": codes[0]}).status_code == 429
    assert client.get("/admin/").status_code == 302
    # And the password step of the same account is refused too.
    assert password_step(Client(), "boss@example.com").status_code == 429


def test_an_unverified_session_cannot_enrol_another_app_or_turn_it_off(boss):
    enrolled(boss)
    client = Client()
    password_step(client, "boss@example.com")
    for path in (ENROL, MANAGE, "/admin/staffauth/twofactordevice/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(VERIFY), path
    assert client.post(MANAGE, {"action": "disable", "otp_token": "000000"}).status_code == 302
    assert TOTPDevice.objects.filter(user=boss, confirmed=True).count() == 1


def test_a_force_logged_in_superuser_is_sent_to_enrolment_when_required(boss, client, settings):
    settings.ADMIN_2FA_REQUIRED = "superusers"
    client.force_login(boss)
    for path in ("/admin/", "/admin/accounts/user/", MANAGE, "/admin/dbhealth/"):
        response = client.get(path)
        assert response.status_code == 302 and response["Location"].startswith(f"{ENROL}?next="), path
    page = client.get(ENROL)
    assert page.status_code == 200 and b"Your account must sign in to the admin with a second factor" in page.content
    # Signing out still works.
    assert client.post("/admin/logout/").status_code == 200

    # Staff who are not superusers are not held under "superusers", but are under "staff".
    clerk = UserFactory(email="clerk@example.com", is_staff=True)
    other = Client()
    other.force_login(clerk)
    assert other.get("/admin/").status_code == 200
    settings.ADMIN_2FA_REQUIRED = "staff"
    assert other.get("/admin/")["Location"] == f"{ENROL}?next=%2Fadmin%2F"
    # Not staff: the admin's own refusal, no enrolment.
    alice = UserFactory(email="alice@example.com")
    outsider = Client()
    outsider.force_login(alice)
    assert outsider.get("/admin/")["Location"].startswith("/admin/login/")


def test_enrolling_when_required_then_signing_in_again(boss, settings):
    settings.ADMIN_2FA_REQUIRED = "superusers"
    client = Client()
    assert password_step(client, "boss@example.com")["Location"] == "/admin/"
    held = client.get("/admin/")
    assert held["Location"] == f"{ENROL}?next=%2Fadmin%2F"
    secret = re.search(r'id="staff-2fa-secret"[^>]*>([A-Z2-7]+)<', client.get(held["Location"]).content.decode())[1]
    done = client.post(ENROL, {"otp_token": code_from_secret(secret), "next": "/admin/"})
    assert b'id="staff-2fa-continue" class="button" href="/admin/"' in done.content
    assert client.get("/admin/").status_code == 200
    client.post("/admin/logout/")

    assert password_step(client, "boss@example.com")["Location"] == "/admin/"
    assert client.get("/admin/")["Location"] == f"{VERIFY}?next=%2Fadmin%2F"
    assert client.post(VERIFY, {"otp_token": code_from_secret(secret, 1), "next": "/admin/"}).status_code == 302
    assert client.get("/admin/").status_code == 200


def test_the_default_requires_superusers_when_debug_is_off_and_nobody_with_debug():
    from tests.velro.test_production import prod_env, python

    show = "import django; django.setup(); from django.conf import settings; print(settings.ADMIN_2FA_REQUIRED)"
    production = python("-c", show, env=prod_env(DJANGO_SETTINGS_MODULE="velro.settings", ADMIN_2FA_REQUIRED=""))
    assert production.stdout.split()[-1] == "superusers", production.stderr
    debug = python("-c", show, env=prod_env(DJANGO_SETTINGS_MODULE="velro.settings", DEBUG="1", ADMIN_2FA_REQUIRED=""))
    assert debug.stdout.split()[-1] == "off", debug.stderr
    bad = python("-c", show, env=prod_env(DJANGO_SETTINGS_MODULE="velro.settings", ADMIN_2FA_REQUIRED="all"))
    assert bad.returncode != 0 and "ADMIN_2FA_REQUIRED must be superusers, staff or off" in bad.stderr


def test_staff_regenerate_recovery_codes_and_turn_it_off_with_a_code(boss, client):
    device, old_codes = enrolled(boss)
    client.force_login(boss)
    client.post(VERIFY, {"otp_token": old_codes[0]})
    page = client.get(MANAGE)
    assert b'id="staff-2fa-status" data-enabled="true"' in page.content
    assert b'<span id="staff-2fa-codes-left">9</span>' in page.content

    refused = client.post(MANAGE, {"action": "regenerate", "otp_token": "000000"})
    assert refused.status_code == 200 and b"That code is not right" in refused.content
    new = client.post(MANAGE, {"action": "regenerate", "otp_token": code(device, steps_ahead=1)})
    new_codes = re.findall(r'<code class="staff-2fa-recovery-code">([a-z2-7]{8})</code>', new.content.decode())
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    assert services.recovery_codes_left(boss) == 10

    off = client.post(MANAGE, {"action": "disable", "otp_token": new_codes[0]})
    assert (off.status_code, off["Location"]) == (302, MANAGE)
    assert not TOTPDevice.objects.filter(user=boss).exists()
    assert not StaticToken.objects.filter(device__user=boss).exists()
    assert b'data-enabled="false"' in client.get(MANAGE).content


def test_turning_it_off_when_required_goes_straight_to_enrolment(boss, client, settings):
    settings.ADMIN_2FA_REQUIRED = "superusers"
    device, codes = enrolled(boss)
    client.force_login(boss)
    client.post(VERIFY, {"otp_token": codes[0]})
    off = client.post(MANAGE, {"action": "disable", "otp_token": codes[1]})
    assert off["Location"] == "/admin/2fa/enrol/"
    assert client.get("/admin/")["Location"].startswith(ENROL)


def test_a_superuser_resets_another_staff_members_two_factor_sign_in(boss, client, settings):
    clerk = UserFactory(email="clerk@example.com", is_staff=True)
    _, codes = enrolled(clerk)
    clerk_client = Client()
    clerk_client.force_login(clerk)
    clerk_client.post(VERIFY, {"otp_token": codes[0]})
    assert clerk_client.get("/admin/").status_code == 200

    client.force_login(boss)
    listing = client.get("/admin/staffauth/twofactordevice/")
    assert listing.status_code == 200 and b"clerk@example.com" in listing.content
    assert b"reset_two_factor" in listing.content
    device = TOTPDevice.objects.get(user=clerk)
    response = client.post(
        "/admin/staffauth/twofactordevice/", {"action": "reset_two_factor", "_selected_action": [device.pk]}
    )
    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=clerk).exists()
    assert not StaticToken.objects.filter(device__user=clerk).exists()
    # The clerk's session is no longer verified; required now, they must enrol again.
    settings.ADMIN_2FA_REQUIRED = "staff"
    assert clerk_client.get("/admin/")["Location"].startswith(ENROL)


def test_staff_who_are_not_superusers_cannot_reset_and_nobody_sees_secrets(boss, client):
    from django.contrib.auth.models import Permission

    clerk = UserFactory(email="clerk@example.com", is_staff=True)
    clerk.user_permissions.add(Permission.objects.get(codename="view_twofactordevice"))
    device, _ = enrolled(boss)
    other = Client()
    other.force_login(clerk)
    listing = other.get("/admin/staffauth/twofactordevice/")
    assert listing.status_code == 200 and b"boss@example.com" in listing.content
    assert b"reset_two_factor" not in listing.content
    refused = other.post(
        "/admin/staffauth/twofactordevice/", {"action": "reset_two_factor", "_selected_action": [device.pk]}
    )
    assert refused.status_code in (200, 302, 403)
    assert TOTPDevice.objects.filter(user=boss, confirmed=True).exists()
    # django-otp's own device admins (key, QR code, recovery codes in clear) are not there.
    client.force_login(UserFactory(email="root@example.com", is_staff=True, is_superuser=True))
    for path in ("/admin/otp_totp/totpdevice/", "/admin/otp_static/staticdevice/"):
        assert client.get(path).status_code in (403, 404), path
    detail = client.get(f"/admin/staffauth/twofactordevice/{device.pk}/change/")
    assert detail.status_code == 200 and device.key.encode() not in detail.content


def test_the_api_is_not_held_by_the_two_factor_step(boss, api, settings):
    settings.ADMIN_2FA_REQUIRED = "staff"
    enrolled(boss)
    response = api.post("/api/v1/auth/login", {"email": boss.email, "password": PASSWORD}, format="json")
    assert response.status_code == 200
    me = api.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {response.json()['access']}")
    assert me.status_code == 200


def test_the_code_step_keeps_the_next_on_this_site(boss):
    device, _ = enrolled(boss)
    client = Client()
    password_step(client, "boss@example.com")
    response = client.post(VERIFY, {"otp_token": code(device, 1), "next": "https://evil.example.com/"})
    assert response["Location"] == "/admin/"


def test_check_deploy_warns_when_production_turns_two_factor_sign_in_off(settings):
    from staffauth.apps import check_two_factor_required

    settings.DEBUG = False
    settings.ADMIN_2FA_REQUIRED = "off"
    assert [warning.id for warning in check_two_factor_required()] == ["staffauth.W001"]
    settings.ADMIN_2FA_REQUIRED = "superusers"
    assert check_two_factor_required() == []
    settings.DEBUG, settings.ADMIN_2FA_REQUIRED = True, "off"
    assert check_two_factor_required() == []
