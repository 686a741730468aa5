"""The OpenAPI description: valid with no warnings, complete, and its UIs work offline."""

import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield f"{method.upper()} {path}", operation


def test_the_schema_validates_with_no_warnings(db, tmp_path):
    # Raises (SystemExit / a warning turned into an error) on any problem.
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3")


# Operations that cannot fail with an error response of their own.
NEVER_FAILS = {"GET /api/v1/style-stacks/schema", "GET /api/v1/"}


def test_every_operation_has_a_summary_a_tag_and_its_errors(schema):
    missing = []
    for name, operation in operations(schema):
        if not operation.get("summary"):
            missing.append(f"{name}: summary")
        if not operation.get("tags"):
            missing.append(f"{name}: tags")
        if name not in NEVER_FAILS and not any(code[0] in "45" for code in operation["responses"]):
            missing.append(f"{name}: an error response")
    assert missing == []


def test_writes_have_request_examples(schema):
    lacking = []
    for name, operation in operations(schema):
        if name.split()[0] not in ("POST", "PATCH", "PUT") or "requestBody" not in operation:
            continue
        contents = operation["requestBody"]["content"].values()
        if not any(content.get("examples") for content in contents) and "/versions/" not in name:
            lacking.append(name)
    # Actions whose body is trivial or absent may go without; the main writes may not.
    for expected in ("POST /api/v1/generations", "POST /api/v1/auth/register", "POST /api/v1/style-stacks"):
        assert expected not in lacking


def test_error_responses_use_the_error_shapes(schema):
    refs = {
        response["content"]["application/json"]["schema"].get("$ref", "")
        for _, operation in operations(schema)
        for code, response in operation["responses"].items()
        if code.startswith("4") and "content" in response
    }
    assert refs <= {"#/components/schemas/Error", "#/components/schemas/ValidationError"}


def test_the_schema_endpoint_serves_it(db, client):
    response = client.get("/api/v1/schema", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    assert response.json()["info"]["title"] == "Velro API"


@pytest.mark.parametrize("path", ["/api/v1/docs", "/api/v1/redoc"])
def test_the_docs_load_their_assets_from_this_server(db, client, path):
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert assets, html[:500]
    assert not re.search(r'(?:src|href)="https?://', html), "the docs must not load anything from the internet"
    for asset in assets:
        assert finders.find(asset.removeprefix("/static/")), asset
