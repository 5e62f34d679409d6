"""Typed keys for what the application and each request hold.

Surfaces are sub-applications: their handlers read these through `request.config_dict`,
which looks in the surface's app first, then in the root app.
"""

import asyncio
from uuid import UUID

from aiohttp import web

from service.db.pool import Database
from service.domain.secrets import SecretStore
from service.settings import Settings
from service.web.errors import ErrorShape
from service.web.keycache import KeyCache
from service.web.limits import BodyBudget, ValueLimits
from service.web.metrics import ApiMetrics
from service.web.openapi import OpenApiDocument
from service.web.ratelimit import FailureLimiter

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
SCHEMA_VERSION = web.AppKey("schema_version", int)
OPENAPI = web.AppKey("openapi", OpenApiDocument)
METRICS = web.AppKey("metrics", ApiMetrics)
SECRETS = web.AppKey("secrets", SecretStore)
METRICS_PORT = web.AppKey("metrics_port", int)
KEY_CACHE = web.AppKey("key_cache", KeyCache)
AUTH_LIMITER = web.AppKey("auth_limiter", FailureLimiter)
# How failures are answered: each surface's app sets its own; the root app's serves the
# routes outside every surface and what the server answers before routing.
ERRORS = web.AppKey("errors", ErrorShape)
# On the root app: each surface's prefix and ERRORS, for answers given before routing.
SURFACE_ERRORS = web.AppKey("surface_errors", tuple)
# Request bodies held at once, and namespaces' value limits (service/web/limits.py).
BODY_BUDGET = web.AppKey("body_budget", BodyBudget)
VALUE_LIMITS = web.AppKey("value_limits", ValueLimits)
# Set on SIGTERM: readiness fails and every answer closes its connection (service/web/runner.py).
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)

REQUEST_ID = web.RequestKey("request_id", str)
TENANT = web.RequestKey("tenant_id", UUID)
# The request awaits `100 Continue`, to be sent when its body is read (service/web/bodies.py);
# answered without it, its connection is closed, since the body may never follow.
CONTINUE_PENDING = web.RequestKey("continue_pending", bool)
