"""Turning request input into typed values, or into the contract's 400 answers."""

import asyncio
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, TypeVar
from uuid import UUID

from aiohttp import web
from pydantic import BaseModel, ValidationError

from service.appkeys import SETTINGS
from service.errors import (
    BadRequest,
    BodyTimeout,
    InvalidId,
    InvalidTtl,
    MissingParameter,
    ServiceError,
    UnsupportedMediaType,
)
from service.kv import DEFAULT_CONTENT_TYPE, MAX_TTL_SECONDS
from service.models import SERVER_OWNED_FIELDS

M = TypeVar("M", bound=BaseModel)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DIGITS = re.compile(r"[0-9]+")
_TTL = re.compile(r"[0-9]{1,11}")
_CONTENT_TYPE = re.compile(r"[\x20-\x7e]{1,255}")


def parse_uuid(value: str, parameter: str = "id") -> UUID:
    """A path UUID in its canonical hyphenated form; anything else is 400."""
    if not _UUID.fullmatch(value):
        raise InvalidId(f"'{parameter}' must be a UUID.", parameter=parameter)
    return UUID(value)


def parse_positive_int(
    query: Any, parameter: str, default: int, *, cap: int | None = None, maximum: int = 2**31 - 1
) -> int:
    """A whole number of at least 1; above `cap` it means `cap`, above `maximum` it is a 400."""
    raw = query.get(parameter)
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or int(raw[:19]) < 1:
        raise BadRequest(
            f"'{parameter}' must be a whole number of at least 1.", parameter=parameter
        )
    if cap is not None and (len(raw) > 18 or int(raw) > cap):
        return cap
    if len(raw) > 18 or int(raw) > maximum:
        raise BadRequest(f"'{parameter}' must be at most {maximum}.", parameter=parameter)
    return int(raw)


@asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """Bounds the reading of a request body to `body_timeout` seconds: BodyTimeout (408)
    past it, so a client trickling its body cannot hold a connection and a buffer forever."""
    seconds = request.app[SETTINGS].body_timeout
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as err:
        raise BodyTimeout(f"The request body did not arrive within {seconds:g} seconds.") from err


async def read_json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object."""
    async with body_deadline(request):
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


def parse_ttl(query: Any) -> int | None:
    """`ttl_secs` as whole seconds in 1..9223372036, or None when absent."""
    if "ttl" in query:
        raise InvalidTtl("The 'ttl' parameter is not supported; use 'ttl_secs'.", parameter="ttl")
    values = query.getall("ttl_secs", [])
    if not values:
        return None
    if (
        len(values) > 1
        or not _TTL.fullmatch(values[0])
        or not 1 <= int(values[0]) <= MAX_TTL_SECONDS
    ):
        raise InvalidTtl(
            f"'ttl_secs' must be one whole number of seconds from 1 to {MAX_TTL_SECONDS}.",
            parameter="ttl_secs",
        )
    return int(values[0])


def parse_content_type(headers: Any) -> str:
    """The request's Content-Type as sent: printable ASCII, 1 to 255 bytes."""
    values = headers.getall("Content-Type", [])
    if not values:
        return DEFAULT_CONTENT_TYPE
    if len(values) > 1 or not _CONTENT_TYPE.fullmatch(values[0]):
        raise BadRequest(
            "Send one Content-Type of 1 to 255 printable ASCII characters.",
            parameter="Content-Type",
        )
    return values[0]


def refuse_content_encoding(headers: Any) -> None:
    """A value must be stored as the bytes sent, so an encoded body is refused, not decoded."""
    codings = {
        c.strip().lower() for v in headers.getall("Content-Encoding", []) for c in v.split(",")
    }
    if codings - {"identity", ""}:
        raise UnsupportedMediaType(
            "Content-Encoding is not supported: send the value as the bytes to store.",
            parameter="Content-Encoding",
        )


def parse_boolean(query: Any, parameter: str) -> bool:
    raw = query.get(parameter, "false")
    if raw not in ("true", "false"):
        raise BadRequest(f"'{parameter}' must be 'true' or 'false'.", parameter=parameter)
    return raw == "true"


def header_list(headers: Any, name: str) -> str | None:
    """All values of a list-valued header, joined as one; None when absent."""
    values = headers.getall(name, [])
    return ", ".join(values) if values else None
