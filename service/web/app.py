"""The application factory: the root app with the operator routes, and one sub-application
per API surface."""

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from service.api import quiva, telnyx
from service.api.quiva import secrets as quiva_secrets
from service.api.telnyx.errors import TelnyxErrors
from service.db.migrations import latest_version
from service.db.pool import open_database
from service.domain.keys import DEFAULT_VALUE_LIMIT
from service.domain.sealing import configured_keys
from service.domain.secrets import SecretStore
from service.metrics import serve_metrics
from service.settings import Settings
from service.web import ops
from service.web.appkeys import (
    AUTH_LIMITER,
    BODY_BUDGET,
    DATABASE,
    ERRORS,
    KEY_CACHE,
    METRICS,
    METRICS_PORT,
    OPENAPI,
    SCHEMA_VERSION,
    SECRETS,
    SETTINGS,
    SHUTTING_DOWN,
    SURFACE_ERRORS,
    VALUE_LIMITS,
)
from service.web.errors import ErrorShape
from service.web.front import front_middleware, with_expect_handler
from service.web.keycache import KeyCache
from service.web.limits import BodyBudget, ValueLimits
from service.web.metrics import ApiMetrics
from service.web.openapi import load_document
from service.web.ratelimit import FailureLimiter

# Each surface: where it is mounted, and the factory of its sub-application.
SURFACES = (
    (telnyx.PREFIX, telnyx.create_surface),
    (quiva.PREFIX, quiva.create_surface),
    (quiva_secrets.PREFIX, quiva_secrets.create_surface),
)


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    async with open_database(app[SETTINGS], observer=app[METRICS]) as db:
        app[DATABASE] = db
        yield


async def _metrics_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    async with serve_metrics(app[METRICS], settings.metrics_host, settings.metrics_port) as port:
        app[METRICS_PORT] = port
        yield


def create_app(settings: Settings) -> web.Application:
    """The API application; its pool opens on startup and closes on cleanup."""
    metrics = ApiMetrics()
    app = web.Application(
        middlewares=[front_middleware(metrics, settings.access_log_sample)],
        # For JSON bodies; a stored value is streamed (service/web/bodies.py) within its
        # namespace's limit.
        client_max_size=DEFAULT_VALUE_LIMIT,
        # Values are stored as the bytes sent: a handler refuses an encoded body (415) rather
        # than have the parser decode it, or reject an unknown coding in plain text.
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    # Outside every surface (operator routes, unknown paths, malformed HTTP that names no
    # surface's path) the answers take the shape of the service's first surface.
    app[ERRORS] = TelnyxErrors()
    app[SHUTTING_DOWN] = asyncio.Event()
    app[KEY_CACHE] = KeyCache(settings.auth_cache_seconds)
    app[AUTH_LIMITER] = FailureLimiter(settings.auth_failures_per_minute)
    app[BODY_BUDGET] = BodyBudget(settings.body_memory_bytes, settings.body_memory_wait)
    app[VALUE_LIMITS] = ValueLimits()
    app[SCHEMA_VERSION] = latest_version(settings.migrations_dir)
    app[OPENAPI] = load_document(settings.openapi_file)
    app[SECRETS] = SecretStore(
        configured_keys(settings.secrets_master_keys),
        versions_kept=settings.secret_versions_kept,
        max_secrets=settings.secrets_per_tenant,
        observer=metrics,
    )
    app.cleanup_ctx.append(_metrics_ctx)
    app.cleanup_ctx.append(_database_ctx)
    app.add_routes(with_expect_handler(ops.routes))
    surfaces = []
    for prefix, create_surface in SURFACES:
        surface = create_surface(settings)
        app.add_subapp(prefix, surface)
        surfaces.append((prefix, surface[ERRORS]))
    app[SURFACE_ERRORS] = tuple(surfaces)
    return app


def errors_for_path(app: web.Application, path: str) -> ErrorShape:
    """The error shape of the surface that serves `path` (the root app's outside them all),
    for the answers given before a request is routed."""
    for prefix, shape in app[SURFACE_ERRORS]:
        if path == prefix or path.startswith(prefix + "/"):
            return shape
    return app[ERRORS]
