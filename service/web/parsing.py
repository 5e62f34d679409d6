"""Turning request input into typed values, or into request errors, for every API surface."""

import asyncio
import base64
import binascii
import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar
from uuid import UUID

from aiohttp import hdrs, web
from pydantic import BaseModel, ValidationError

from service.domain.keys import DEFAULT_CONTENT_TYPE, is_key
from service.web.appkeys import SETTINGS
from service.web.errors import (
    BadRequest,
    BodyTimeout,
    InvalidId,
    MissingField,
    RequestError,
    UnsupportedEncoding,
)

M = TypeVar("M", bound=BaseModel)

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_DIGITS = re.compile(r"[0-9]+")
ETAG = re.compile(r'"[0-9]{1,19}"')
_MAX_VERSION = 2**63 - 1
CONTENT_TYPE = re.compile(r"[\x20-\x7e]{1,255}")


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
    if not _DIGITS.fullmatch(raw) or not raw.strip("0"):
        raise BadRequest(
            f"'{parameter}' must be a whole number of at least 1.", parameter=parameter
        )
    raw = raw.lstrip("0")
    # Compare lengths first so a thousand-digit parameter is never converted.
    if cap is not None and (len(raw) > len(str(cap)) or int(raw) > cap):
        return cap
    if len(raw) > len(str(maximum)) or int(raw) > maximum:
        raise BadRequest(f"'{parameter}' must be at most {maximum}.", parameter=parameter)
    return int(raw)


@asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """Bounds the reading of a request body to `body_timeout` seconds: BodyTimeout (408)
    past it, so a client trickling its body cannot hold a connection and a buffer forever."""
    seconds = request.config_dict[SETTINGS].body_timeout
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
    except (ValueError, RecursionError) as err:
        # ValueError: malformed JSON, bytes that are not UTF-8, or an integer of more than
        # 4,300 digits (Python's limit); RecursionError: nesting deeper than the parser goes.
        raise BadRequest("The request body is not valid JSON.", pointer="") from err
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", pointer="")
    return body


def parse_model(
    model: type[M],
    body: dict[str, Any],
    *,
    server_owned: frozenset[str] = frozenset(),
    fixed: frozenset[str] = frozenset(),
) -> M:
    """`body` validated as `model`; the first problem becomes a request error that points at
    the field. A field in `server_owned` is one a client may read but never set; one in
    `fixed`, one it set at creation and may not change."""
    try:
        return model.model_validate(body)
    except ValidationError as err:
        raise _as_request_error(err.errors()[0], server_owned, fixed) from err


def _as_request_error(
    problem: dict, server_owned: frozenset[str], fixed: frozenset[str]
) -> RequestError:
    pointer = "/" + "/".join(str(part) for part in problem["loc"])
    field = str(problem["loc"][0]) if problem["loc"] else ""
    if problem["type"] == "missing":
        return MissingField(f"'{field}' is required.", pointer=pointer)
    if problem["type"] == "extra_forbidden":
        if field in server_owned:
            return BadRequest(
                f"'{field}' is set by the server and cannot be given.", pointer=pointer
            )
        if field in fixed:
            return BadRequest(f"'{field}' cannot be changed.", pointer=pointer)
        return BadRequest(f"'{field}' is not a known field.", pointer=pointer)
    return BadRequest(f"'{field}' is invalid: {problem['msg']}.", pointer=pointer)


def parse_content_type(headers: Any) -> str:
    """The request's Content-Type as sent: printable ASCII, 1 to 255 bytes."""
    values = headers.getall("Content-Type", [])
    if not values:
        return DEFAULT_CONTENT_TYPE
    if len(values) > 1 or not CONTENT_TYPE.fullmatch(values[0]):
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
        raise UnsupportedEncoding(
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


def etag(version: int) -> str:
    """The ETag of a stored version."""
    return f'"{version}"'


def parse_etags(header: str, *, weak: bool) -> list[int] | Literal["*"]:
    """The versions an If-Match (strong) or If-None-Match (weak) header names, or "*".

    Tags this service never issued cannot match anything and are dropped.
    """
    if header.strip() == "*":
        return "*"
    versions = []
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            if not weak:
                continue
            tag = tag[2:]
        if ETAG.fullmatch(tag) and int(tag[1:-1]) <= _MAX_VERSION:
            versions.append(int(tag[1:-1]))
    return versions


def write_conditions(headers: Any) -> tuple[list[int] | Literal["*"] | None, bool]:
    """A PUT's preconditions: (the versions If-Match names, "*", or None when absent; whether
    If-None-Match: * was sent). BadRequest for any other If-None-Match on a write."""
    if_match = header_list(headers, hdrs.IF_MATCH)
    if_none_match = header_list(headers, hdrs.IF_NONE_MATCH)
    if if_none_match is not None and if_none_match.strip() != "*":
        raise BadRequest("On PUT, If-None-Match supports only '*'.", parameter="If-None-Match")
    versions = None if if_match is None else parse_etags(if_match, weak=False)
    if versions is not None and if_none_match is not None:
        # RFC 9110: If-Match must hold (a live value exists) and If-None-Match: * must hold
        # (none exists): never both, so nothing may match.
        versions = []
    return versions, if_none_match is not None


def delete_condition(headers: Any) -> list[int] | Literal["*"] | None:
    """The versions a DELETE's If-Match names, "*", or None when it sent none."""
    if_match = header_list(headers, hdrs.IF_MATCH)
    return None if if_match is None else parse_etags(if_match, weak=False)


def encode_cursor(last_key: str, reverse: bool) -> str:
    """An opaque cursor to the page after `last_key`, for a listing in that direction."""
    return base64.urlsafe_b64encode(f"{'r' if reverse else 'f'}:{last_key}".encode()).decode()


def decode_cursor(cursor: str, reverse: bool) -> str:
    """The last key of the previous page; BadRequest for anything this service did not issue
    for a listing in that direction."""
    try:
        direction, sep, key = (
            base64.urlsafe_b64decode(cursor.encode("ascii")).decode().partition(":")
        )
    except (binascii.Error, UnicodeError, ValueError) as err:
        raise BadRequest("The cursor is not valid.", parameter="cursor") from err
    if sep != ":" or direction != ("r" if reverse else "f") or not is_key(key):
        raise BadRequest("The cursor is not valid for this listing.", parameter="cursor")
    return key
