"""A live `kvs serve` process with a tenant, for the clients' tests (clients/js,
clients/python), which talk to it over HTTP like any user; each test gets a namespace of its
own. The server and its database are shared by a module's tests: starting a server per test
took most of their time."""

import asyncio
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from yarl import URL

from service.db.pool import open_database
from service.domain import tenants
from tests.support import (
    KVS,
    closed_port,
    create_database,
    drop_database,
    make_settings,
    provisioned_namespace,
    worker_env,
)
from tests.support.rawhttp import wait_until_serving


@dataclass(frozen=True)
class LiveServer:
    database_url: str
    base_url: str
    tenant_id: uuid.UUID
    api_key: str


@dataclass(frozen=True)
class LiveKv:
    base_url: str
    api_key: str
    namespace: str


@pytest.fixture(scope="module")
def live_server(pg_admin_url: str, template_database: str) -> Iterator[LiveServer]:
    """A `kvs serve` subprocess on a database of its own, and a tenant's API key."""

    async def prepare() -> tuple[str, uuid.UUID, str]:
        url = await create_database(pg_admin_url, template_database)
        async with open_database(make_settings(url)) as db:
            tenant_id, key = await tenants.create_tenant(db, "clients")
        return url, tenant_id, key.token

    url, tenant_id, token = asyncio.run(prepare())
    port = closed_port()
    env = worker_env(url, port=str(port), log_level="WARNING")
    server = subprocess.Popen([*KVS, "serve"], env=env)
    try:
        asyncio.run(wait_until_serving(port))
        yield LiveServer(url, f"http://127.0.0.1:{port}", tenant_id, token)
    finally:
        server.terminate()
        server.wait(timeout=30)
        asyncio.run(drop_database(pg_admin_url, URL(url).path.lstrip("/")))


@pytest.fixture
async def live_kv(live_server: LiveServer) -> LiveKv:
    """The server's base URL, the tenant's API key and a new namespace's id (TTL supported)."""
    settings = make_settings(live_server.database_url)
    async with open_database(settings) as db:
        name = f"redocly-{uuid.uuid4().hex[:12]}"
        namespace = await provisioned_namespace(db, settings, live_server.tenant_id, name)
    return LiveKv(live_server.base_url, live_server.api_key, str(namespace))
