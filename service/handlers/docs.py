"""The OpenAPI document and its web page: public, no API key needed."""

from aiohttp import web

from service.appkeys import OPENAPI
from service.auth import public

routes = web.RouteTableDef()


@routes.get("/v2/openapi.yaml", allow_head=False)
@public
async def openapi_yaml(request: web.Request) -> web.Response:
    return web.Response(text=request.app[OPENAPI].yaml_text, content_type="application/yaml")


@routes.get("/v2/openapi.json", allow_head=False)
@public
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(text=request.app[OPENAPI].json_text, content_type="application/json")


@routes.get("/docs", allow_head=False)
@public
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=request.app[OPENAPI].html_page, content_type="text/html")
