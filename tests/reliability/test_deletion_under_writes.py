"""Deleting a namespace while its tenant keeps writing to it."""

import asyncio
import random
import time

import aiohttp

from service.web.app import create_app
from service.worker.loop import Worker
from tests.reliability.harness import random_body
from tests.support import key_url
from tests.support.workers import wait_until


async def test_no_write_acknowledged_after_the_delete_is_kept_and_no_row_is_left(
    aiohttp_server, settings, db, tenant, namespace
):
    """Pass: 16 clients PUT new keys without pause; the namespace's DELETE is acknowledged
    mid-stream while the worker runs. Every PUT that started after that acknowledgement is
    refused (409 or 404), none is a 2xx or a 500; once the worker is done, no key, storage
    record, job or namespace row of it is left, and its GET is 404."""
    server = await aiohttp_server(create_app(settings))
    worker = Worker(db, settings)
    worker_task = asyncio.create_task(worker.run())
    headers = {"Authorization": f"Bearer {tenant.token}"}
    deleted_at: list[float] = []
    outcomes: list[tuple[float, int]] = []  # (start, status)
    stop = asyncio.Event()

    async with aiohttp.ClientSession(base_url=server.make_url("")) as session:

        async def writer(number: int) -> None:
            rng = random.Random(number)
            written = 0
            while not stop.is_set():
                written += 1
                start = time.monotonic()
                async with session.put(
                    key_url(namespace, f"w{number}-{written}"),
                    data=random_body(rng, 8192),
                    headers=headers,
                ) as resp:
                    await resp.read()
                    outcomes.append((start, resp.status))

        writers = [asyncio.create_task(writer(n)) for n in range(16)]
        await asyncio.sleep(1.0)
        async with session.delete(f"/v2/storage/kvs/{namespace}", headers=headers) as resp:
            assert resp.status == 200
            deleted_at.append(time.monotonic())
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*writers)
        gone = await wait_until(
            lambda: db.fetchval("SELECT count(*) = 0 FROM namespaces WHERE id = $1", namespace)
        )
        async with session.get(f"/v2/storage/kvs/{namespace}", headers=headers) as resp:
            final_status = resp.status
    worker.stop()
    await asyncio.wait_for(worker_task, timeout=10)

    before = [status for start, status in outcomes if start < deleted_at[0]]
    after = [status for start, status in outcomes if start >= deleted_at[0]]
    print(
        f"{len(before)} PUTs before the DELETE was acknowledged, {len(after)} after: "
        f"{sorted(set(after))}"
    )
    assert before.count(201) > 0 and after
    assert set(after) <= {404, 409}
    assert gone and final_status == 404
    for table in ("kv_entries", "namespace_storage", "jobs"):
        assert await db.fetchval(f"SELECT count(*) FROM {table}") == 0, table
