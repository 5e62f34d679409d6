"""Test fixtures: a real PostgreSQL, a migrated template database cloned for each test, the app.

PostgreSQL is $TEST_DATABASE_URL or $DATABASE_URL when set (its role needs CREATEDB), else a
throwaway embedded server started for the session. The helpers tests import are in
tests/support/.
"""

import asyncio
import os
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from yarl import URL

from service.db.migrations import apply_migrations
from service.db.pool import Database, open_database
from service.devdb import EmbeddedPostgres
from service.domain import tenants
from service.settings import Settings
from service.web.app import create_app
from service.worker.loop import Worker
from tests.support import (
    MIGRATIONS,
    Tenant,
    create_database,
    drop_database,
    make_settings,
    provisioned_namespace,
    with_database,
)
from tests.support.spec_check import SpecCheckedClient


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    given = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if given:
        yield given
        return
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres"), durable=False)
    url = server.start()
    try:
        yield url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def template_database(pg_admin_url: str) -> Iterator[str]:
    """A database migrated with the production migrations, to clone per test."""
    name = f"kvs_template_{os.getpid()}"

    async def create() -> None:
        admin = await asyncpg.connect(pg_admin_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        conn = await asyncpg.connect(with_database(pg_admin_url, name))
        try:
            await apply_migrations(conn, MIGRATIONS)
        finally:
            await conn.close()

    asyncio.run(create())
    yield name
    asyncio.run(drop_database(pg_admin_url, name))


@pytest.fixture
async def database_url(pg_admin_url: str, template_database: str) -> AsyncIterator[str]:
    url = await create_database(pg_admin_url, template_database)
    yield url
    await drop_database(pg_admin_url, URL(url).path.lstrip("/"))


@pytest.fixture
async def empty_database_url(pg_admin_url: str) -> AsyncIterator[str]:
    url = await create_database(pg_admin_url)
    yield url
    await drop_database(pg_admin_url, URL(url).path.lstrip("/"))


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url)


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    async with open_database(settings) as database:
        yield database


@pytest.fixture
async def make_client(aiohttp_server):
    """Serves an app on a real port; its client checks every answer against the spec."""
    clients = []

    async def make(app):
        client = SpecCheckedClient(await aiohttp_server(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


@pytest.fixture
async def client(make_client, settings: Settings):
    return await make_client(create_app(settings))


@pytest.fixture
async def tenant(db: Database) -> Tenant:
    tenant_id, key = await tenants.create_tenant(db, "tenant-a")
    return Tenant(tenant_id, key.token)


@pytest.fixture
async def other_tenant(db: Database) -> Tenant:
    tenant_id, key = await tenants.create_tenant(db, "tenant-b")
    return Tenant(tenant_id, key.token)


@pytest.fixture
def worker(db: Database, settings: Settings) -> Worker:
    """An in-process worker, driven step by step with run_once()."""
    return Worker(db, settings)


@pytest.fixture
async def namespace(db: Database, tenant: Tenant, settings: Settings):
    """A provisioned namespace of `tenant`, with TTL support."""
    return await provisioned_namespace(db, settings, tenant.id, "keys")


@pytest.fixture
async def no_ttl_namespace(db: Database, tenant: Tenant, settings: Settings):
    """A provisioned namespace of `tenant` without TTL support."""
    return await provisioned_namespace(db, settings, tenant.id, "no-ttl", ttl_support=False)
