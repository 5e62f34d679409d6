"""openapi/quiva-secrets.yaml: valid, derived from quiva.ai's published secrets spec (its
paths, operation ids, parameters, schemas and examples), the same as the code's statuses and
limits, and what the spec check holds /secrets to."""

import json
import re

import pytest
from openapi_spec_validator import validate

from service.api.quiva import errors
from service.api.quiva import secrets as quiva_secrets
from service.domain import secrets
from service.settings import REPO_ROOT
from tests.api.quiva.test_contract import operations, parameter_names
from tests.api.telnyx.test_openapi import fake_response, table_rows
from tests.support.spec_check import (
    QUIVA,
    QUIVA_SECRETS,
    QUIVA_SECRETS_SPEC_PATH,
    TELNYX,
    check_against_spec,
    contract_for,
)

# quiva.ai's published secrets spec, as the contract this document derives from.
QUIVA_PUBLISHED = REPO_ROOT / "openapi" / "upstream" / "quiva-secrets.json"
PUBLISHED = json.loads(QUIVA_PUBLISHED.read_text())
OURS = QUIVA_SECRETS.spec
# What a real credential in an example looks like: a provider's key prefix, or a long run of
# token characters. Examples show "example-value" instead (no real-looking secret values).
CREDENTIAL = re.compile(r"\b(sk|pk|rk)_(live|test)_|[A-Za-z0-9+/_=-]{24,}")


def resolved(spec: dict, node: dict) -> dict:
    """`node` with local $refs followed (to any depth at the top)."""
    while "$ref" in node:
        target = spec
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def parameters(spec: dict, path: str, method: str) -> dict[str, dict]:
    item = spec["paths"][path]
    found = {}
    for param in item.get("parameters", []) + item[method].get("parameters", []):
        param = resolved(spec, param)
        found[param["name"]] = param
    return found


def test_the_document_is_valid_openapi_3_1():
    validate(OURS)
    assert OURS["openapi"].startswith("3.1")


def test_the_upstream_copy_is_quivas_secrets_spec():
    assert PUBLISHED["info"]["title"] == "quiva.ai Gateway"
    assert set(PUBLISHED["paths"]) == {"/secrets", "/secrets/{key}"}


def test_every_operation_of_quivas_spec_is_here_with_its_id_and_parameters_and_no_other():
    published, ours = operations(PUBLISHED), operations(OURS)
    assert set(ours) == set(published)
    for (method, path), op in published.items():
        mine = ours[method, path]
        assert mine["operationId"] == op["operationId"]
        assert mine["tags"] == op["tags"]
        for marker in ("x-resource-type", "x-resource"):
            assert mine[marker] == op[marker], (method, path, marker)
        assert parameter_names(PUBLISHED, path, method) == parameter_names(OURS, path, method)
        theirs, mine_params = parameters(PUBLISHED, path, method), parameters(OURS, path, method)
        for name, param in theirs.items():
            assert mine_params[name]["in"] == param["in"]
            assert mine_params[name].get("required", False) == param.get("required", False)
            for keyword, value in param["schema"].items():
                # Ours may narrow (a pattern, a maximum) but keeps quiva.ai's type and default.
                assert mine_params[name]["schema"][keyword] == value, (path, name, keyword)
        if "requestBody" in op:
            body, mine_body = op["requestBody"], mine["requestBody"]
            assert mine_body["required"] == body["required"]
            assert set(mine_body["content"]) == set(body["content"])


def same_shape(spec: dict, schema: dict, theirs_spec: dict, theirs: dict) -> None:
    """Ours has quiva.ai's type, properties with their types, and required fields; it may
    add constraints and descriptions."""
    schema, theirs = resolved(spec, schema), resolved(theirs_spec, theirs)
    if "allOf" in schema:
        schema = resolved(spec, schema["allOf"][0])
    assert schema["type"] == theirs["type"]
    if theirs["type"] == "array":
        same_shape(spec, schema["items"], theirs_spec, theirs["items"])
        return
    assert set(schema.get("properties", {})) == set(theirs.get("properties", {}))
    assert set(schema.get("required", [])) >= set(theirs.get("required", []))
    for name, prop in theirs.get("properties", {}).items():
        assert resolved(spec, schema["properties"][name])["type"] == prop["type"], name


def test_quivas_schemas_are_here_in_their_shapes():
    for name, schema in PUBLISHED["components"]["schemas"].items():
        ours = OURS["components"]["schemas"][name]
        same_shape(OURS, ours, PUBLISHED, schema)
        assert set(ours.get("required", [])) == set(schema.get("required", [])), name
    assert OURS["components"]["securitySchemes"].keys() == {"bearerAuth", "apiKeyAuth"}
    assert OURS["components"]["securitySchemes"]["apiKeyAuth"]["name"] == "X-Api-Key"
    assert OURS["security"] == PUBLISHED["security"]


def media(spec: dict, response: dict) -> dict:
    return resolved(spec, response)["content"]["application/json"]


def test_every_response_of_quivas_spec_is_here_in_its_shape():
    published, ours = operations(PUBLISHED), operations(OURS)
    for key, op in published.items():
        for status, response in op["responses"].items():
            assert status in ours[key]["responses"], (key, status)
            mine = media(OURS, ours[key]["responses"][status])
            same_shape(OURS, mine["schema"], PUBLISHED, media(PUBLISHED, response)["schema"])


def examples_of(spec: dict, content: dict) -> list:
    if "example" in content:
        return [content["example"]]
    return [resolved(spec, e)["value"] for e in content.get("examples", {}).values()]


def test_quivas_examples_are_kept_but_none_looks_like_a_credential():
    published, ours = operations(PUBLISHED), operations(OURS)
    for key, op in published.items():
        pairs = [(op["requestBody"], ours[key]["requestBody"])] if "requestBody" in op else []
        pairs += [(r, ours[key]["responses"][s]) for s, r in op["responses"].items()]
        for theirs, mine in pairs:
            theirs_examples = examples_of(PUBLISHED, media(PUBLISHED, theirs))
            mine_examples = examples_of(OURS, media(OURS, mine))
            for example in theirs_examples:
                if CREDENTIAL.search(json.dumps(example)):
                    # The same example, with the value replaced.
                    assert any(
                        type(m) is type(example) and m.keys() == example.keys()
                        for m in mine_examples
                    ), (key, example)
                    continue
                assert example in mine_examples, (key, example)
    assert any(CREDENTIAL.search(s) for s in example_strings(PUBLISHED))  # quiva.ai's own
    ours = example_strings(OURS)
    assert [s for s in ours if CREDENTIAL.search(s)] == []
    assert "example-value" in ours


def example_strings(node, within: bool = False) -> list[str]:
    """Every string in the document's examples (`example` and `examples`, at any depth)."""
    if isinstance(node, dict):
        return [
            s
            for key, value in node.items()
            for s in example_strings(value, within or key in ("example", "examples"))
        ]
    if isinstance(node, list):
        return [s for item in node for s in example_strings(item, within)]
    return [node] if within and isinstance(node, str) else []


def documented_statuses() -> set[int]:
    return {
        int(status)
        for op in operations(OURS).values()
        for status in op["responses"]
        if not status.startswith("2")
    }


def test_the_error_table_is_the_same_in_the_document_and_the_code():
    rows = table_rows(OURS["info"]["description"], "## Errors")[2:]
    table = [int(row.strip("|").split("|")[0]) for row in rows]
    statuses = sorted({w.status for w in vars(errors).values() if isinstance(w, errors.ErrorWord)})
    assert table == statuses
    # 405 is the answer to a method no path documents: in the table, in no operation.
    assert documented_statuses() == set(statuses) - {405}
    not_allowed = OURS["components"]["responses"]["MethodNotAllowed"]
    assert set(not_allowed["headers"]) == {"X-Request-Id", "Allow"}


@pytest.mark.parametrize(("method", "path"), sorted(operations(OURS)))
def test_every_operation_documents_the_failures_any_request_may_meet(method, path):
    responses = operations(OURS)[method, path]["responses"]
    expected = {"200", "400", "401", "429", "500", "503", "504"}
    if method in ("put", "delete"):
        expected.add("507")
    if method == "put":
        expected.add("408")  # the only operation that reads a body
    if path == "/secrets/{key}":
        expected.add("404")
    assert set(responses) == expected
    for status, response in responses.items():
        response = resolved(OURS, response)
        headers = set(response["headers"])
        assert "X-Request-Id" in headers, status
        assert ("Retry-After" in headers) == (status in ("429", "503")), status
        assert ("WWW-Authenticate" in headers) == (status == "401"), status


def test_the_documents_limits_are_the_codes():
    create = OURS["components"]["schemas"]["SecretCreate"]["properties"]
    assert create["value"]["maxLength"] == secrets.MAX_VALUE_BYTES
    assert create["key"]["maxLength"] == 256
    limit = parameters(OURS, "/secrets", "get")["limit"]["schema"]
    assert limit["default"] == quiva_secrets.DEFAULT_LIMIT
    assert "8 MiB" in parameters(OURS, "/secrets", "get")["reveal"]["description"]
    assert secrets.REVEAL_BYTES == 8 * 1024 * 1024
    # A secret's name is a secret's name on both surfaces.
    key = resolved(OURS, OURS["paths"]["/secrets/{key}"]["get"]["parameters"][0])["schema"]
    v2_name = TELNYX.spec["components"]["parameters"]["SecretName"]["schema"]
    assert key == v2_name
    assert create["key"]["pattern"] == key["pattern"]
    write = TELNYX.spec["components"]["schemas"]["SecretWrite"]["properties"]["value"]
    assert write["maxLength"] == secrets.MAX_VALUE_BYTES


def test_the_spec_check_holds_secrets_paths_to_this_document():
    assert contract_for("/secrets") is QUIVA_SECRETS
    assert contract_for("/secrets/a/b") is QUIVA_SECRETS
    assert contract_for("/secretsx") is TELNYX
    assert contract_for("/v2/secrets/a") is TELNYX
    assert contract_for("/storage/kv") is QUIVA


GOOD = {"X-Request-Id": "abc", "Content-Type": "application/json"}
SECRET = {"key": "a/b", "value": "example-value"}


@pytest.mark.parametrize(
    ("status", "headers", "body"),
    [
        (418, GOOD, SECRET),  # undocumented status
        (200, {"Content-Type": "application/json"}, SECRET),  # no X-Request-Id
        (200, GOOD, {"key": "a/b"}),  # no value
        (200, GOOD, {**SECRET, "version": 1}),  # a field the document does not have
        (404, GOOD, {"error": "The secret does not exist."}),  # not quiva.ai's sentence
        (404, GOOD, {"error": "not_found", "message": "m"}),  # the KV surface's shape
        (404, GOOD, {"errors": [{"code": "10005"}]}),  # the Telnyx error shape
        (503, GOOD, {"error": "unavailable"}),  # no Retry-After
    ],
)
def test_the_spec_check_rejects_what_the_document_does_not_have(status, headers, body):
    path = "/secrets/a/b"
    resp, raw = fake_response("GET", path, status, headers, body)
    with pytest.raises(Exception):  # noqa: B017 - openapi-core raises several kinds
        check_against_spec("GET", resp, raw)
    for status, body in ((200, SECRET), (404, {"error": "resource not found"})):
        ok, raw = fake_response("GET", path, status, GOOD, body)
        check_against_spec("GET", ok, raw)


def test_an_undocumented_method_is_held_to_the_error_shape():
    resp, raw = fake_response("POST", "/secrets/a", 405, GOOD, {"error": "m", "message": "m"})
    with pytest.raises(Exception):  # noqa: B017 - jsonschema's ValidationError
        check_against_spec("POST", resp, raw)
    ok, raw = fake_response("POST", "/secrets/a", 405, GOOD, {"error": "m"})
    check_against_spec("POST", ok, raw)


def test_no_operation_answers_in_another_surfaces_shape():
    text = QUIVA_SECRETS_SPEC_PATH.read_text()
    assert "#/components/schemas/Errors" not in text and not re.search(r"\b10\d{3}\b", text)
    assert "ErrorResponse" not in text
    assert (
        QUIVA.spec["components"]["schemas"]["ErrorResponse"]
        != OURS["components"]["schemas"]["Error"]
    )
