"""TTL under sweeping: keys written with a 1 s TTL, most rewritten around their expiry, while
two workers sweep and readers look at the keys nearest to expiring."""

import asyncio
import os
import random
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import asyncpg

from tests.reliability.harness import body_hash
from tests.support import key_url, start_kvs_serve, start_kvs_worker, stop_processes
from tests.support.workers import wait_until

SECONDS = 15.0
IN_FLIGHT = 150  # keys between their first write and their rewrite at any moment
READERS = 8
# The service's clock and ours are the same system clock; this only absorbs rounding.
TOLERANCE = 0.02


def wall(rfc3339: str) -> float:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp()


@dataclass
class Life:
    """One key: written with TTL 1 s, then (unless its fate is `expire`) rewritten around its
    expiry without TTL (`keep`) or with TTL 60 s (`extend`)."""

    key: str
    fate: str
    first: str  # body hash of the TTL'd value
    expires: float  # its X-Expires-At, wall clock
    second: str | None = None
    second_status: int | None = None
    second_acked: float | None = None  # wall clock
    second_offset: float | None = None  # when the rewrite was sent, relative to `expires`


@dataclass
class Read:
    key: str
    start: float
    end: float
    status: int
    value: str | None


async def test_keys_rewritten_near_expiry_survive_sweeping_and_expired_ones_are_never_served(
    database_url, tenant, namespace
):
    """Pass: for 15 s, 150 keys at a time are written with TTL 1 s and two thirds of them are
    rewritten from 150 ms before to 150 ms after their expiry (half without TTL, half with TTL
    60 s) while two `kvs worker`s sweep (batches of 25 every 100 ms, so that expired rows stay
    long enough to be served if anything served them) and 8 readers GET the keys nearest to
    expiring and list them. No read or listing started after a value's expiry shows it, no read
    ended before its expiry misses it, no read after an acknowledged rewrite misses the rewrite;
    every rewrite is acknowledged (both 200, landing before the expiry, and 201, after) and reads
    back exactly afterwards; the rest are swept within 2 s of expiring. Only 200/201/404."""
    server, port = await start_kvs_serve(database_url)
    sweep = dict(sweep_interval="0.1", sweep_batch_size="25", log_level="WARNING")
    workers = [await start_kvs_worker(database_url, **sweep) for _ in range(2)]
    lives: list[Life] = []
    reads: list[Read] = []
    listings: list[tuple[float, list[float]]] = []  # (start, every expiry listed)
    statuses: Counter = Counter()
    sweep_lag: list[float] = []  # the oldest expired row's age, sampled
    stop = asyncio.Event()
    rng = random.Random(7)
    headers = {"Authorization": f"Bearer {tenant.token}"}
    admin = await asyncpg.connect(database_url)
    try:
        async with aiohttp.ClientSession(
            base_url=f"http://127.0.0.1:{port}", headers=headers
        ) as session:

            async def put(key: str, body: bytes, ttl: int | None) -> aiohttp.ClientResponse:
                params = {"ttl_secs": str(ttl)} if ttl else {}
                async with session.put(key_url(namespace, key), data=body, params=params) as r:
                    await r.read()
                statuses["PUT", r.status] += 1
                return r

            async def live(n: int, slot: asyncio.Semaphore) -> None:
                try:
                    fate = rng.choice(["expire", "keep", "extend"])
                    first = os.urandom(rng.randrange(1, 2048))
                    resp = await put(f"t{n}", first, 1)
                    if resp.status != 201:
                        return
                    life = Life(f"t{n}", fate, body_hash(first), wall(resp.headers["X-Expires-At"]))
                    lives.append(life)
                    if fate == "expire":
                        return
                    offset = rng.uniform(-0.15, 0.15)
                    await asyncio.sleep(max(0.0, life.expires + offset - time.time()))
                    second = os.urandom(rng.randrange(1, 2048))
                    life.second_offset = time.time() - life.expires
                    resp = await put(life.key, second, 60 if fate == "extend" else None)
                    life.second, life.second_status = body_hash(second), resp.status
                    if resp.status in (200, 201):
                        life.second_acked = time.time()
                finally:
                    slot.release()

            async def reader() -> None:
                while not stop.is_set():
                    now = time.time()
                    near = [
                        life for life in lives[-3 * IN_FLIGHT :] if abs(life.expires - now) < 0.3
                    ]
                    if not near:
                        await asyncio.sleep(0.01)
                        continue
                    life = rng.choice(near)
                    start = time.time()
                    if rng.random() < 0.1:
                        async with session.get(
                            key_url(namespace, listing=True), params={"prefix": life.key}
                        ) as resp:
                            listed = (await resp.json())["data"]
                        statuses["LIST", resp.status] += 1
                        expiries = [
                            wall(item["expires_at"]) for item in listed if item["expires_at"]
                        ]
                        listings.append((start, expiries))
                        continue
                    async with session.get(key_url(namespace, life.key)) as resp:
                        body = await resp.read()
                    statuses["GET", resp.status] += 1
                    value = body_hash(body) if resp.status == 200 else None
                    reads.append(Read(life.key, start, time.time(), resp.status, value))

            async def watch_sweeping() -> None:
                while not stop.is_set():
                    sweep_lag.append(
                        await admin.fetchval(
                            "SELECT coalesce(extract(epoch FROM now() - min(expires_at)), 0)"
                            " FROM kv_entries WHERE expires_at <= now()"
                        )
                    )
                    await asyncio.sleep(0.25)

            background = [asyncio.create_task(reader()) for _ in range(READERS)]
            background.append(asyncio.create_task(watch_sweeping()))
            slot = asyncio.Semaphore(IN_FLIGHT)
            running: set[asyncio.Task] = set()
            started, n = time.monotonic(), 0
            while time.monotonic() - started < SECONDS:
                await slot.acquire()
                n += 1
                task = asyncio.create_task(live(n, slot))
                running.add(task)
                task.add_done_callback(running.discard)
            await asyncio.gather(*running)
            stop.set()
            await asyncio.gather(*background)

            # Every key left to expire is swept; nothing else is.
            expired = [life.key for life in lives if life.fate == "expire"]
            swept = await wait_until(
                lambda: admin.fetchval(
                    "SELECT count(*) = 0 FROM kv_entries WHERE key = ANY($1)", expired
                ),
                timeout=10,
            )
            final = {}
            for life in lives:
                async with session.get(key_url(namespace, life.key)) as resp:
                    final[life.key] = (
                        resp.status,
                        body_hash(await resp.read()),
                        resp.headers.get("X-Expires-At"),
                    )
    finally:
        await admin.close()
        await stop_processes(server, *workers)

    by_key = {life.key: life for life in lives}
    served_expired = [
        r
        for r in reads
        if r.value == by_key[r.key].first and r.start > by_key[r.key].expires + TOLERANCE
    ]
    lost_early = [r for r in reads if r.status == 404 and r.end < by_key[r.key].expires - TOLERANCE]
    lost_rewrite = [
        r
        for r in reads
        if r.status == 404
        and by_key[r.key].second_acked is not None
        and r.start > by_key[r.key].second_acked
    ]
    unknown = [
        r
        for r in reads
        if r.status == 200 and r.value not in (by_key[r.key].first, by_key[r.key].second)
    ]
    listed_expired = [
        expiry for start, expiries in listings for expiry in expiries if expiry < start - TOLERANCE
    ]
    rewrites = [life for life in lives if life.fate != "expire"]
    landed = Counter(life.second_status for life in rewrites)
    close = sum(1 for life in rewrites if abs(life.second_offset) < 0.02)
    print(
        f"{len(lives)} keys with TTL 1 s in {SECONDS:.0f} s, {len(rewrites)} rewritten "
        f"({landed[200]} before expiry: 200, {landed[201]} after: 201; {close} within 20 ms "
        f"of it); {len(reads)} reads, {len(listings)} listings; statuses {dict(statuses)}; "
        f"oldest expired row at most {max(sweep_lag):.2f} s old"
    )
    assert set(statuses) <= {(m, s) for m in ("PUT", "GET", "LIST") for s in (200, 201, 404)}
    assert not served_expired, served_expired[:5]
    assert not lost_early, lost_early[:5]
    assert not lost_rewrite, lost_rewrite[:5]
    assert not unknown, unknown[:5]
    assert not listed_expired, listed_expired[:5]
    assert landed[200] > 0 and landed[201] > 0 and set(landed) <= {200, 201}, landed
    assert swept and max(sweep_lag) < 2.0
    for life in lives:
        status, value, expiry = final[life.key]
        if life.fate == "expire":
            assert status == 404, life
        else:
            assert (status, value) == (200, life.second), life
            assert (expiry is None) == (life.fate == "keep"), life
