"""Routes under /storage/kv/{bucket} for entries: keys of the bucket's namespace whose values
are JSON objects, stored byte for byte with `Content-Type: application/json`, so that /v2
reads them as it reads any key."""

import re
import time

from aiohttp import web

from service.api.quiva import render
from service.api.quiva.buckets import BUCKET_PATH, STALE, fresh_bucket, on_bucket, remembered_bucket
from service.domain import keys as kv
from service.domain.namespaces import Located
from service.domain.values import json_type
from service.web.appkeys import DATABASE, SETTINGS
from service.web.auth import tenant_of
from service.web.bodies import expect_when_read, received_value
from service.web.errors import BadRequest, MissingField
from service.web.parsing import parse_positive_int, refuse_content_encoding

routes = web.RouteTableDef()

# Any character, newlines included: the handler, not the router, decides what a key may be.
ENTRY_PATH = BUCKET_PATH + r"/entries/{key:[\s\S]*}"
JSON_TYPE = "application/json"
DEFAULT_LIMIT = 10
# A listing answer takes entries while the values before them total less than this (so it
# holds at most this and one value more): 1,000 entries of 16 MiB would otherwise hold 16 GB
# in memory. `metadata.truncated` says when entries were left out.
LISTING_BYTES = 8 * 1024 * 1024
SEARCH_TYPES = ("exact", "fuzzy", "prefix", "range")
# A number as JSON writes one (Python's float() takes `1_000`, `inf` and spaces too).
_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?")


def _limit(request: web.Request) -> int:
    return parse_positive_int(
        request.query, "limit", default=DEFAULT_LIMIT, maximum=kv.MAX_LIST_LIMIT
    )


async def _matching(
    request: web.Request, pattern: kv.KeyPattern | None, limit: int
) -> kv.ValuePage:
    """The request's bucket's entries matching `pattern` (all when None), within the budget."""
    db, tenant_id = request.config_dict[DATABASE], tenant_of(request)
    return await on_bucket(
        request,
        lambda bucket: kv.list_values_matching(
            db, tenant_id, bucket.id, pattern, limit, LISTING_BYTES
        ),
    )


def _listing(page: kv.ValuePage, metadata: dict, started: float) -> web.Response:
    results = [render.entry(item.key, item.value, item.content_type) for item in page.items]
    if page.truncated:
        metadata["truncated"] = True
    return render.envelope({"results": results, "results_total": len(results)}, metadata, started)


@routes.get(BUCKET_PATH + "/entries", allow_head=False)
async def get_kv_latest_entries(request: web.Request) -> web.Response:
    """The latest value of each entry, in key order (NATS keeps one subject per key), up to
    `limit`."""
    started = time.perf_counter()
    limit = _limit(request)
    page = await _matching(request, None, limit)
    metadata = {"bucket": request.match_info["bucket"], "limit": limit}
    return _listing(page, metadata, started)


@routes.get(ENTRY_PATH, allow_head=False)
async def get_kv_entry(request: web.Request) -> web.Response:
    started = time.perf_counter()
    key = kv.validate_key(request.match_info["key"])
    db, tenant_id = request.config_dict[DATABASE], tenant_of(request)
    found = await on_bucket(request, lambda bucket: kv.get_value(db, tenant_id, bucket.id, key))
    metadata = {"bucket": request.match_info["bucket"], "key": key}
    return render.envelope(render.entry(key, found.value, found.content_type), metadata, started)


@routes.put(ENTRY_PATH, expect_handler=expect_when_read)
async def put_kv_entry(request: web.Request) -> web.Response:
    """Stores the body, a JSON object, as the entry's value: verbatim, as JSON."""
    key = kv.validate_key(request.match_info["key"])
    refuse_content_encoding(request.headers)
    db, tenant_id = request.config_dict[DATABASE], tenant_of(request)
    ceiling = request.config_dict[SETTINGS].max_value_size_ceiling
    remembered = remembered_bucket(request)
    declared = request.content_length
    if remembered is not None and (
        declared is None or declared > kv.effective_value_limit(remembered.max_value_size, ceiling)
    ):
        remembered = None  # a remembered limit never refuses: one raised since holds at once
    bucket = remembered or await fresh_bucket(request)
    # What refuses a body early; the write checks the limit in force whatever was remembered.
    limit = kv.effective_value_limit(bucket.max_value_size, ceiling)
    async with received_value(request, limit) as value:
        try:
            is_object = json_type(value) is dict
            refusal = None if is_object else "An entry's value must be a JSON object."
        except ValueError:
            refusal = "The request body is not valid JSON."
        if refusal is not None:
            if remembered is not None:
                await fresh_bucket(request)  # a bucket gone meanwhile answers as such first
            raise BadRequest(refusal, pointer="")

        async def store(bucket: Located) -> None:
            await kv.put_value(
                db, tenant_id, bucket.id, key, value, JSON_TYPE, value_ceiling=ceiling
            )

        try:
            await store(bucket)
        except STALE:
            if remembered is None:
                raise
            await store(await fresh_bucket(request))
    return render.success()


@routes.delete(ENTRY_PATH)
async def delete_kv_entry(request: web.Request) -> web.Response:
    """Deletes the entry; deleting one that does not exist succeeds, as in NATS."""
    key = kv.validate_key(request.match_info["key"])
    db, tenant_id = request.config_dict[DATABASE], tenant_of(request)
    await on_bucket(request, lambda bucket: kv.delete_value(db, tenant_id, bucket.id, key))
    return render.success()


@routes.get(BUCKET_PATH + "/search-by-key", allow_head=False)
async def search_kv_by_key(request: web.Request) -> web.Response:
    """Entries whose keys match `search` (`*` any characters, `?` one), in key order; the part
    before the first wildcard is a range of the key index."""
    started = time.perf_counter()
    if "search" not in request.query:
        raise MissingField("'search' is required.", parameter="search")
    pattern = kv.parse_key_pattern(request.query["search"])
    limit = _limit(request)
    page = await _matching(request, pattern, limit)
    metadata = {
        "bucket": request.match_info["bucket"],
        "search": pattern.text,
        "hits": len(page.items),
    }
    return _listing(page, metadata, started)


@routes.get(BUCKET_PATH + "/search", allow_head=False)
async def search_kv_entries(request: web.Request) -> web.Response:
    """A search by indexed fields: its parameters are checked, and since this server indexes
    no field, a search of an existing bucket is a validation error that says so."""
    query = request.query
    for required in ("field", "search"):
        if required not in query:
            raise MissingField(f"'{required}' is required.", parameter=required)
    if query.get("search_type", "exact") not in SEARCH_TYPES:
        raise BadRequest(
            f"'search_type' must be one of {', '.join(SEARCH_TYPES)}.", parameter="search_type"
        )
    for bound in ("min", "max"):
        if bound in query and not _NUMBER.fullmatch(query[bound]):
            raise BadRequest(f"'{bound}' must be a number.", parameter=bound)
    _limit(request)
    await fresh_bucket(request)
    raise BadRequest(
        f"The bucket has no index on '{query['field']}': this server does not index fields "
        "of entries, so none can be searched. Search keys with search-by-key.",
        parameter="field",
    )
