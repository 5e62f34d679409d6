"""The application factory."""

import asyncio
from collections.abc import AsyncIterator

from aiohttp import web

from service.appkeys import (
    AUTH_LIMITER,
    DATABASE,
    KEY_CACHE,
    METRICS,
    METRICS_PORT,
    OPENAPI,
    SCHEMA_VERSION,
    SETTINGS,
    SHUTTING_DOWN,
)
from service.auth import auth_middleware
from service.db import open_database
from service.handlers import docs, health, keys, namespaces
from service.keycache import KeyCache
from service.kv import MAX_VALUE_BYTES
from service.metrics import ApiMetrics, serve_metrics
from service.middleware import front_middleware, with_expect_handler
from service.migrations import latest_version
from service.openapi import load_document
from service.ratelimit import FailureLimiter
from service.settings import Settings


async def _database_ctx(app: web.Application) -> AsyncIterator[None]:
    async with open_database(app[SETTINGS], metrics=app[METRICS]) as db:
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
        middlewares=[front_middleware(metrics), auth_middleware],
        client_max_size=MAX_VALUE_BYTES,
        # Values are stored as the bytes sent: a handler refuses an encoded body (415) rather
        # than have the parser decode it, or reject an unknown coding in plain text.
        handler_args={"auto_decompress": False},
    )
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[SHUTTING_DOWN] = asyncio.Event()
    app[KEY_CACHE] = KeyCache(settings.auth_cache_seconds)
    app[AUTH_LIMITER] = FailureLimiter(settings.auth_failures_per_minute)
    app[SCHEMA_VERSION] = latest_version(settings.migrations_dir)
    app[OPENAPI] = load_document(settings.openapi_file)
    app.cleanup_ctx.append(_metrics_ctx)
    app.cleanup_ctx.append(_database_ctx)
    for module in (health, namespaces, keys, docs):
        app.add_routes(with_expect_handler(module.routes))
    return app
