"""Routes under /storage/kv for buckets: a bucket is a namespace of the tenant, addressed by
its name. quiva.ai has no `pending` bucket, so a create answers once the bucket is usable."""

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiohttp import web

from service.api.quiva import render
from service.api.quiva.models import (
    BucketCreate,
    BucketUpdate,
    bucket_name,
    refuse_unhonoured,
)
from service.domain import keys as kv
from service.domain import namespaces
from service.domain.errors import NamespaceNotFound, NamespaceNotReady
from service.domain.namespaces import Located, Namespace
from service.web.appkeys import DATABASE, SETTINGS
from service.web.auth import tenant_of
from service.web.parsing import parse_model, read_json_object
from service.web.recent import Recent

routes = web.RouteTableDef()

BUCKET_PATH = "/kv/{bucket:[^/]+}"
T = TypeVar("T")

# Which namespace a tenant's bucket name names, remembered by a process for a few seconds.
# The key statements check the namespace's tenant and status again, and an id they find gone
# or not ready is looked up afresh: so memory only saves the lookup, and changes nothing an
# answer says.
BUCKETS = web.AppKey("quiva_buckets", Recent)
BUCKET_SECONDS = 10.0
STALE = (NamespaceNotFound, NamespaceNotReady)


async def fresh_bucket(request: web.Request) -> Located:
    """The request's bucket, read from the database and remembered; ready for entries."""
    name = bucket_name(request.match_info["bucket"])
    tenant_id = tenant_of(request)
    bucket = await namespaces.locate_namespace(request.config_dict[DATABASE], tenant_id, name)
    if bucket.status != "provision_ok":
        raise NamespaceNotReady(bucket.status)
    request.config_dict[BUCKETS].put((tenant_id, name), bucket)
    return bucket


def remembered_bucket(request: web.Request) -> Located | None:
    return request.config_dict[BUCKETS].get((tenant_of(request), request.match_info["bucket"]))


async def on_bucket(request: web.Request, operation: Callable[[Located], Awaitable[T]]) -> T:
    """`operation` on the request's bucket: the remembered one, or if there is none or the
    operation finds it gone, the one the database names now."""
    remembered = remembered_bucket(request)
    if remembered is not None:
        try:
            return await operation(remembered)
        except STALE:
            pass
    return await operation(await fresh_bucket(request))


async def _usable(request: web.Request, ns: Namespace) -> None:
    """Returns once the new or changed bucket is provision_ok, waiting for the worker up to
    `bucket_ready_timeout`; NamespaceNotReady (503, or 500 when provisioning failed) if not."""
    settings = request.config_dict[SETTINGS]
    if ns.status == "pending":
        ns = await namespaces.wait_until_provisioned(
            request.config_dict[DATABASE], tenant_of(request), ns.id, settings.bucket_ready_timeout
        )
    if ns.status != "provision_ok":
        raise NamespaceNotReady(ns.status)


@routes.get("/kv", allow_head=False)
async def get_kv_bucket_list(request: web.Request) -> web.Response:
    started = time.perf_counter()
    found = await namespaces.list_live_namespaces(request.config_dict[DATABASE], tenant_of(request))
    cluster = request.config_dict[SETTINGS].cluster_name
    results = [render.bucket_list_item(ns, cluster) for ns in found]
    return render.envelope({"results": results, "results_total": len(results)}, {}, started)


@routes.post("/kv")
async def create_kv_bucket(request: web.Request) -> web.Response:
    """Creates the bucket. A create of a bucket that exists with the same settings succeeds
    (as NATS's does), so that a client may retry one that timed out; with other settings it
    is refused."""
    spec = parse_model(BucketCreate, await read_json_object(request))
    name = bucket_name(spec.bucket)
    refuse_unhonoured(spec)
    settings = {"description": None, "max_bytes": None, "max_value_size": None, **spec.settings()}
    ns = await namespaces.ensure_namespace(
        request.config_dict[DATABASE],
        tenant_of(request),
        name,
        settings,
        value_ceiling=request.config_dict[SETTINGS].max_value_size_ceiling,
    )
    await _usable(request, ns)
    return render.success()


@routes.get(BUCKET_PATH, allow_head=False)
async def get_kv_bucket(request: web.Request) -> web.Response:
    started = time.perf_counter()
    name = bucket_name(request.match_info["bucket"])
    ns = await namespaces.find_namespace(request.config_dict[DATABASE], tenant_of(request), name)
    settings = request.config_dict[SETTINGS]
    details = render.bucket_details(ns, settings.cluster_name, settings.max_value_size_ceiling)
    return render.envelope(details, {"bucket": name}, started)


@routes.put(BUCKET_PATH)
async def create_or_update_kv_bucket(request: web.Request) -> web.Response:
    """Changes the settings the body names; a bucket of a new name is created with them."""
    name = bucket_name(request.match_info["bucket"])
    spec = parse_model(BucketUpdate, await read_json_object(request))
    refuse_unhonoured(spec)
    ns = await namespaces.put_namespace(
        request.config_dict[DATABASE],
        tenant_of(request),
        name,
        spec.settings(),
        value_ceiling=request.config_dict[SETTINGS].max_value_size_ceiling,
    )
    await _usable(request, ns)
    return render.success()


@routes.delete(BUCKET_PATH)
async def delete_kv_bucket(request: web.Request) -> web.Response:
    """Deletes the bucket: it is gone from every answer at once, and the worker removes its
    entries."""
    name = bucket_name(request.match_info["bucket"])
    db, tenant_id = request.config_dict[DATABASE], tenant_of(request)
    ns = await namespaces.find_namespace(db, tenant_id, name)
    await namespaces.delete_namespace(db, tenant_id, ns.id)
    request.config_dict[BUCKETS].forget((tenant_id, name))
    return render.success()


@routes.delete(BUCKET_PATH + "/purge")
async def purge_kv_bucket(request: web.Request) -> web.Response:
    """Removes every entry the bucket holds when the purge begins; its settings stay."""
    name = bucket_name(request.match_info["bucket"])
    db, tenant_id = request.config_dict[DATABASE], tenant_of(request)
    bucket = await namespaces.locate_namespace(db, tenant_id, name)
    await kv.purge_values(db, tenant_id, bucket.id, request.config_dict[SETTINGS].delete_batch_size)
    return render.success()
