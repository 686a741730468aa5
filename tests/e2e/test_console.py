"""The staff console as staff use it, in Chromium (issue 18)."""

import httpx
import pytest

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
