"""Test fixtures: a real PostgreSQL, a migrated template database cloned for each test, the app.

PostgreSQL is $TEST_DATABASE_URL or $DATABASE_URL when set (its role needs CREATEDB), else a
throwaway embedded server started for the session.
"""

import asyncio
import os
import shutil
import socket
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest
from yarl import URL

from service import tenants
from service.app import create_app
from service.db import Database, open_database
from service.devdb import EmbeddedPostgres
from service.migrations import apply_migrations
from service.models import NamespaceCreate
from service.namespaces import create_namespace
from service.settings import REPO_ROOT, Settings
from service.worker import Worker
from tests.spec_check import SpecCheckedClient

MIGRATIONS = REPO_ROOT / "migrations"


def with_database(url: str, name: str) -> str:
    return str(URL(url).with_path(f"/{name}"))


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


async def drop_database(admin_url: str, name: str) -> None:
    admin = await asyncpg.connect(admin_url)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def create_database(admin_url: str, template: str | None = None) -> str:
    """A new database (a clone of `template`, or empty); returns its URL."""
    name = f"kvs_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(admin_url)
    try:
        clause = f' TEMPLATE "{template}" STRATEGY FILE_COPY' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await admin.close()
    return with_database(admin_url, name)


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


def make_settings(database_url: str, **overrides) -> Settings:
    """Settings for tests: fast polling and backoff, everything else as in production."""
    values = dict(
        database_url=database_url,
        worker_poll_interval=0.2,
        worker_backoff_base=0.01,
        worker_backoff_max=0.05,
    )
    values.update(overrides)
    return Settings(**values)


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


class Tenant:
    def __init__(self, tenant_id: uuid.UUID, token: str) -> None:
        self.id = tenant_id
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"}


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


async def drain(worker: Worker) -> None:
    """Runs the worker until no job is due."""
    while await worker.run_once():
        pass


def worker_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment for a `kvs worker` subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVS_")}
    env["DATABASE_URL"] = database_url
    env["KVS_METRICS_PORT"] = env["KVS_WORKER_METRICS_PORT"] = "0"
    env.update({f"KVS_{k.upper()}": v for k, v in settings.items()})
    return env


KVS = [sys.executable, "-m", "service"]
SRC = Path(__file__).resolve().parent.parent


async def start_kvs_serve(database_url: str, **settings: str):
    """A `kvs serve` subprocess on a free port, once it answers; (process, port)."""
    from tests.rawhttp import wait_until_serving

    port = closed_port()
    env = worker_env(database_url, port=str(port), log_level="WARNING", **settings)
    server = await asyncio.create_subprocess_exec(*KVS, "serve", env=env)
    await wait_until_serving(port)
    return server, port


async def start_kvs_worker(database_url: str, **settings: str) -> asyncio.subprocess.Process:
    """A `kvs worker` subprocess (its log on this process's stderr)."""
    return await asyncio.create_subprocess_exec(
        *KVS, "worker", env=worker_env(database_url, **settings)
    )


async def stop_processes(*procs: asyncio.subprocess.Process) -> None:
    """SIGTERM to each process, then waits for them all (they shut down side by side)."""
    for proc in procs:
        if proc.returncode is None:
            proc.terminate()
    for proc in procs:
        await proc.wait()


def require_tool(command: str, debian_package: str | None) -> str:
    """The path of a system tool a test needs: skipped locally when it is missing, a failure
    in CI (.ci/run installs it)."""
    path = shutil.which(command)
    if path is None:
        how = f"apt-get install {debian_package}" if debian_package else "see its documentation"
        if os.environ.get("CI"):
            pytest.fail(f"{command} is missing in CI ({how} in .ci/run)")
        pytest.skip(f"{command} not installed ({how})")
    return path


def children_of(pid: int) -> list[int]:
    """The PIDs of a process's children (Linux)."""
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [int(child) for child in children.read().split()]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def key_url(namespace_id, key: str = "", *, listing: bool = False) -> URL:
    """The URL of a key, with every character that a client could rewrite percent-encoded.

    Dots are encoded too: an HTTP client would otherwise resolve `a/../b` to `b`.
    """
    base = f"/v2/storage/kvs/{namespace_id}/keys"
    if listing:
        return URL(base)
    return URL(f"{base}/{quote(key, safe='').replace('.', '%2E')}", encoded=True)


@pytest.fixture
async def namespace(db: Database, tenant: Tenant, settings: Settings):
    """A provisioned namespace of `tenant`, with TTL support."""
    ns = await create_namespace(db, tenant.id, NamespaceCreate(name="keys"))
    await drain(Worker(db, settings))
    return ns.id


@pytest.fixture
async def no_ttl_namespace(db: Database, tenant: Tenant, settings: Settings):
    """A provisioned namespace of `tenant` without TTL support."""
    ns = await create_namespace(db, tenant.id, NamespaceCreate(name="no-ttl", ttl_support=False))
    await drain(Worker(db, settings))
    return ns.id
