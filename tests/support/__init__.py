"""What the tests share: databases, settings, tenants, `kvs` subprocesses, URLs, system tools.

Fixtures are in tests/conftest.py; everything a test imports is here.
"""

import asyncio
import os
import shutil
import socket
import sys
import uuid
from pathlib import Path
from urllib.parse import quote

import asyncpg
import pytest
from yarl import URL

from service.domain.namespaces import create_namespace
from service.domain.sealing import new_master_key
from service.settings import REPO_ROOT, Settings
from service.worker.loop import Worker

MIGRATIONS = REPO_ROOT / "migrations"


def with_database(url: str, name: str) -> str:
    return str(URL(url).with_path(f"/{name}"))


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
        # WAL_LOG copies the small template through the WAL: a fifth of FILE_COPY's time,
        # which checkpoints twice per clone (PostgreSQL 15+).
        clause = f' TEMPLATE "{template}" STRATEGY WAL_LOG' if template else ""
        await admin.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await admin.close()
    return with_database(admin_url, name)


# The secrets' master key of every test process (a fresh one per run).
TEST_MASTER_KEYS = new_master_key("test-1")


def make_settings(database_url: str, **overrides) -> Settings:
    """Settings for tests: fast polling and backoff, metrics on a free port (so that suites
    running side by side do not collide), a secrets master key, everything else as in
    production."""
    values = dict(
        database_url=database_url,
        secrets_master_keys=TEST_MASTER_KEYS,
        metrics_port=0,
        worker_poll_interval=0.2,
        worker_backoff_base=0.01,
        worker_backoff_max=0.05,
    )
    values.update(overrides)
    return Settings(**values)


class Tenant:
    def __init__(self, tenant_id: uuid.UUID, token: str) -> None:
        self.id = tenant_id
        self.token = token
        self.headers = {"Authorization": f"Bearer {token}"}


async def drain(worker: Worker) -> None:
    """Runs the worker until no job is due."""
    while await worker.run_once():
        pass


async def provisioned_namespace(db, settings: Settings, tenant_id, name: str, **options):
    """A namespace of the tenant, created and provisioned by an in-process worker."""
    ns = await create_namespace(db, tenant_id, name, **options)
    await drain(Worker(db, settings))
    return ns.id


def worker_env(database_url: str, **settings: str) -> dict[str, str]:
    """The environment for a `kvs worker` subprocess."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KVS_")}
    env["DATABASE_URL"] = database_url
    env["KVS_METRICS_PORT"] = env["KVS_WORKER_METRICS_PORT"] = "0"
    env["KVS_SECRETS_MASTER_KEYS"] = TEST_MASTER_KEYS
    env.update({f"KVS_{k.upper()}": v for k, v in settings.items()})
    return env


KVS = [sys.executable, "-m", "service"]
SRC = Path(__file__).resolve().parent.parent


async def start_kvs_serve(database_url: str, **settings: str):
    """A `kvs serve` subprocess on a free port, once it answers; (process, port)."""
    from tests.support.rawhttp import wait_until_serving

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


async def put(client, tenant: Tenant, ns, key, body=b"v", headers=None, params=None):
    """A PUT of a key's value with the tenant's key."""
    return await client.put(
        key_url(ns, key), data=body, params=params, headers={**tenant.headers, **(headers or {})}
    )


async def error_code(resp) -> str:
    """The Telnyx surface's error code of an answer."""
    return (await resp.json())["errors"][0]["code"]
