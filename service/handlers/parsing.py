"""Turning request input into typed values, or into the contract's 400 answers."""

import json
import re
from typing import Any, TypeVar
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ValidationError

from service.errors import BadRequest, InvalidId, MissingParameter, ServiceError
from service.models import SERVER_OWNED_FIELDS

M = TypeVar("M", bound=BaseModel)

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_POSITIVE_INT = re.compile(r"^[0-9]{1,18}$")


def parse_uuid(value: str, parameter: str = "id") -> UUID:
    """A path UUID in its canonical hyphenated form; anything else is 400."""
    if not _UUID.match(value):
        raise InvalidId(f"'{parameter}' must be a UUID.", parameter=parameter)
    return UUID(value)


def parse_positive_int(query: Any, parameter: str, default: int) -> int:
    """A query parameter that must be a whole number of at least 1."""
    raw = query.get(parameter)
    if raw is None:
        return default
    if not _POSITIVE_INT.match(raw) or int(raw) < 1:
        raise BadRequest(
            f"'{parameter}' must be a whole number of at least 1.", parameter=parameter
        )
    return int(raw)


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object."""
    raw = await request.read()
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise BadRequest("The request body is not valid JSON.", pointer="") from err
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", pointer="")
    return body


def parse_model(model: type[M], body: dict[str, Any]) -> M:
    """`body` validated as `model`; the first problem becomes a 400 that points at the field."""
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise _as_service_error(err.errors()[0]) from err


def _as_service_error(problem: dict) -> ServiceError:
    pointer = "/" + "/".join(str(part) for part in problem["loc"])
    field = str(problem["loc"][0]) if problem["loc"] else ""
    if problem["type"] == "missing":
        return MissingParameter(f"'{field}' is required.", pointer=pointer)
    if problem["type"] == "extra_forbidden":
        if field in SERVER_OWNED_FIELDS:
            return BadRequest(
                f"'{field}' is set by the server and cannot be given.", pointer=pointer
            )
        return BadRequest(f"'{field}' is not a known field.", pointer=pointer)
    return BadRequest(f"'{field}' is invalid: {problem['msg']}.", pointer=pointer)
