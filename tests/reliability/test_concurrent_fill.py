"""Writers racing to fill a namespace that has max_bytes."""

import asyncio
import random
import sys

import aiohttp

from tests.support import key_url, start_kvs_serve, stop_processes

WRITERS = 32
ROUNDS = 6
MAX_BYTES = 40_000


async def test_32_writers_racing_to_fill_a_namespace_never_take_it_over_max_bytes(
    database_url, db, tenant, namespace
):
    """Pass: against a `kvs serve` of two processes, 32 clients, each on its own connection,
    write new keys of 1 to 2,000 bytes into a namespace with max_bytes 40,000 until each has
    been refused twice; then every key is deleted, and the race is run again, six times.
    Within a round nothing is deleted or shrunk, so the usage only grows and any moment over
    the limit lasts to the round's end. After each round the usage equals what the rows hold
    and is at most max_bytes; every refusal is a 409 75012."""
    server, port = await start_kvs_serve(database_url, processes="2", db_pool_max="16")
    headers = {"Authorization": f"Bearer {tenant.token}"}
    base = f"http://127.0.0.1:{port}"
    written = refused = 0
    codes: set[str] = set()
    peaks = []

    async def writer(session: aiohttp.ClientSession, round_: int, seed: int) -> None:
        nonlocal written, refused
        rng = random.Random(f"{round_}-{seed}")
        refusals = i = 0
        while refusals < 2:
            i += 1
            url = key_url(namespace, f"r{round_}-w{seed}-{i}")
            async with session.put(url, data=b"x" * rng.randrange(1, 2001), headers=headers) as r:
                if r.status == 409:
                    codes.add((await r.json())["errors"][0]["code"])
                    refusals += 1
                    refused += 1
                else:
                    assert r.status == 201, await r.text()
                    written += 1

    async def stored() -> tuple[int, int]:
        row = await db.fetchrow(
            "SELECT count(*), coalesce(sum(size_bytes), 0) FROM kv_entries WHERE namespace_id = $1",
            namespace,
        )
        return row[0], row[1]

    try:
        async with aiohttp.ClientSession(base) as session:
            ns_url = f"/v2/storage/kvs/{namespace}"
            async with session.patch(ns_url, json={"max_bytes": MAX_BYTES}, headers=headers) as r:
                assert r.status == 200
            sessions = [aiohttp.ClientSession(base) for _ in range(WRITERS)]  # one connection each
            try:
                for round_ in range(ROUNDS):
                    await asyncio.gather(
                        *(writer(own, round_, seed) for seed, own in enumerate(sessions))
                    )
                    async with session.get(ns_url, headers=headers) as r:
                        usage = (await r.json())["data"]["usage"]
                    assert (usage["keys"], usage["bytes"]) == await stored()
                    peaks.append(usage["bytes"])
                    async with session.get(f"{ns_url}/keys", headers=headers) as r:
                        keys = [item["key"] for item in (await r.json())["data"]]
                    for key in keys:
                        async with session.delete(key_url(namespace, key), headers=headers) as r:
                            assert r.status == 204
            finally:
                for own in sessions:
                    await own.close()
    finally:
        await stop_processes(server)
    print(
        f"\n{WRITERS} writers, {ROUNDS} rounds: {written} writes acknowledged, {refused} refused"
        f" (409 75012); usage at each round's end (max_bytes {MAX_BYTES}): {peaks}, each equal"
        " to what the rows held",
        file=sys.stderr,
    )
    assert max(peaks) <= MAX_BYTES
    assert codes == {"75012"}
    assert await stored() == (0, 0)
