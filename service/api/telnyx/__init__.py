"""The Telnyx-style surface at /v2: namespaces, keys, secrets (an extension), and the OpenAPI
document of the contract (openapi/openapi.yaml), with Telnyx's error envelope and code table."""

from aiohttp import web

from service.api.telnyx import batch, keys, namespaces, secrets
from service.api.telnyx.errors import TelnyxErrors
from service.settings import Settings
from service.web import ops
from service.web.appkeys import ERRORS
from service.web.auth import auth_middleware
from service.web.errors import error_middleware
from service.web.front import with_expect_handler

PREFIX = "/v2"


def create_surface(settings: Settings) -> web.Application:
    """The sub-application to mount at PREFIX. Its contract is the root app's OPENAPI
    (service/web/app.py), which /docs shows too."""
    shape = TelnyxErrors()
    app = web.Application(middlewares=[error_middleware(shape), auth_middleware])
    app[ERRORS] = shape
    for routes in (namespaces.routes, keys.routes, batch.routes, secrets.routes, ops.spec_routes):
        app.add_routes(with_expect_handler(routes))
    return app
