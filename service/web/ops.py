"""The routes for operators, outside every API surface: liveness, readiness and the API
reference page. None needs an API key."""

import asyncpg
from aiohttp import web

from service.db.queries import queries
from service.domain.errors import StoreUnavailable
from service.web.appkeys import DATABASE, OPENAPI, SCHEMA_VERSION, SHUTTING_DOWN
from service.web.auth import public
from service.web.errors import ShuttingDown

routes = web.RouteTableDef()


@routes.get("/healthz", allow_head=False)
async def healthz(request: web.Request) -> web.Response:
    """The process answers; never touches the database."""
    return web.json_response({"status": "ok"})


@routes.get("/readyz", allow_head=False)
async def readyz(request: web.Request) -> web.Response:
    """The server is not shutting down, the database answers, and its schema is the one this
    code expects."""
    if request.app[SHUTTING_DOWN].is_set():
        raise ShuttingDown("The server is shutting down.")
    try:
        version = await request.app[DATABASE].fetchval(queries().schema_version)
    except asyncpg.UndefinedTableError:
        version = 0
    expected = request.app[SCHEMA_VERSION]
    if version != expected:
        raise StoreUnavailable(
            f"The database schema is at version {version}; this code needs {expected}. "
            "Run 'kvs migrate'."
        )
    return web.json_response({"status": "ready", "schema_version": version})


@routes.get("/docs", allow_head=False)
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=request.app[OPENAPI].html_page, content_type="text/html")


# The OpenAPI document, for a surface to serve under its own prefix.
spec_routes = web.RouteTableDef()


@spec_routes.get("/openapi.yaml", allow_head=False)
@public
async def openapi_yaml(request: web.Request) -> web.Response:
    return web.Response(
        text=request.config_dict[OPENAPI].yaml_text, content_type="application/yaml"
    )


@spec_routes.get("/openapi.json", allow_head=False)
@public
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(
        text=request.config_dict[OPENAPI].json_text, content_type="application/json"
    )
