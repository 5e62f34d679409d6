"""Routes under /v2/storage/kvs for namespaces."""

import math

from aiohttp import web
from pydantic import BaseModel

from service.api.telnyx.models import (
    CREATION_FIELDS,
    SERVER_OWNED_FIELDS,
    NamespaceCreate,
    NamespaceEnvelope,
    NamespaceList,
    NamespacePublic,
    NamespaceUpdate,
    PageMeta,
)
from service.domain import namespaces
from service.domain.namespaces import MAX_PAGE_SIZE, Namespace
from service.web.appkeys import DATABASE, SETTINGS
from service.web.auth import tenant_of
from service.web.parsing import parse_model, parse_positive_int, parse_uuid, read_json_object

routes = web.RouteTableDef()


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


def _envelope(ns: Namespace) -> NamespaceEnvelope:
    return NamespaceEnvelope(data=NamespacePublic.model_validate(ns))


@routes.post("/storage/kvs")
async def create_namespace(request: web.Request) -> web.Response:
    body = await read_json_object(request)
    spec = parse_model(NamespaceCreate, body, server_owned=SERVER_OWNED_FIELDS)
    ns = await namespaces.create_namespace(
        request.config_dict[DATABASE],
        tenant_of(request),
        spec.name,
        ttl_support=spec.ttl_support,
        description=spec.description,
        max_bytes=spec.max_bytes,
        max_value_size=spec.max_value_size,
        value_ceiling=request.config_dict[SETTINGS].max_value_size_ceiling,
    )
    return _json(_envelope(ns), status=201)


@routes.get("/storage/kvs", allow_head=False)
async def list_namespaces(request: web.Request) -> web.Response:
    number = parse_positive_int(request.query, "page[number]", default=1)
    size = parse_positive_int(request.query, "page[size]", default=20, cap=MAX_PAGE_SIZE)
    page = await namespaces.list_namespaces(
        request.config_dict[DATABASE], tenant_of(request), number, size
    )
    listing = NamespaceList(
        data=[NamespacePublic.model_validate(ns) for ns in page.items],
        meta=PageMeta(
            page_number=page.page_number,
            page_size=page.page_size,
            total_pages=math.ceil(page.total / page.page_size),
            total_results=page.total,
        ),
    )
    return _json(listing)


@routes.get("/storage/kvs/{id:[^/]+}", allow_head=False)
async def get_namespace(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    ns = await namespaces.get_namespace(
        request.config_dict[DATABASE], tenant_of(request), namespace_id
    )
    return _json(_envelope(ns))


@routes.patch("/storage/kvs/{id:[^/]+}")
async def update_namespace(request: web.Request) -> web.Response:
    """Extension: changes the settings the body names; null removes one."""
    namespace_id = parse_uuid(request.match_info["id"])
    body = await read_json_object(request)
    spec = parse_model(
        NamespaceUpdate, body, server_owned=SERVER_OWNED_FIELDS, fixed=CREATION_FIELDS
    )
    ns = await namespaces.update_namespace(
        request.config_dict[DATABASE],
        tenant_of(request),
        namespace_id,
        {field: getattr(spec, field) for field in spec.model_fields_set},
        value_ceiling=request.config_dict[SETTINGS].max_value_size_ceiling,
    )
    return _json(_envelope(ns))


@routes.delete("/storage/kvs/{id:[^/]+}")
async def delete_namespace(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    ns = await namespaces.delete_namespace(
        request.config_dict[DATABASE], tenant_of(request), namespace_id
    )
    return _json(_envelope(ns))
