"""Helpers for tests that run `kvs worker` as real processes."""

import asyncio
import json
import signal
import time
from collections.abc import Callable

import asyncpg

from service.db.pool import Database
from service.domain.namespaces import create_namespace
from tests.support import KVS, worker_env


class WorkerProcess:
    """A `kvs worker` subprocess whose JSON log lines the test can wait for and read."""

    def __init__(self, database_url: str, **settings: str) -> None:
        self.env = worker_env(database_url, **settings)
        self.proc: asyncio.subprocess.Process | None = None
        self.logs: list[dict] = []

    async def start(self) -> "WorkerProcess":
        self.proc = await asyncio.create_subprocess_exec(
            *KVS, "worker", env=self.env, stderr=asyncio.subprocess.PIPE
        )
        await self.wait_for(lambda e: e["msg"] == "worker started")
        return self

    async def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        """Reads log lines until one satisfies `predicate`; returns it."""
        async with asyncio.timeout(timeout):
            while True:
                line = await self.proc.stderr.readline()
                if not line:
                    raise AssertionError(f"worker exited; its log: {self.logs}")
                entry = json.loads(line)
                self.logs.append(entry)
                if predicate(entry):
                    return entry

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()

    async def stop(self) -> int:
        """SIGTERM, then reads the rest of the log; returns the exit code."""
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        rest = await self.proc.stderr.read()
        self.logs.extend(json.loads(line) for line in rest.splitlines() if line.strip())
        return await self.proc.wait()

    def jobs(self, outcome: str | None = None) -> list[dict]:
        return [
            e
            for e in self.logs
            if e["msg"] == "job" and (outcome is None or e["outcome"] == outcome)
        ]


async def new_namespace(db: Database, tenant_id, name: str = "ns", ttl_support: bool = True):
    return await create_namespace(db, tenant_id, name, ttl_support=ttl_support)


async def add_keys(db: Database | asyncpg.Connection, namespace_id, count: int) -> None:
    """Inserts `count` one-byte keys straight into the table."""
    await db.execute(
        "INSERT INTO kv_entries (namespace_id, key, value, content_type, size_bytes, version,"
        " created_version) SELECT $1, 'key-' || g, '\\x00', 'application/octet-stream', 1, v, v"
        " FROM generate_series(1, $2) g, LATERAL (SELECT nextval('kv_versions') AS v) s",
        namespace_id,
        count,
    )


async def status_of(db: Database, namespace_id) -> str | None:
    return await db.fetchval("SELECT status FROM namespaces WHERE id = $1", namespace_id)


async def wait_until(check, timeout: float = 10.0, interval: float = 0.02):
    """Polls the async `check` until it returns something truthy; returns that."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        await asyncio.sleep(interval)
