"""Routes under /v2/storage/kvs/{id}/keys: raw-byte values with their Content-Type."""

from datetime import datetime

import orjson
from aiohttp import HttpVersion11, hdrs, web

from service import kv
from service.appkeys import DATABASE
from service.auth import tenant_of
from service.errors import PAYLOAD_TOO_LARGE, BadRequest, PayloadTooLarge
from service.handlers.parsing import (
    body_deadline,
    header_list,
    parse_boolean,
    parse_content_type,
    parse_positive_int,
    parse_ttl,
    parse_uuid,
    refuse_content_encoding,
)
from service.middleware import assign_request_id, error_response, expect_continue

routes = web.RouteTableDef()

# Any character, newlines included: the handler, not the router, decides what a key may be.
KEY_PATH = r"/v2/storage/kvs/{id:[^/]+}/keys/{key:[\s\S]*}"
EXPIRES_HEADER = "X-Expires-At"
_TOO_LARGE = f"A value is at most {kv.MAX_VALUE_BYTES} bytes."


def _rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


def _entry_headers(version: int, expires_at: datetime | None) -> dict[str, str]:
    headers = {hdrs.ETAG: kv.etag(version)}
    if expires_at is not None:
        headers[EXPIRES_HEADER] = _rfc3339(expires_at)
    return headers


def _too_large(length: int | None) -> bool:
    return length is not None and length > kv.MAX_VALUE_BYTES


async def expect_within_limit(request: web.Request) -> web.StreamResponse | None:
    """Answers `Expect: 100-continue` with a final 413 when the declared body is too large, so
    the client never sends it; otherwise as every route does (`expect_continue`)."""
    continuing = request.headers.get(hdrs.EXPECT, "").lower() == "100-continue"
    if request.version == HttpVersion11 and continuing and _too_large(request.content_length):
        assign_request_id(request)
        response = error_response(request, PAYLOAD_TOO_LARGE, _TOO_LARGE)
        response.force_close()
        return response
    return await expect_continue(request)


async def read_value(request: web.Request) -> bytearray:
    """The request body, refused as soon as it passes the limit, whatever its framing, or
    when it takes longer than `body_timeout`."""
    if _too_large(request.content_length):
        raise PayloadTooLarge(_TOO_LARGE)
    body = bytearray()
    async with body_deadline(request):
        async for chunk in request.content.iter_any():
            body += chunk
            if len(body) > kv.MAX_VALUE_BYTES:
                raise PayloadTooLarge(_TOO_LARGE)
    return body


@routes.put(KEY_PATH, expect_handler=expect_within_limit)
async def put_key(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    key = kv.validate_key(request.match_info["key"])
    ttl = parse_ttl(request.query)
    content_type = parse_content_type(request.headers)
    refuse_content_encoding(request.headers)
    if_match = header_list(request.headers, hdrs.IF_MATCH)
    if_none_match = header_list(request.headers, hdrs.IF_NONE_MATCH)
    if if_none_match is not None and if_none_match.strip() != "*":
        raise BadRequest("On PUT, If-None-Match supports only '*'.", parameter="If-None-Match")
    versions = None if if_match is None else kv.parse_etags(if_match, weak=False)
    if versions is not None and if_none_match is not None:
        # RFC 9110: If-Match must hold (a live value exists) and If-None-Match: * must hold
        # (none exists): never both, so nothing may match.
        versions = []
    value = await read_value(request)
    written = await kv.put_value(
        request.app[DATABASE],
        tenant_of(request),
        namespace_id,
        key,
        value,
        content_type,
        ttl_seconds=ttl,
        if_match=versions,
        if_absent=if_none_match is not None,
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
    known = [] if if_none_match is None else kv.parse_etags(if_none_match, weak=True)
    head = request.method == hdrs.METH_HEAD
    entry = await kv.get_value(
        request.app[DATABASE],
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
    if_match = header_list(request.headers, hdrs.IF_MATCH)
    await kv.delete_value(
        request.app[DATABASE],
        tenant_of(request),
        namespace_id,
        key,
        if_match=None if if_match is None else kv.parse_etags(if_match, weak=False),
    )
    return web.Response(status=204)


@routes.get("/v2/storage/kvs/{id:[^/]+}/keys", allow_head=False)
async def list_keys(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    q = request.query
    query = kv.ListQuery(
        prefix=kv.validate_key_fragment(q.get("prefix", ""), "prefix"),
        start=kv.validate_key_fragment(q["start"], "start") if "start" in q else None,
        end=kv.validate_key_fragment(q["end"], "end") if "end" in q else None,
        cursor=q.get("cursor") or None,
        limit=parse_positive_int(q, "limit", default=kv.MAX_LIST_LIMIT, cap=kv.MAX_LIST_LIMIT),
        reverse=parse_boolean(q, "reverse"),
    )
    page = await kv.list_values(request.app[DATABASE], tenant_of(request), namespace_id, query)
    return web.Response(body=render_key_list(page), content_type="application/json")


def render_key_list(page: kv.KeyPage) -> bytes:
    """The listing's JSON (schema KvKeyList in openapi/openapi.yaml), straight from the rows:
    building a model per item took most of a page's CPU."""
    data = [
        {
            "key": row["key"],
            "size_bytes": row["size_bytes"],
            "updated_at": row["updated_at"],
            # Extensions: the stored Content-Type and the expiry (null when it does not expire).
            "content_type": row["content_type"],
            "expires_at": row["expires_at"],
        }
        for row in page.rows
    ]
    meta = {"cursor": page.cursor, "has_more": page.has_more}
    return orjson.dumps(
        {"record_type": "storage_kv_key", "data": data, "meta": meta}, option=orjson.OPT_UTC_Z
    )
