"""The OpenAPI document: valid, complete, served, and the same as the router and the README."""

import json
import re
from types import SimpleNamespace

import pytest
import yaml
from multidict import CIMultiDict
from openapi_spec_validator import validate
from yarl import URL

from service.api.telnyx.codes import ERROR_CODES
from service.settings import REPO_ROOT
from service.web.app import create_app
from tests.support.spec_check import (
    QUIVA,
    QUIVA_SECRETS,
    SPEC_PATH,
    TELNYX,
    check_against_spec,
    spec_dict,
)

METHODS = {"get", "put", "post", "delete", "head", "patch", "options"}


def test_the_document_is_valid_openapi_3_1():
    validate(spec_dict())
    assert spec_dict()["openapi"].startswith("3.1")


def test_the_router_serves_exactly_the_operations_the_three_documents_name(settings):
    """This document's, and openapi/quiva.yaml's and openapi/quiva-secrets.yaml's for the
    quiva.ai surfaces."""
    app = create_app(settings)
    served = set()
    for route in app.router.routes():
        if route.method == "*":
            continue  # a 405 for every method a path does not document
        template = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.resource.canonical)
        served.add((route.method.lower(), template))
    documented = {
        (method, path)
        for contract in (TELNYX, QUIVA, QUIVA_SECRETS)
        for path, item in contract.spec["paths"].items()
        for method in item
        if method in METHODS
    }
    assert served == documented


def table_rows(text: str, heading: str) -> list[str]:
    """The rows of the first Markdown table after `heading`."""
    lines = [line.strip() for line in text.split(heading, 1)[1].splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    return lines[start:end]


def test_the_error_code_table_is_the_same_in_the_spec_the_readme_and_the_code():
    in_spec = table_rows(spec_dict()["info"]["description"], "## Error codes")
    in_readme = table_rows((REPO_ROOT / "README.md").read_text(), "## Errors")
    assert in_spec == in_readme
    assert in_spec[2:] == [f"| {e.code} | {e.status} | {e.title} |" for e in ERROR_CODES]
    enum = spec_dict()["components"]["schemas"]["Error"]["properties"]["code"]["enum"]
    assert sorted(enum) == sorted({e.code for e in ERROR_CODES})


async def test_the_document_is_served_as_yaml_json_and_a_self_contained_page(client):
    as_yaml = await client.get("/v2/openapi.yaml")
    assert as_yaml.status == 200
    assert await as_yaml.text() == SPEC_PATH.read_text()
    as_json = await client.get("/v2/openapi.json")
    assert json.loads(await as_json.text()) == yaml.safe_load(SPEC_PATH.read_text())
    page = await client.get("/docs")
    assert page.content_type == "text/html"
    text = await page.text()
    for item in spec_dict()["paths"].values():
        for method, op in item.items():
            if method in METHODS:
                assert f'id="{op["operationId"]}"' in text
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)  # nothing fetched


def fake_response(method: str, path: str, status: int, headers: dict, body: dict | None):
    url = URL(f"http://127.0.0.1:8080{path}")
    return (
        SimpleNamespace(
            request_info=SimpleNamespace(url=url, headers=CIMultiDict()),
            status=status,
            headers=CIMultiDict(headers),
        ),
        json.dumps(body).encode() if body is not None else b"",
    )


NAMESPACE = {
    "record_type": "storage_kv",
    "id": "0266f043-240c-4660-9165-228896e993a4",
    "name": "n",
    "status": "pending",
    "status_reason": None,
    "ttl_support": True,
    "description": None,
    "max_bytes": None,
    "max_value_size": None,
    "usage": {"keys": 0, "bytes": 0},
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
}
GOOD = {"X-Request-Id": "abc", "Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (418, GOOD, {"data": NAMESPACE}),  # undocumented status
        (200, {"Content-Type": "application/json"}, {"data": NAMESPACE}),  # no X-Request-Id
        (200, GOOD, {"data": {**NAMESPACE, "status": "ready"}}),  # not a documented status value
        (200, GOOD, {"data": {**NAMESPACE, "extra": 1}}),  # a field the spec does not have
    ],
)
def test_the_spec_check_rejects_what_the_spec_does_not_document(status, headers, body):
    resp, raw = fake_response("GET", f"/v2/storage/kvs/{NAMESPACE['id']}", status, headers, body)
    with pytest.raises(Exception):  # noqa: B017 - openapi-core raises several kinds
        check_against_spec("GET", resp, raw)
    ok, raw = fake_response(
        "GET", f"/v2/storage/kvs/{NAMESPACE['id']}", 200, GOOD, {"data": NAMESPACE}
    )
    check_against_spec("GET", ok, raw)
