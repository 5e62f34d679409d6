"""How many Prometheus series the API and the worker export, before and after creating and
using many namespaces: the count must not grow with the data.

    .venv/bin/python bench/series.py [NAMESPACES]

Starts its own embedded PostgreSQL in a temporary directory and removes it after.
"""

import asyncio
import sys

import asyncpg
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from service.db.migrations import apply_migrations
from service.db.pool import open_database
from service.devdb import temporary_postgres
from service.domain import tenants
from service.settings import REPO_ROOT, Settings
from service.web.app import create_app
from service.web.appkeys import METRICS
from service.worker.loop import Worker
from service.worker.metrics import WorkerMetrics
from service.worker.periodic import refresh_stats, sweep_expired


def series(exposition: bytes) -> int:
    return sum(len(f.samples) for f in text_string_to_metric_families(exposition.decode()))


async def run(url: str, namespaces: int) -> None:
    conn = await asyncpg.connect(url)
    await apply_migrations(conn, REPO_ROOT / "migrations")
    await conn.close()
    settings = Settings(database_url=url, metrics_port=0)
    worker_metrics = WorkerMetrics()
    async with (
        open_database(settings, metrics=worker_metrics) as db,
        TestClient(TestServer(create_app(settings))) as api,
    ):
        _, key = await tenants.create_tenant(db, "bench")
        headers = {"Authorization": f"Bearer {key.token}"}
        worker = Worker(db, settings, metrics=worker_metrics)

        async def create_and_use(count: int, prefix: str) -> None:
            ids = []
            for i in range(count):
                resp = await api.post(
                    "/v2/storage/kvs", json={"name": f"{prefix}{i}"}, headers=headers
                )
                ids.append((await resp.json())["data"]["id"])
            while await worker.run_once():
                pass
            for ns in ids:
                await api.put(f"/v2/storage/kvs/{ns}/keys/k", data=b"v", headers=headers)
                await api.get(f"/v2/storage/kvs/{ns}/keys/k", headers=headers)
                await api.get(f"/v2/storage/kvs/{ns}/keys/missing", headers=headers)
                await api.get(f"/v2/storage/kvs/{ns}/keys", headers=headers)
                await api.get(f"/v2/storage/kvs/{ns}", headers=headers)
            await sweep_expired(worker.context)
            await refresh_stats(worker.context)

        def counts() -> tuple[int, int]:
            return series(api.app[METRICS].exposition()), series(worker_metrics.exposition())

        await create_and_use(1, "first-")
        before = counts()
        await create_and_use(namespaces, "more-")
        after = counts()
        print(f"series exported by (API, worker): with 1 namespace {before}, ", end="")
        print(f"with {namespaces + 1} namespaces {after}")
        if before != after:
            raise SystemExit("the series count grew with the namespaces")


def main() -> None:
    namespaces = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    with temporary_postgres(durable=False) as server:
        asyncio.run(run(server.url(), namespaces))


if __name__ == "__main__":
    main()
