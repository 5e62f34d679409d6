"""Every response the integration tests receive is checked against its surface's OpenAPI
document: openapi/quiva.yaml under /storage, openapi/quiva-secrets.yaml under /secrets,
openapi/openapi.yaml everywhere else."""

import json
import re
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote

import jsonschema
import yaml
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient
from openapi_core import OpenAPI
from openapi_core.testing import MockRequest, MockResponse

from service.settings import REPO_ROOT

SPEC_PATH = REPO_ROOT / "openapi" / "openapi.yaml"
QUIVA_SPEC_PATH = REPO_ROOT / "openapi" / "quiva.yaml"
QUIVA_SECRETS_SPEC_PATH = REPO_ROOT / "openapi" / "quiva-secrets.yaml"
# Path parameters that may span slashes, as the router's do: a key's and a secret's name.
_SPANNING = {"key", "name"}


class Contract:
    """One OpenAPI document, and what checking a response against it needs."""

    def __init__(self, path: Path, error_schema: str) -> None:
        self.path = path
        self._error_schema = error_schema

    @cached_property
    def spec(self) -> dict:
        return yaml.safe_load(self.path.read_text())

    @cached_property
    def openapi(self) -> OpenAPI:
        return OpenAPI.from_file_path(str(self.path))

    @cached_property
    def templates(self) -> list[tuple[re.Pattern, str]]:
        """Each path as a regex over raw paths; {key} and {name} may span slashes (and be
        empty), as the router's do. Literal paths come first: the router serves
        /storage/kv/openapi.yaml before it looks for a bucket."""
        found = []
        for template in sorted(self.spec["paths"], key=lambda t: t.count("{")):
            regex = re.sub(
                r"\{(\w+)\}",
                lambda m: f"(?P<{m[1]}>{'.*' if m[1] in _SPANNING else '[^/]+'})",
                template,
            )
            found.append((re.compile(f"^{regex}$", re.DOTALL), template))
        return found

    @cached_property
    def errors_schema(self) -> dict:
        schemas = self.spec["components"]["schemas"]
        return {**schemas[self._error_schema], "components": {"schemas": schemas}}


TELNYX = Contract(SPEC_PATH, "Errors")
QUIVA = Contract(QUIVA_SPEC_PATH, "ErrorResponse")
QUIVA_SECRETS = Contract(QUIVA_SECRETS_SPEC_PATH, "Error")


def _under(raw_path: str, prefix: str) -> bool:
    return raw_path == prefix or raw_path.startswith(prefix + "/")


def contract_for(raw_path: str) -> Contract:
    if _under(raw_path, "/storage"):
        return QUIVA
    if _under(raw_path, "/secrets"):
        return QUIVA_SECRETS
    return TELNYX


def spec_dict() -> dict:
    """The Telnyx surface's document."""
    return TELNYX.spec


def check_against_spec(method: str, resp: ClientResponse, body: bytes) -> None:
    """Raises if the response's status, headers or body are not what the spec documents."""
    raw_path = resp.request_info.url.raw_path
    contract = contract_for(raw_path)
    paths = contract.spec["paths"]
    # The first path that matches is the route (a literal path before a template), whether
    # or not it documents this method.
    match, template = next(
        ((m, t) for regex, t in contract.templates if (m := regex.match(raw_path))), (None, "")
    )
    if not match or method.lower() not in paths[template]:
        # No operation (an unknown route or method): the answer must still be a contract error.
        assert resp.status >= 400, f"{method} {raw_path} answered {resp.status}"
        if method != "HEAD":
            jsonschema.validate(json.loads(body), contract.errors_schema)
        return
    request = MockRequest(
        contract.spec["servers"][0]["url"],
        method,
        raw_path,
        path_pattern=template,
        args=dict(resp.request_info.url.query),
        view_args={k: unquote(v) for k, v in match.groupdict().items()},
        headers=dict(resp.request_info.headers),
    )
    content_type = resp.headers.get("Content-Type", "")
    documented = paths[template][method.lower()]["responses"].get(str(resp.status), {})
    if "*/*" in documented.get("content", {}):
        # Any bytes of any declared type are allowed, the empty value and types that are not
        # type/subtype included; openapi-core rejects both, so check status and headers only.
        body, content_type = b"-", "application/octet-stream"
    response = MockResponse(
        body, status_code=resp.status, headers=dict(resp.headers), content_type=content_type
    )
    contract.openapi.validate_response(request, response)


class SpecCheckedClient(TestClient):
    """A test client that checks each response against the OpenAPI document."""

    async def _request(self, method: str, path, **kwargs) -> ClientResponse:
        resp = await super()._request(method, path, **kwargs)
        check_against_spec(method.upper(), resp, await resp.read())
        return resp
