"""Sustained load: a steady 80 % GET / 20 % PUT for a minute in CI, five minutes with
`make reliability-long` (KVS_RELIABILITY_SECONDS sets it)."""

import asyncio
import os
import random
import statistics
import time

import aiohttp
import asyncpg

from tests.support import key_url, start_kvs_serve, start_kvs_worker, stop_processes

SECONDS = float(os.environ.get("KVS_RELIABILITY_SECONDS", "60"))
RATE = 200  # requests a second, offered at a steady pace whatever the answers take
KEYS = 500


def tree(pid: int) -> list[int]:
    """A process and its children (`kvs serve` forks its serving processes)."""
    with open(f"/proc/{pid}/task/{pid}/children") as children:
        return [pid, *(int(child) for child in children.read().split())]


def rss_mib(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as status:
            total += next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return total / 1024


def descriptors(pids: list[int]) -> int:
    return sum(len(os.listdir(f"/proc/{pid}/fd")) for pid in pids)


async def test_a_steady_mixed_load_gives_no_unexpected_answer_and_leaves_resources_flat(
    database_url, tenant, namespace
):
    """Pass: at 200 requests a second (80 % GET, 20 % PUT of 0 B to 4 KiB over 500 keys,
    prefilled) for KVS_RELIABILITY_SECONDS (60): every answer 200 or 201, at least 95 % of the
    offered rate served; after the first quarter, the serving processes' RSS stays within 5 %
    (or 8 MiB) of its mean, their descriptors and the database's sessions within 10 of where
    they were."""
    server, port = await start_kvs_serve(database_url, processes="2")
    worker = await start_kvs_worker(database_url)
    samples: list[tuple[float, float, int, int]] = []  # (time, RSS MiB, descriptors, sessions)
    statuses: dict[object, int] = {}
    latencies: list[float] = []
    try:
        headers = {"Authorization": f"Bearer {tenant.token}"}
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}", headers=headers
        ) as session:
            for n in range(KEYS):
                async with session.put(key_url(namespace, f"s{n}"), data=b"seed") as resp:
                    assert resp.status == 201
            pids = tree(server.pid)
            admin = await asyncpg.connect(database_url)
            started = time.monotonic()
            rng = random.Random(13)

            async def one(n: int) -> None:
                key = key_url(namespace, f"s{rng.randrange(KEYS)}")
                t0 = time.monotonic()
                try:
                    if rng.random() < 0.8:
                        async with session.get(key) as resp:
                            await resp.read()
                    else:
                        body = os.urandom(rng.randrange(4097))
                        async with session.put(key, data=body) as resp:
                            await resp.read()
                    status = resp.status
                except (aiohttp.ClientError, TimeoutError) as err:
                    status = type(err).__name__
                latencies.append(time.monotonic() - t0)
                statuses[status] = statuses.get(status, 0) + 1

            async def sample() -> None:
                while time.monotonic() - started < SECONDS:
                    sessions = await admin.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    )
                    samples.append(
                        (time.monotonic() - started, rss_mib(pids), descriptors(pids), sessions)
                    )
                    await asyncio.sleep(SECONDS / 30)

            sampler = asyncio.create_task(sample())
            running: set[asyncio.Task] = set()
            for n in range(int(SECONDS * RATE)):
                # Open loop: request n goes at its scheduled moment, however long others take.
                await asyncio.sleep(max(0.0, started + n / RATE - time.monotonic()))
                task = asyncio.create_task(one(n))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*running)
            elapsed = time.monotonic() - started
            await sampler
            await admin.close()
    finally:
        await stop_processes(server, worker)

    served = sum(statuses.values())
    latencies.sort()
    steady = [s for s in samples if s[0] >= SECONDS / 4]
    rss = [s[1] for s in steady]
    fds = [s[2] for s in steady]
    sessions = [s[3] for s in steady]
    print(
        f"{served} requests in {elapsed:.0f} s ({served / elapsed:.0f}/s): {statuses}; "
        f"p50 {latencies[len(latencies) // 2] * 1000:.1f} ms, "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1000:.1f} ms; after warm-up RSS "
        f"{min(rss):.1f} to {max(rss):.1f} MiB, descriptors {min(fds)} to {max(fds)}, "
        f"database sessions {min(sessions)} to {max(sessions)}"
    )
    assert set(statuses) <= {200, 201}, statuses
    assert served / elapsed >= 0.95 * RATE
    assert max(rss) - min(rss) <= max(0.05 * statistics.mean(rss), 8.0)
    assert max(fds) - min(fds) <= 10
    assert max(sessions) - min(sessions) <= 10
