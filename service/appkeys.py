"""Typed keys for what the application and each request hold."""

import asyncio
from uuid import UUID

from aiohttp import web

from service.db import Database
from service.keycache import KeyCache
from service.metrics import ApiMetrics
from service.openapi import OpenApiDocument
from service.ratelimit import FailureLimiter
from service.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
SCHEMA_VERSION = web.AppKey("schema_version", int)
OPENAPI = web.AppKey("openapi", OpenApiDocument)
METRICS = web.AppKey("metrics", ApiMetrics)
METRICS_PORT = web.AppKey("metrics_port", int)
KEY_CACHE = web.AppKey("key_cache", KeyCache)
AUTH_LIMITER = web.AppKey("auth_limiter", FailureLimiter)
# Set on SIGTERM: readiness fails and every answer closes its connection (service/server.py).
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)

REQUEST_ID = web.RequestKey("request_id", str)
TENANT = web.RequestKey("tenant_id", UUID)
