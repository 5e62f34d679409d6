"""Typed keys for what the application and each request hold."""

from uuid import UUID

from aiohttp import web

from service.db import Database
from service.openapi import OpenApiDocument
from service.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
DATABASE = web.AppKey("database", Database)
SCHEMA_VERSION = web.AppKey("schema_version", int)
OPENAPI = web.AppKey("openapi", OpenApiDocument)

REQUEST_ID = web.RequestKey("request_id", str)
TENANT = web.RequestKey("tenant_id", UUID)
