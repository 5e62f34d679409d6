"""Liveness and readiness."""

import asyncpg
from aiohttp import web

from service.appkeys import DATABASE, SCHEMA_VERSION, SHUTTING_DOWN
from service.db import queries
from service.errors import DatabaseUnavailable, ShuttingDown

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
        raise DatabaseUnavailable(
            f"The database schema is at version {version}; this code needs {expected}. "
            "Run 'kvs migrate'."
        )
    return web.json_response({"status": "ready", "schema_version": version})
