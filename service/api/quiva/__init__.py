"""quiva.ai's gateway KV surface at /storage: buckets and entries over the same tenants and
namespaces as /v2 (openapi/quiva.yaml), with quiva.ai's error shape and envelopes."""

from aiohttp import web

from service.api.quiva import buckets, entries
from service.api.quiva.errors import QuivaErrors
from service.settings import Settings
from service.web import ops
from service.web.appkeys import ERRORS, OPENAPI
from service.web.auth import auth_middleware, public
from service.web.errors import MethodNotAllowed, error_middleware
from service.web.front import with_expect_handler
from service.web.openapi import load_document
from service.web.recent import Recent

# Everything under /storage answers in quiva.ai's shape: its KV routes are under /storage/kv.
PREFIX = "/storage"


@public
async def _only_get(request: web.Request) -> web.Response:
    raise MethodNotAllowed("This method is not allowed on this resource.", "GET")


def create_surface(settings: Settings) -> web.Application:
    """The sub-application to mount at PREFIX."""
    shape = QuivaErrors()
    app = web.Application(middlewares=[error_middleware(shape), auth_middleware])
    app[ERRORS] = shape
    app[OPENAPI] = load_document(settings.quiva_openapi_file)
    app[buckets.BUCKETS] = Recent(buckets.BUCKET_SECONDS)
    spec = [
        route
        for path, handler in (
            ("/kv/openapi.yaml", ops.openapi_yaml),
            ("/kv/openapi.json", ops.openapi_json),
        )
        # Any other method is a 405 here, not a request for a bucket of that name.
        for route in (web.get(path, handler, allow_head=False), web.route("*", path, _only_get))
    ]
    for routes in (spec, buckets.routes, entries.routes):
        app.add_routes(with_expect_handler(routes))
    return app
