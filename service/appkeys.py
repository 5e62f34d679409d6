"""Typed keys for what the application and each request hold."""

from uuid import UUID

from aiohttp import web

from service.db import Database
from service.metrics import Metrics
from service.openapi import OpenApiDocument
from service.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
SCHEMA_VERSION = web.AppKey("schema_version", int)
OPENAPI = web.AppKey("openapi", OpenApiDocument)
METRICS = web.AppKey("metrics", Metrics)
METRICS_PORT = web.AppKey("metrics_port", int)

REQUEST_ID = web.RequestKey("request_id", str)
TENANT = web.RequestKey("tenant_id", UUID)
