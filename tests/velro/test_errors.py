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
