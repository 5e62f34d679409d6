"""Routes for many keys at once (extensions): `POST /storage/kvs/{id}/batch-read` and
`POST /storage/kvs/{id}/transaction`. Values travel in JSON as `content_type`, `encoding` and
`data` (service/domain/values.py). Neither path can be a key's: keys live under `/keys/`."""

import json
from typing import Any

import orjson
from aiohttp import web

from service.api.telnyx.codes import InvalidTtl
from service.domain import keys as kv
from service.domain import transactions as tx
from service.domain.errors import BatchRefused, InvalidKey, ValueTooLarge
from service.domain.values import NotStorable, carried, refuse_json_constant, stored
from service.web.appkeys import DATABASE, SETTINGS
from service.web.auth import tenant_of
from service.web.bodies import received_value
from service.web.errors import BadRequest, BodyTooLarge, MissingField
from service.web.parsing import CONTENT_TYPE, ETAG, etag, parse_uuid

routes = web.RouteTableDef()

NAMESPACE_PATH = "/storage/kvs/{id:[^/]+}"
# What one batch-read answer may hold in values; more is 413 (a client reads fewer keys).
BATCH_READ_BYTES = 16 * 1024 * 1024
# A transaction's body: its values (at most tx.MAX_VALUE_BYTES) as base64 or escaped JSON
# text, with room for keys and fields.
TRANSACTION_BODY_BYTES = 2 * tx.MAX_VALUE_BYTES + 1024 * 1024
BATCH_BODY_BYTES = 1024 * 1024


async def _read_object(request: web.Request, limit: int) -> dict[str, Any]:
    """The body as a JSON object, at most `limit` bytes (BodyTooLarge past it). Parsed by the
    standard library so that integers keep every digit; NaN and Infinity are refused."""
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"The request body is at most {limit} bytes.")
    try:
        async with received_value(request, limit) as raw:
            text = bytes(raw).decode("utf-8")
    except ValueTooLarge as err:
        raise BodyTooLarge(f"The request body is at most {limit} bytes.") from err
    except UnicodeDecodeError as err:
        raise BadRequest("The request body is not UTF-8 JSON.", pointer="") from err
    try:
        body = json.loads(text, parse_constant=refuse_json_constant)
    except (ValueError, RecursionError) as err:
        raise BadRequest("The request body is not valid JSON.", pointer="") from err
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.", pointer="")
    return body


_KINDS = {str: "a string", list: "an array", bool: "true or false"}


def _field(item: dict, name: str, kind: type, pointer: str, default: Any = ...) -> Any:
    """Field `name` of a request object, of type `kind`; `default` when absent (required
    when there is none)."""
    if name not in item:
        if default is ...:
            raise MissingField(f"'{name}' is required.", pointer=f"{pointer}/{name}")
        return default
    value = item[name]
    if not isinstance(value, kind):
        raise BadRequest(f"'{name}' must be {_KINDS[kind]}.", pointer=f"{pointer}/{name}")
    return value


def _only(item: dict, known: tuple[str, ...], pointer: str) -> None:
    for name in item:
        if name not in known:
            raise BadRequest(f"'{name}' is not a known field.", pointer=f"{pointer}/{name}")


def _items(body: dict, name: str, limit: int) -> list[tuple[str, dict]]:
    """The objects of the body's array `name` (none when absent), each with its pointer."""
    items = _field(body, name, list, "", default=[])
    if len(items) > limit:
        raise BatchRefused(f"A transaction has at most {limit} {name}.", field=f"/{name}")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"Each of '{name}' must be an object.", pointer=f"/{name}/{i}")
    return [(f"/{name}/{i}", item) for i, item in enumerate(items)]


def _key(key: object, pointer: str) -> str:
    if not isinstance(key, str):
        raise BadRequest("A key must be a string.", pointer=pointer)
    try:
        return kv.validate_key(key)
    except InvalidKey as err:
        raise BadRequest(err.message, pointer=pointer) from err


def _check(item: dict, pointer: str) -> tx.Check:
    _only(item, ("key", "etag"), pointer)
    key = _key(_field(item, "key", str, pointer), f"{pointer}/key")
    if "etag" not in item:
        raise MissingField(
            "'etag' is required (null: the key must be absent).", pointer=f"{pointer}/etag"
        )
    tag = item["etag"]
    if tag is not None and not (isinstance(tag, str) and ETAG.fullmatch(tag)):
        raise BadRequest(
            "'etag' must be an ETag the server gave, such as \"17\", or null.",
            pointer=f"{pointer}/etag",
        )
    version = None if tag is None else int(tag[1:-1])
    if version is not None and version > tx.MAX_VERSION:
        version = tx.NO_VERSION  # an ETag no write ever gave: the check fails (412)
    return tx.Check(key, version)


def _operation(item: dict, pointer: str) -> tx.Operation:
    op = _field(item, "op", str, pointer)
    if op == "delete":
        _only(item, ("op", "key"), pointer)
        return tx.Delete(_key(_field(item, "key", str, pointer), f"{pointer}/key"))
    if op != "set":
        raise BadRequest("'op' must be 'set' or 'delete'.", pointer=f"{pointer}/op")
    _only(item, ("op", "key", "data", "encoding", "content_type", "ttl_secs"), pointer)
    key = _key(_field(item, "key", str, pointer), f"{pointer}/key")
    if "data" not in item:
        raise MissingField("'data' is required.", pointer=f"{pointer}/data")
    encoding = _field(item, "encoding", str, pointer, default="json")
    content_type = item.get("content_type")
    if "content_type" in item and not (
        isinstance(content_type, str) and CONTENT_TYPE.fullmatch(content_type)
    ):
        raise BadRequest(
            "'content_type' must be 1 to 255 printable ASCII characters.",
            pointer=f"{pointer}/content_type",
        )
    ttl = item.get("ttl_secs")
    if "ttl_secs" in item and (
        type(ttl) is not int or not 1 <= ttl <= kv.MAX_TTL_SECONDS  # bool is not a TTL
    ):
        raise InvalidTtl(
            f"'ttl_secs' must be a whole number of seconds from 1 to {kv.MAX_TTL_SECONDS}.",
            pointer=f"{pointer}/ttl_secs",
        )
    try:
        value, content_type = stored(encoding, item["data"], content_type)
    except NotStorable as err:
        raise BadRequest(str(err), pointer=f"{pointer}/{err.field}") from err
    return tx.Set(key, value, content_type, ttl)


def _json(document: dict) -> web.Response:
    return web.Response(
        body=orjson.dumps(document, option=orjson.OPT_UTC_Z), content_type="application/json"
    )


def carried_entry(key: str, version: int, info: Any, value: bytes | None) -> dict:
    """A key as batch reads and listings with values show it: its metadata, and its value as
    `encoding` and `data` when there is one."""
    entry = {
        "key": key,
        "etag": etag(version),
        "content_type": info.content_type,
        "size_bytes": info.size_bytes,
        "updated_at": info.updated_at,
        "expires_at": info.expires_at,
    }
    if value is not None:
        entry["encoding"], entry["data"] = carried(value, info.content_type)
    return entry


@routes.post(NAMESPACE_PATH + "/batch-read")
async def batch_read(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    body = await _read_object(request, BATCH_BODY_BYTES)
    _only(body, ("keys", "metadata_only"), "")
    keys = _field(body, "keys", list, "")
    if not 1 <= len(keys) <= kv.MAX_BATCH_KEYS:
        raise BatchRefused(f"'keys' holds 1 to {kv.MAX_BATCH_KEYS} keys.", field="/keys")
    keys = [_key(key, f"/keys/{i}") for i, key in enumerate(keys)]
    metadata_only = _field(body, "metadata_only", bool, "", default=False)
    found = await kv.get_values(
        request.config_dict[DATABASE],
        tenant_of(request),
        namespace_id,
        keys,
        with_values=not metadata_only,
        byte_budget=BATCH_READ_BYTES,
    )
    data = [None if e is None else carried_entry(e.key, e.version, e, e.value) for e in found]
    return _json({"data": data})


@routes.post(NAMESPACE_PATH + "/transaction")
async def transaction(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    body = await _read_object(request, TRANSACTION_BODY_BYTES)
    _only(body, ("checks", "operations"), "")
    checks = [_check(item, at) for at, item in _items(body, "checks", tx.MAX_CHECKS)]
    operations = [
        _operation(item, at) for at, item in _items(body, "operations", tx.MAX_OPERATIONS)
    ]
    outcomes = await tx.transact(
        request.config_dict[DATABASE],
        tenant_of(request),
        namespace_id,
        checks,
        operations,
        value_ceiling=request.config_dict[SETTINGS].max_value_size_ceiling,
    )
    results = []
    for op, outcome in zip(operations, outcomes, strict=True):
        if isinstance(op, tx.Delete):
            results.append({"op": "delete", "key": op.key, "deleted": outcome.deleted})
        else:
            results.append(
                {
                    "op": "set",
                    "key": op.key,
                    "etag": etag(outcome.version),
                    "created": outcome.created,
                    "expires_at": outcome.expires_at,
                }
            )
    return _json({"data": {"operations": results}})
