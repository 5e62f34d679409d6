"""openapi/quiva.yaml: valid, derived from quiva.ai's published spec, served, and the same as
the code's error words."""

import json
import re

import pytest
import yaml
from openapi_spec_validator import validate

from service.api.quiva import errors
from service.settings import REPO_ROOT
from tests.api.telnyx.test_openapi import fake_response, table_rows
from tests.support.spec_check import QUIVA, QUIVA_SPEC_PATH, check_against_spec

# quiva.ai's published gateway spec (its KV part), as the contract this document derives from.
QUIVA_PUBLISHED = REPO_ROOT / "openapi" / "upstream" / "quiva-storage-kv.json"
METHODS = {"get", "put", "post", "delete", "patch"}


def test_the_document_is_valid_openapi():
    validate(QUIVA.spec)


def operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {
        (method, path): op
        for path, item in spec["paths"].items()
        for method, op in item.items()
        if method in METHODS
    }


def parameter_names(spec: dict, path: str, method: str) -> set[str]:
    """The names of an operation's parameters and its path's, references followed."""
    item = spec["paths"][path]
    names = set()
    for param in item.get("parameters", []) + item[method].get("parameters", []):
        if "$ref" in param:
            param = spec["components"]["parameters"][param["$ref"].rsplit("/", 1)[1]]
        names.add(param["name"])
    return names


def test_every_kv_operation_of_quivas_spec_is_here_with_its_id_and_parameters():
    spec = json.loads(QUIVA_PUBLISHED.read_text())
    published, ours = operations(spec), operations(QUIVA.spec)
    for (method, path), op in published.items():
        assert (method, path) in ours, (method, path)
        assert ours[method, path]["operationId"] == op["operationId"]
        theirs = parameter_names(spec, path, method)
        assert theirs == parameter_names(QUIVA.spec, path, method), (method, path)
    extensions = set(ours) - set(published)
    assert {path for _, path in extensions} == {
        "/storage/kv/openapi.yaml",
        "/storage/kv/openapi.json",
    }


def test_the_error_table_is_the_same_in_the_document_and_the_code():
    rows = table_rows(QUIVA.spec["info"]["description"], "## Errors")[2:]
    table = [tuple(cell.strip() for cell in row.strip("|").split("|"))[:2] for row in rows]
    words = sorted(
        {(w.status, w.word) for w in vars(errors).values() if isinstance(w, errors.ErrorWord)}
    )
    assert [(int(status), word) for status, word in table] == words
    enum = QUIVA.spec["components"]["schemas"]["ErrorResponse"]["properties"]["error"]["enum"]
    assert sorted(enum) == sorted(word for _, word in words)


async def test_the_document_is_served_as_yaml_and_json_without_a_key(client):
    as_yaml = await client.get("/storage/kv/openapi.yaml")
    assert as_yaml.status == 200
    assert await as_yaml.text() == QUIVA_SPEC_PATH.read_text()
    as_json = await client.get("/storage/kv/openapi.json")
    assert json.loads(await as_json.text()) == yaml.safe_load(QUIVA_SPEC_PATH.read_text())


GOOD = {"X-Request-Id": "abc", "Content-Type": "application/json"}
ENTRY = {"body": {"key": "k", "value": {"a": 1}}, "metadata": {"bucket": "b", "key": "k"}}


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (418, ENTRY),  # undocumented status
        (200, {"body": {"key": "k", "value": [1]}, "metadata": {}}),  # a value that is no object
        (404, {"errors": [{"code": "10005"}]}),  # the Telnyx error shape
        (404, {"error": "missing", "message": "m"}),  # not one of the error words
    ],
)
def test_the_spec_check_rejects_what_quivas_document_does_not_have(status, body):
    path = "/storage/kv/b/entries/k"
    resp, raw = fake_response("GET", path, status, GOOD, body)
    with pytest.raises(Exception):  # noqa: B017 - openapi-core raises several kinds
        check_against_spec("GET", resp, raw)
    ok, raw = fake_response("GET", path, 200, GOOD, ENTRY)
    check_against_spec("GET", ok, raw)


def test_no_operation_answers_in_the_telnyx_shape():
    text = QUIVA_SPEC_PATH.read_text()
    assert "#/components/schemas/Errors" not in text and not re.search(r"\b10\d{3}\b", text)
