"""Routes under /v2/storage/kvs for namespaces."""

from aiohttp import web
from pydantic import BaseModel

from service import namespaces
from service.appkeys import DATABASE
from service.auth import tenant_of
from service.handlers.parsing import parse_model, parse_positive_int, parse_uuid, read_json_object
from service.models import NamespaceCreate, NamespacePublic
from service.namespaces import MAX_PAGE_SIZE

routes = web.RouteTableDef()


class NamespaceEnvelope(BaseModel):
    data: NamespacePublic


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        text=model.model_dump_json(), status=status, content_type="application/json"
    )


@routes.post("/v2/storage/kvs")
async def create_namespace(request: web.Request) -> web.Response:
    spec = parse_model(NamespaceCreate, await read_json_object(request))
    ns = await namespaces.create_namespace(request.app[DATABASE], tenant_of(request), spec)
    return _json(NamespaceEnvelope(data=ns), status=201)


@routes.get("/v2/storage/kvs", allow_head=False)
async def list_namespaces(request: web.Request) -> web.Response:
    number = parse_positive_int(request.query, "page[number]", default=1)
    size = parse_positive_int(request.query, "page[size]", default=20, cap=MAX_PAGE_SIZE)
    page = await namespaces.list_namespaces(request.app[DATABASE], tenant_of(request), number, size)
    return _json(page)


@routes.get("/v2/storage/kvs/{id:[^/]+}", allow_head=False)
async def get_namespace(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    ns = await namespaces.get_namespace(request.app[DATABASE], tenant_of(request), namespace_id)
    return _json(NamespaceEnvelope(data=ns))


@routes.delete("/v2/storage/kvs/{id:[^/]+}")
async def delete_namespace(request: web.Request) -> web.Response:
    namespace_id = parse_uuid(request.match_info["id"])
    ns = await namespaces.delete_namespace(request.app[DATABASE], tenant_of(request), namespace_id)
    return _json(NamespaceEnvelope(data=ns))
