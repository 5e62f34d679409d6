"""Rotating the secrets' master key while clients read and write secrets: how long the worker
takes to re-wrap every data key, and what it does to the clients' rate and latency.

    .venv/bin/python bench/rotation.py [SECRETS]

Prefills SECRETS (100,000) secrets of 1 KiB under an old master key, starts `kvs serve` and
`kvs worker` with a new key first, runs wrk (80 % secret reads, 20 % writes) for a while
before the rotation and then through it. Starts its own embedded PostgreSQL in a temporary
directory and removes it after.
"""

import asyncio
import os
import sys
import threading
import time

import asyncpg
from run import BENCH, CONNECTIONS, Load, copy_secrets, free_port, process, wrk

from service.db.migrations import apply_migrations
from service.db.pool import open_database
from service.devdb import temporary_postgres
from service.domain import secrets, tenants
from service.domain.sealing import MasterKeys, new_master_key
from service.settings import REPO_ROOT, Settings

OLD, NEW = new_master_key("old"), new_master_key("new")
BATCH = Settings.model_fields["secret_rotation_batch_size"].default
BEFORE_SECONDS = 10


async def prefill(dsn: str, count: int) -> str:
    conn = await asyncpg.connect(dsn)
    await apply_migrations(conn, REPO_ROOT / "migrations")
    async with open_database(Settings(database_url=dsn, metrics_port=0)) as db:
        tenant, key = await tenants.create_tenant(db, "bench")
    started = time.monotonic()
    await copy_secrets(conn, tenant, count, MasterKeys.parse(OLD))
    await conn.execute("CHECKPOINT")
    await conn.close()
    print(f"sealed and stored {count:,} secrets in {time.monotonic() - started:.1f} s")
    return key.token


async def rotate(dsn: str) -> tuple[float, secrets.Rotation, dict[str, int]]:
    """Requests the rotation and waits for the worker to finish it: (seconds, the rotation,
    data keys per master key after)."""
    async with open_database(Settings(database_url=dsn, metrics_port=0)) as db:
        started = time.monotonic()
        await secrets.request_rotation(db, "new")
        rotation = await secrets.latest_rotation(db)
        while rotation.finished_at is None:
            await asyncio.sleep(0.05)
            rotation = await secrets.latest_rotation(db)
        took = time.monotonic() - started
        return took, rotation, await secrets.master_key_usage(db)


def describe(name: str, load: Load) -> str:
    return (
        f"{name}: {load.rate:,.0f} requests/s, p50 {load.p50_ms:.2f} ms, "
        f"p99 {load.p99_ms:.2f} ms, {load.failures} failed"
    )


def main() -> None:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    with temporary_postgres() as postgres:
        dsn = postgres.url()
        token = asyncio.run(prefill(dsn, count))
        port = free_port()
        env = {
            **os.environ,
            "DATABASE_URL": dsn,
            "KVS_PORT": str(port),
            "KVS_METRICS_PORT": "0",
            "KVS_WORKER_METRICS_PORT": "0",
            "KVS_PROCESSES": str(os.cpu_count() or 1),
            "KVS_SECRETS_MASTER_KEYS": f"{NEW},{OLD}",
            "KVS_SECRETS_PER_TENANT": str(count),
            "KVS_WORKER_POLL_INTERVAL": "0.5",
            "KVS_SECRET_ROTATION_BATCH_SIZE": str(BATCH),
        }
        base = f"http://127.0.0.1:{port}"
        lua = BENCH / "lua" / "kv.lua"
        args = ("smixed", "-", token, count, 1024)
        with (
            process(sys.executable, "-m", "service", "serve", env=env, port=port),
            process(sys.executable, "-m", "service", "worker", env=env),
        ):
            wrk(base, lua, *args, seconds=2)  # warm-up
            before = wrk(base, lua, *args, seconds=BEFORE_SECONDS)
            result: dict = {}
            rotation = threading.Thread(target=lambda: result.update(r=asyncio.run(rotate(dsn))))
            rotation.start()
            started = time.monotonic()
            loads = []
            while rotation.is_alive():
                loads.append(wrk(base, lua, *args, seconds=5))
            rotation.join()
            during_seconds = time.monotonic() - started
        took, done, usage = result["r"]
        print(
            f"rotation of {count:,} secrets ({done.rewrapped:,} data keys re-wrapped, "
            f"{done.passes} pass{'' if done.passes == 1 else 'es'}, batches of {BATCH:,}) "
            f"took {took:.1f} s beside {CONNECTIONS} clients; "
            f"data keys per master key after: {usage}"
        )
        print(describe("clients before", before))
        rate = sum(load.rate for load in loads) / len(loads)
        p99 = max(load.p99_ms for load in loads)
        failures = sum(load.failures for load in loads)
        print(
            f"clients during (the {len(loads)} wrk runs of 5 s over {during_seconds:.0f} s): "
            f"{rate:,.0f} requests/s on average ({rate / before.rate:.2f} of before), "
            f"worst p99 {p99:.2f} ms, {failures} failed"
        )


if __name__ == "__main__":
    main()
