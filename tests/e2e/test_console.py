"""The staff console as staff use it, in Chromium (issue 18)."""

import pytest

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
