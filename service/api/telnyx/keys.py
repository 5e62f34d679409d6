"""Routes under /v2/storage/kvs/{id}/keys: raw-byte values with their Content-Type."""

import re
from datetime import datetime
from typing import Any

import orjson
from aiohttp import hdrs, web

from service.api.telnyx.batch import carried_entry
from service.api.telnyx.codes import InvalidTtl
from service.domain import keys as kv
from service.web.appkeys import DATABASE, SETTINGS
from service.web.auth import tenant_of
from service.web.bodies import expect_when_read, received_value, value_limit
from service.web.parsing import (
    decode_cursor,
    delete_condition,
    encode_cursor,
    etag,
    header_list,
    parse_boolean,
    parse_content_type,
    parse_etags,
    parse_positive_int,
    parse_uuid,
    refuse_content_encoding,
    write_conditions,
)

routes = web.RouteTableDef()

# Any character, newlines included: the handler, not the router, decides what a key may be.
KEY_PATH = r"/storage/kvs/{id:[^/]+}/keys/{key:[\s\S]*}"
EXPIRES_HEADER = "X-Expires-At"
_TTL = re.compile(r"[0-9]{1,11}")


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _entry_headers(version: int, expires_at: datetime | None) -> dict[str, str]:
    headers = {hdrs.ETAG: etag(version)}
    if expires_at is not None:
        headers[EXPIRES_HEADER] = _rfc3339(expires_at)
    return headers


def parse_ttl(query: Any) -> int | None:
    """`ttl_secs` as whole seconds in 1..MAX_TTL_SECONDS, or None when absent."""
    if "ttl" in query:
        raise InvalidTtl("The 'ttl' parameter is not supported; use 'ttl_secs'.", parameter="ttl")
    values = query.getall("ttl_secs", [])
    if not values:
        return None
    if (
        len(values) > 1
        or not _TTL.fullmatch(values[0])
        or not 1 <= int(values[0]) <= kv.MAX_TTL_SECONDS
    ):
        raise InvalidTtl(
            f"'ttl_secs' must be one whole number of seconds from 1 to {kv.MAX_TTL_SECONDS}.",
            parameter="ttl_secs",
        )
    return int(values[0])


@routes.put(KEY_PATH, expect_handler=expect_when_read)
async def put_key(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    key = kv.validate_key(request.match_info["key"])
    ttl = parse_ttl(request.query)
    content_type = parse_content_type(request.headers)
    refuse_content_encoding(request.headers)
    versions, if_absent = write_conditions(request.headers)
    tenant_id = tenant_of(request)
    limit = await value_limit(request, tenant_id, namespace_id, ttl=ttl is not None)
    async with received_value(request, limit) as value:
        written = await kv.put_value(
            request.config_dict[DATABASE],
            tenant_id,
            namespace_id,
            key,
            value,
            content_type,
            ttl_seconds=ttl,
            if_match=versions,
            if_absent=if_absent,
            value_ceiling=request.config_dict[SETTINGS].max_value_size_ceiling,
        )
    return web.Response(
        status=201 if written.created else 200,
        headers=_entry_headers(written.version, written.expires_at),
    )


@routes.get(KEY_PATH)
async def get_key(request: web.Request) -> web.Response:
    """GET, and HEAD (which aiohttp routes here too): the stored bytes and Content-Type."""
    namespace_id = parse_uuid(request.match_info["id"])
    key = kv.validate_key(request.match_info["key"])
    if_none_match = header_list(request.headers, hdrs.IF_NONE_MATCH)
    known = [] if if_none_match is None else parse_etags(if_none_match, weak=True)
    head = request.method == hdrs.METH_HEAD
    entry = await kv.get_value(
        request.config_dict[DATABASE],
        tenant_of(request),
        namespace_id,
        key,
        with_value=not head and known != "*",
        known_versions=None if known == "*" else known,
    )
    headers = _entry_headers(entry.version, entry.expires_at)
    if known == "*" or entry.version in known:
        return web.Response(status=304, headers=headers)
    headers[hdrs.CONTENT_TYPE] = entry.content_type
    if head:
        headers[hdrs.CONTENT_LENGTH] = str(entry.size_bytes)
        return web.Response(headers=headers)
    return web.Response(body=entry.value, headers=headers)


@routes.delete(KEY_PATH)
async def delete_key(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    key = kv.validate_key(request.match_info["key"])
    await kv.delete_value(
        request.config_dict[DATABASE],
        tenant_of(request),
        namespace_id,
        key,
        if_match=delete_condition(request.headers),
    )
    return web.Response(status=204)


@routes.get("/storage/kvs/{id:[^/]+}/keys", allow_head=False)
async def list_keys(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    q = request.query
    prefix = kv.validate_key_fragment(q.get("prefix", ""), "prefix")
    start = kv.validate_key_fragment(q["start"], "start") if "start" in q else None
    end = kv.validate_key_fragment(q["end"], "end") if "end" in q else None
    limit = parse_positive_int(q, "limit", default=kv.MAX_LIST_LIMIT, cap=kv.MAX_LIST_LIMIT)
    reverse = parse_boolean(q, "reverse")
    after = decode_cursor(q["cursor"], reverse) if q.get("cursor") else None
    values, total = parse_boolean(q, "values"), parse_boolean(q, "total")
    query = kv.ListQuery(prefix, start, end, after, limit, reverse, values, total)
    page = await kv.list_values(
        request.config_dict[DATABASE], tenant_of(request), namespace_id, query
    )
    return web.Response(body=render_key_list(page, reverse), content_type="application/json")


def render_key_list(page: kv.KeyPage, reverse: bool) -> bytes:
    """The listing's JSON (schema KvKeyList in openapi/openapi.yaml): orjson writes the items
    (key, size_bytes, updated_at, and the extensions content_type and expires_at) straight
    from their dataclasses; a pydantic model per item took most of a page's CPU. With values,
    each item is as a batch read gives it; with the total, `meta.total`."""
    cursor = encode_cursor(page.last_key, reverse) if page.has_more else None
    meta: dict[str, Any] = {"cursor": cursor, "has_more": page.has_more}
    if page.total is not None:
        meta["total"] = page.total
    items: list[Any] = page.items
    if page.values is not None:
        items = [
            carried_entry(info.key, version, info, value)
            for info, (version, value) in zip(page.items, page.values, strict=True)
        ]
    return orjson.dumps(
        {"record_type": "storage_kv_key", "data": items, "meta": meta},
        option=orjson.OPT_UTC_Z,
    )
