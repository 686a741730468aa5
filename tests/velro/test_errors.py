"""Errors are JSON with a clear message, never a 500 or an HTML page."""

import pytest


def test_unknown_api_url_is_a_json_404(db, client):
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not found.", "code": "not_found"}


def test_wrong_method_is_a_json_405(alice, api_as):
    response = api_as(alice).delete("/api/v1/me")
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b"{"),
        ("application/json", b"\xff\xfe"),
        ("application/json", b"[1, 2]"),
        ("text/plain", b"hi"),
    ],
    ids=["truncated", "not-utf8", "a-list", "unsupported-type"],
)
def test_bad_bodies_are_4xx_json(alice, api_as, content_type, body):
    response = api_as(alice).generic("PATCH", "/api/v1/me", body, content_type=content_type)
    assert 400 <= response.status_code < 500
    assert "detail" in response.json()


def test_validation_errors_have_one_shape(db, api):
    response = api.post("/api/v1/auth/register", {"email": "bad"}, format="json")
    body = response.json()
    assert response.status_code == 400
    assert body["code"] == "invalid"
    assert set(body["errors"]) == {"email", "password"}
    assert body["detail"].startswith(("email:", "password:"))


def test_an_unusual_utc_offset_in_a_date_filter_is_not_a_500(alice, api_as):
    # Python accepts offsets up to ±23:59, PostgreSQL only ±15:59 (found by schemathesis).
    for query in ("created_before=2020-01-01T00:00:00-22:00", "created_after=2020-01-01T00:00:00%2B16:00"):
        response = api_as(alice).get(f"/api/v1/generations?{query}")
        assert response.status_code == 200, response.content


def test_a_host_not_allowed_gets_a_json_400_under_the_api(db, client):
    response = client.get("/api/v1/models", HTTP_HOST="evil.example.com")
    assert response.status_code == 400
    assert response.json() == {"detail": "Bad request.", "code": "bad_request"}


def test_per_item_errors_of_a_list_field_are_flat_strings(alice, api_as):
    response = api_as(alice).post("/api/v1/style-stacks", {"name": "a", "compatible_models": ["", "ok"]}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"] == {"compatible_models": ["0: This field may not be blank."]}


# --- finding one's way: /, /api/v1/ and the admin's "View site" ---------------------------


def test_the_root_redirects_to_the_api_docs(db, client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/api/v1/docs"
    assert client.get(response["Location"]).status_code == 200


def test_the_api_root_lists_its_sections_with_working_links(db, client):
    response = client.get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert body["docs"] == "http://testserver/api/v1/docs"
    assert {"auth", "generations", "style_stacks", "presets", "billing", "health"} <= set(body["sections"])
    # Every link is a route of the API, not the catch-all 404.
    for name, section in body["sections"].items():
        path = section["url"].removeprefix("http://testserver")
        assert client.get(path).status_code != 404, name
        assert section["description"]


def test_the_admins_view_site_link_goes_to_the_docs(admin_client):
    response = admin_client.get("/admin/")
    assert b'href="/api/v1/docs"' in response.content
