"""Routes under /v2/secrets (extension): a tenant's secrets with versions and check-and-set,
in this surface's style (`data` envelopes, cursor pages, ETags)."""

import orjson
from aiohttp import hdrs, web

from service.domain import secrets
from service.domain.keys import validate_key_fragment
from service.domain.secrets import SecretInfo
from service.web.appkeys import DATABASE, REQUEST_ID, SECRETS
from service.web.auth import tenant_of
from service.web.errors import BadRequest, MissingField
from service.web.parsing import (
    decode_cursor,
    delete_condition,
    encode_cursor,
    etag,
    parse_positive_int,
    read_json_object,
    write_conditions,
)

routes = web.RouteTableDef()

# Any character: the domain, not the router, decides what a name may be.
SECRET_PATH = r"/secrets/{name:[\s\S]*}"
_FIELDS = frozenset({"value"})
# An answer that carries a value is kept by no cache, shared or private.
NO_STORE = {hdrs.CACHE_CONTROL: "no-store"}


def _json(body: dict, status: int = 200, headers: dict | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body, option=orjson.OPT_UTC_Z),
        status=status,
        headers=headers,
        content_type="application/json",
    )


def _metadata(info: SecretInfo) -> dict:
    return {
        "record_type": "secret",
        "name": info.name,
        "version": info.version,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
    }


def _version(request: web.Request) -> int | None:
    if "version" not in request.query:
        return None
    return parse_positive_int(request.query, "version", default=1, maximum=2**62)


@routes.put(SECRET_PATH)
async def put_secret(request: web.Request) -> web.Response:
    name = secrets.validate_name(request.match_info["name"])
    if_match, if_absent = write_conditions(request.headers)
    body = await read_json_object(request)
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise BadRequest(f"'{unknown[0]}' is not a known field.", pointer=f"/{unknown[0]}")
    if "value" not in body:
        raise MissingField("'value' is required.", pointer="/value")
    value = secrets.validate_value(body["value"])
    created, info = await request.config_dict[SECRETS].put(
        request.config_dict[DATABASE],
        tenant_of(request),
        name,
        value,
        if_match=if_match,
        if_absent=if_absent,
    )
    return _json(
        {"data": _metadata(info)},
        status=201 if created else 200,
        headers={hdrs.ETAG: etag(info.revision)},
    )


@routes.get(SECRET_PATH, allow_head=False)
async def get_secret(request: web.Request) -> web.Response:
    name = secrets.validate_name(request.match_info["name"])
    secret = await request.config_dict[SECRETS].get(
        request.config_dict[DATABASE],
        tenant_of(request),
        name,
        version=_version(request),
        request_id=request[REQUEST_ID],
    )
    data = _metadata(secret.info) | {
        "version": secret.version,
        "current_version": secret.info.version,
        "version_created_at": secret.version_created_at,
        "value": secret.value,
    }
    return _json({"data": data}, headers={hdrs.ETAG: etag(secret.revision), **NO_STORE})


@routes.delete(SECRET_PATH)
async def delete_secret(request: web.Request) -> web.Response:
    """Deletes every version; a secret that does not exist is deleted already (204)."""
    name = secrets.validate_name(request.match_info["name"])
    await request.config_dict[SECRETS].delete(
        request.config_dict[DATABASE],
        tenant_of(request),
        name,
        if_match=delete_condition(request.headers),
    )
    return web.Response(status=204)


@routes.get("/secrets", allow_head=False)
async def list_secrets(request: web.Request) -> web.Response:
    q = request.query
    prefix = validate_key_fragment(q.get("prefix", ""), "prefix")
    limit = parse_positive_int(
        q, "limit", default=secrets.MAX_LIST_LIMIT, cap=secrets.MAX_LIST_LIMIT
    )
    after = decode_cursor(q["cursor"], False) if q.get("cursor") else None
    page = await request.config_dict[SECRETS].list_page(
        request.config_dict[DATABASE], tenant_of(request), prefix=prefix, after=after, limit=limit
    )
    cursor = encode_cursor(page.items[-1].name, False) if page.has_more else None
    return _json(
        {
            "data": [_metadata(info) for info in page.items],
            "meta": {"cursor": cursor, "has_more": page.has_more},
        }
    )
