"""Every response the integration tests receive is checked against openapi/openapi.yaml."""

import json
import re
from functools import cache
from urllib.parse import unquote

import jsonschema
import yaml
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from service.settings import REPO_ROOT

SPEC_PATH = REPO_ROOT / "openapi" / "openapi.yaml"


@cache
def spec_dict() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


@cache
def _openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


@cache
def _templates() -> list[tuple[re.Pattern, str]]:
    """Each spec path as a regex over raw paths; {key} may span slashes, as the router's does."""
    found = []
    for template in spec_dict()["paths"]:
        regex = re.sub(
            r"\{(\w+)\}", lambda m: f"(?P<{m[1]}>{'.*' if m[1] == 'key' else '[^/]+'})", template
        )
        found.append((re.compile(f"^{regex}$", re.DOTALL), template))
    return found


def _errors_schema() -> dict:
    schemas = spec_dict()["components"]["schemas"]
    return {**schemas["Errors"], "components": {"schemas": schemas}}


def check_against_spec(method: str, resp: ClientResponse, body: bytes) -> None:
    """Raises if the response's status, headers or body are not what the spec documents."""
    raw_path = resp.request_info.url.raw_path
    for regex, template in _templates():
        match = regex.match(raw_path)
        if match and method.lower() in spec_dict()["paths"][template]:
            break
    else:
        # No operation (an unknown route or method): the answer must still be a contract error.
        assert resp.status >= 400, f"{method} {raw_path} answered {resp.status}"
        if method != "HEAD":
            jsonschema.validate(json.loads(body), _errors_schema())
        return
    request = MockRequest(
        spec_dict()["servers"][0]["url"],
        method,
        raw_path,
        path_pattern=template,
        args=dict(resp.request_info.url.query),
        view_args={k: unquote(v) for k, v in match.groupdict().items()},
        headers=dict(resp.request_info.headers),
    )
    content_type = resp.headers.get("Content-Type", "")
    responses = spec_dict()["paths"][template][method.lower()]["responses"]
    documented = responses.get(str(resp.status), {})
    if "*/*" in documented.get("content", {}):
        # Any bytes of any declared type are allowed, the empty value and types that are not
        # type/subtype included; openapi-core rejects both, so check status and headers only.
        body, content_type = b"-", "application/octet-stream"
    response = MockResponse(
        body, status_code=resp.status, headers=dict(resp.headers), content_type=content_type
    )
    _openapi().validate_response(request, response)


class SpecCheckedClient(TestClient):
    """A test client that checks each response against the OpenAPI document."""

    async def _request(self, method: str, path, **kwargs) -> ClientResponse:
        resp = await super()._request(method, path, **kwargs)
        check_against_spec(method.upper(), resp, await resp.read())
        return resp
