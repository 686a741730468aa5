"""The staff console as staff use it, in Chromium (issue 18)."""

import base64
import time

import httpx
import pytest
from django_otp.oath import TOTP

from generations.models import AIModel
from generations.services import generation_create
from stylestacks.models import StylePreset
from tests.factories import UserFactory


@pytest.fixture
def staff_member(transactional_db):
    return UserFactory(email="console@example.com", is_staff=True, is_superuser=True, raw_user_meta_data={})


def test_staff_sign_in_and_find_their_way(browser, staff_member):
    browser.open("/")
    browser.wait_for("#swagger-ui")  # / is the API's documentation
    assert browser.path == "/api/v1/docs"

    browser.login(staff_member.email)
    assert browser.path == "/admin/"
    browser.wait_for("#content")
    browser.screenshot("admin-index")

    browser.find("#user-tools a[href='/api/v1/docs']").click()  # "View site"
    browser.wait_for("#swagger-ui")
    assert browser.path == "/api/v1/docs"


def test_a_wrong_password_is_an_error_on_the_page(browser, staff_member):
    browser.open("/admin/login/")
    browser.fill("#id_username", staff_member.email)
    browser.fill("#id_password", "not the password")
    browser.submit()
    assert "/admin/login/" in browser.path
    assert "correct" in browser.find(".errornote").text


def test_a_preset_is_edited_block_by_block_with_the_preview_following(browser, seeds, staff_member, live_server):
    preset = StylePreset.objects.filter(is_active=True).order_by("sort_order", "name").first()
    camera = "slow crane shot over the rooftops at dawn"
    browser.login(staff_member.email)
    browser.open(f"/admin/stylestacks/stylepreset/{preset.pk}/change/")
    field = browser.wait_for("#id_style_blocks-camera_text")
    preview = browser.wait_for("#style-live-preview")

    # The layout bug: a heading 3,400 px tall whose background showed behind the form.
    assert browser.too_tall(3) == []
    browser.screenshot("preset-editor")

    # One block is one field; the counter and the preview follow the typing.
    field.clear()
    field.send_keys(camera)
    browser.wait_until(
        lambda: camera in " ".join(p.text for p in browser.find_all("#style-live-preview .preset-preview-prompt")),
        message="the live preview did not show the new camera block",
    )
    assert browser.find("#id_style_blocks-camera_text-counter .style-count").text.startswith(str(len(camera)))
    assert "Preview failed" not in preview.text
    browser.screenshot("preset-editor-preview")

    browser.submit("input[name='_save']")
    assert "was changed successfully" in browser.find(".messagelist").text

    # The change is what the API serves, and only that block changed.
    served = httpx.get(f"{live_server.url}/api/v1/presets/{preset.slug}", timeout=10).json()
    assert served["style"]["prompt_blocks"]["camera"]["text"] == camera
    before = {name: block for name, block in preset.style["prompt_blocks"].items() if name != "camera"}
    after = {name: block for name, block in served["style"]["prompt_blocks"].items() if name != "camera"}
    assert {name: block.get("text", block.get("items")) for name, block in after.items()} == {
        name: block.get("text", block.get("items")) for name, block in before.items()
    }

    # The previous document is a version, with a readable diff against the current one.
    browser.open(f"/admin/stylestacks/stylepreset/{preset.pk}/change/")
    browser.wait_for("#style-history-link").click()
    browser.wait_for("a.style-version-link").click()
    diff = browser.wait_for("#style-diff").text
    assert camera in diff
    browser.screenshot("preset-style-diff")


def test_credits_are_granted_from_the_persons_own_page(browser, staff_member):
    person = UserFactory(email="writes-to-support@example.com")
    browser.login(staff_member.email)
    browser.open(f"/admin/accounts/user/{person.pk}/change/")
    assert browser.wait_for("#user-credits-balance").text == "100"  # the sign-up bonus

    browser.fill("#id_credits_amount", "25")
    browser.fill("#id_credits_reason", "Sorry for the failed video")
    browser.submit("#user-credits-submit")

    assert "balance now 125" in browser.wait_for("ul.messagelist li.success").text
    assert browser.find("#user-credits-balance").text == "125"
    newest = browser.find("tbody#user-ledger-rows tr.ledger-row")
    assert "+25" in newest.text and "Sorry for the failed video" in newest.text
    browser.screenshot("user-page")

    # A refused amount is an error on its field, and nothing is written.
    browser.fill("#id_credits_amount", "0")
    browser.fill("#id_credits_reason", "nothing")
    browser.submit("#user-credits-submit")
    assert browser.wait_for(".field-amount .errorlist").text
    person.profile.refresh_from_db()
    assert person.profile.credits_balance == 125


def test_the_dashboard_shows_the_last_30_days_and_the_queue(browser, seeds, staff_member):
    person = UserFactory(email="maker@example.com")
    flux = AIModel.objects.get(pk="fal-ai/flux/dev")
    for prompt in ("a heron at dawn", "a fox in the snow"):
        generation_create(user=person, ai_model=flux, prompt=prompt)

    browser.login(staff_member.email)
    dashboard = browser.wait_for("#velro-dashboard")
    for chart in ("signups", "generations", "credits"):
        assert browser.find(f"#dashboard-{chart}-chart").tag_name == "svg"
    assert browser.find("#dashboard-queue-pending").text == "2"
    assert browser.find("#dashboard-queue-processing").text == "0"
    assert "UTC" in dashboard.text
    browser.screenshot("dashboard")


def totp(secret: str, *, later: int = 0) -> str:
    """The six-digit code an authenticator app shows for ``secret`` (base32), ``later``
    seconds from now — read at least 5 s before the current 30-second step ends (else in
    the next step), so the server checks it in the step it was read in. A code read at a
    step's last moment and checked in the next is accepted as one step behind, and
    django-otp then keeps that drift for the device, which refuses the next step's code
    (CI saw it once)."""
    left = 30 - time.time() % 30
    if left < 5:
        time.sleep(left + 0.2)
    code = TOTP(base64.b32decode(secret + "=" * (-len(secret) % 8)))
    code.time = time.time() + later
    return f"{code.token():06d}"


def test_a_superuser_enrols_in_two_factor_sign_in_and_signs_in_with_a_code(browser, staff_member, settings):
    settings.ADMIN_2FA_REQUIRED = "superusers"  # as in production (DEBUG off)
    browser.login(staff_member.email)
    # Required and not enrolled: set up before any other admin page.
    assert browser.path.startswith("/admin/2fa/enrol/")
    browser.wait_for("#staff-2fa-qr svg")
    secret = browser.find("code#staff-2fa-secret").text
    browser.screenshot("two-factor-enrolment")

    browser.fill("#id_otp_token", "000000" if totp(secret) != "000000" else "111111")
    browser.submit("#staff-2fa-enrol-submit")
    assert browser.find_all("p.errornote, .errorlist"), "a wrong code is refused"

    browser.fill("#id_otp_token", totp(secret))
    browser.submit("#staff-2fa-enrol-submit")
    codes = [item.text for item in browser.find_all("ul#staff-2fa-recovery-codes code.staff-2fa-recovery-code")]
    assert len(codes) == 10 and len(set(codes)) == 10
    browser.screenshot("two-factor-recovery-codes")
    browser.find("a#staff-2fa-continue").click()
    browser.wait_for("#velro-dashboard")

    browser.submit("#logout-form button[type=submit]")
    browser.login(staff_member.email)
    assert browser.path.startswith("/admin/2fa/verify/")
    # A code is taken once: the enrolment used this 30-second step, so the next one.
    browser.fill("#id_otp_token", totp(secret, later=30))
    browser.submit("#staff-2fa-verify-submit")
    assert browser.path == "/admin/"
    browser.wait_for("#velro-dashboard")
