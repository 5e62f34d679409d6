"""Deleting a namespace with a million keys, while other traffic runs: how long the deletion
takes and what it does to the latency of requests on another namespace.

    .venv/bin/python bench/big_delete.py [KEYS]

Starts its own durable embedded PostgreSQL in a temporary directory and removes it after.
"""

import asyncio
import sys
import time

import asyncpg

from service.db.migrations import apply_migrations
from service.db.pool import open_database
from service.devdb import temporary_postgres
from service.domain import tenants
from service.domain.namespaces import create_namespace, delete_namespace, get_namespace
from service.settings import REPO_ROOT, Settings
from service.worker.loop import Worker

UPSERT = (
    "INSERT INTO kv_entries (namespace_id, key, value, content_type, size_bytes, version,"
    " created_version) VALUES ($1, $2, '\\x00', 'a/b', 1, 1, 1) ON CONFLICT (namespace_id, key)"
    " DO UPDATE SET value = excluded.value"
)


def quantile(values: list[float], q: float) -> float:
    return sorted(values)[max(0, int(len(values) * q) - 1)] * 1000


async def run(url: str, keys: int) -> None:
    conn = await asyncpg.connect(url)
    await apply_migrations(conn, REPO_ROOT / "migrations")
    await conn.close()
    settings = Settings(database_url=url, metrics_port=0)
    async with open_database(settings) as db:
        tenant_id, _ = await tenants.create_tenant(db, "bench")
        big = await create_namespace(db, tenant_id, "big")
        other = await create_namespace(db, tenant_id, "other")
        worker = Worker(db, settings)
        while await worker.run_once():
            pass
        started = time.monotonic()
        async with db.pool.acquire() as c:
            await c.execute(
                "INSERT INTO kv_entries (namespace_id, key, value, content_type, size_bytes,"
                " version, created_version) SELECT $1, 'key-' || g, repeat('x', 100)::bytea,"
                " 'text/plain', 100, g, g FROM generate_series(1, $2) g",
                big.id,
                keys,
                timeout=3600,
            )
        print(f"inserted {keys} keys in {time.monotonic() - started:.1f} s")

        async def traffic(latencies: list[float], stop: asyncio.Event) -> None:
            i = 0
            while not stop.is_set():
                i += 1
                t0 = time.monotonic()
                await get_namespace(db, tenant_id, other.id)
                await db.execute(UPSERT, other.id, f"k{i % 100}")
                latencies.append(time.monotonic() - t0)

        before, during = [], []
        stop = asyncio.Event()
        task = asyncio.create_task(traffic(before, stop))
        await asyncio.sleep(5)
        stop.set()
        await task
        await delete_namespace(db, tenant_id, big.id)
        stop = asyncio.Event()
        task = asyncio.create_task(traffic(during, stop))
        started = time.monotonic()
        while await worker.run_once():
            pass
        took = time.monotonic() - started
        stop.set()
        await task
        print(
            f"deleted the namespace and its {keys} keys in {took:.1f} s "
            f"(batches of {settings.delete_batch_size})"
        )
        for name, lat in (("before", before), ("during", during)):
            print(
                f"other traffic {name}: {len(lat)} requests, p50 {quantile(lat, 0.5):.2f} ms, "
                f"p99 {quantile(lat, 0.99):.2f} ms, max {max(lat) * 1000:.1f} ms"
            )


def main() -> None:
    keys = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    with temporary_postgres() as server:
        asyncio.run(run(server.url(), keys))


if __name__ == "__main__":
    main()
