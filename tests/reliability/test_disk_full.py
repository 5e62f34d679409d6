"""The database's disk filling up under writes, then space being freed."""

import asyncio
import contextlib
import os
import random
import time
from pathlib import Path

import aiohttp

from service.web.app import create_app
from tests.reliability.harness import body_hash, own_postgres, small_disk, tenant_with_namespace
from tests.support import key_url, make_settings

HEADROOM = 4 * 1024 * 1024  # left free on the data volume when the load starts
RECOVERY_SECONDS = 5.0


def free_bytes(path: Path) -> int:
    stats = os.statvfs(path)
    return stats.f_bavail * stats.f_frsize


def fill(disk: Path, leave: int) -> Path:
    """A ballast file taking all but `leave` bytes of the disk's free space."""
    ballast = disk / "ballast"
    with open(ballast, "wb") as file:
        os.posix_fallocate(file.fileno(), 0, free_bytes(disk) - leave)
    return ballast


async def test_a_full_disk_refuses_writes_with_507_keeps_reads_and_recovers_when_freed(
    aiohttp_server, tmp_path
):
    """Pass: with PostgreSQL's data on a 64 MiB tmpfs (its write-ahead log on a volume of its
    own, as production setups keep it) and a ballast file leaving 4 MiB free, 8 clients PUT new
    keys of 64 to 256 KiB until writes have been refused for 2 s, while 4 clients GET keys
    stored before: every write is 201 or 507 in the contract's shape (75011), every read 200
    with the stored bytes, a DELETE still works and /readyz stays ready; once the ballast is
    removed a write succeeds within 5 s; afterwards every acknowledged write reads back exactly
    and every refused or deleted one is absent."""
    with small_disk(tmp_path / "data", 64) as disk:
        async with own_postgres(disk, wal=tmp_path / "wal") as pg:
            tenant, namespace = await tenant_with_namespace(pg.url())
            server = await aiohttp_server(create_app(make_settings(pg.url())))
            headers = {"Authorization": f"Bearer {tenant.token}"}
            async with aiohttp.ClientSession(
                base_url=server.make_url(""), headers=headers
            ) as session:

                async def put(key: str, body: bytes, content_type: str) -> tuple[int, dict]:
                    async with session.put(
                        key_url(namespace, key), data=body, headers={"Content-Type": content_type}
                    ) as resp:
                        return resp.status, await resp.json() if resp.status >= 400 else {}

                async def get(key: str) -> tuple[int, str | None, str | None]:
                    async with session.get(key_url(namespace, key)) as resp:
                        body = await resp.read()
                        if resp.status != 200:
                            return resp.status, None, None
                        return 200, body_hash(body), resp.headers["Content-Type"]

                before = {}
                for n in range(20):
                    body = os.urandom(4096)
                    assert (await put(f"before{n}", body, f"application/x-b{n}"))[0] == 201
                    before[f"before{n}"] = (body_hash(body), f"application/x-b{n}")
                ballast = fill(disk, HEADROOM)

                acknowledged: dict[str, tuple[str, str]] = {}
                refused: list[str] = []
                other_writes: list[tuple[int, dict]] = []
                reads: list[tuple[str, tuple]] = []
                ready: list[int] = []
                refusing, stop = asyncio.Event(), asyncio.Event()

                async def writer(number: int) -> None:
                    rng = random.Random(number)
                    written = 0
                    while not stop.is_set():
                        written += 1
                        key, content_type = f"w{number}-{written}", f"application/x-w{number}"
                        body = os.urandom(rng.randrange(64 * 1024, 256 * 1024))
                        status, error = await put(key, body, content_type)
                        if status == 201:
                            acknowledged[key] = (body_hash(body), content_type)
                        elif status == 507 and error["errors"][0]["code"] == "75011":
                            refused.append(key)
                            refusing.set()
                        else:
                            other_writes.append((status, error))

                async def reader(number: int) -> None:
                    rng = random.Random(100 + number)
                    while not stop.is_set():
                        key = rng.choice(sorted(before))
                        reads.append((key, await get(key)))
                        async with session.get("/readyz") as resp:
                            ready.append(resp.status)

                async def stop_after_refusals() -> None:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(30):
                            await refusing.wait()
                            await asyncio.sleep(2)
                    stop.set()

                await asyncio.gather(
                    *(writer(n) for n in range(8)),
                    *(reader(n) for n in range(4)),
                    stop_after_refusals(),
                )
                async with session.delete(key_url(namespace, "before0")) as resp:
                    deleted_while_full = resp.status
                kept = {key: value for key, value in before.items() if key != "before0"}
                full = free_bytes(disk)

                ballast.unlink()
                freed = time.monotonic()
                while True:
                    body = os.urandom(128 * 1024)
                    status, _ = await put("after", body, "application/x-after")
                    if status == 201 or time.monotonic() - freed > RECOVERY_SECONDS:
                        break
                    await asyncio.sleep(0.05)
                recovered = time.monotonic() - freed
                after_status = status

                final = {key: await get(key) for key in [*acknowledged, *kept]}
                absent = [key for key in [*refused, "before0"] if (await get(key))[0] != 404]

    bad_reads = [(key, got) for key, got in reads if got != (200, *before[key])]
    print(
        f"{len(acknowledged)} writes acknowledged, then {len(refused)} answered 507 over 2 s "
        f"(free space {full // 1024} KiB); {len(reads)} reads, {len(bad_reads)} wrong; a DELETE "
        f"while full {deleted_while_full}; /readyz {sorted(set(ready))}; after freeing, a write "
        f"{after_status} in {recovered:.2f} s"
    )
    assert other_writes == [], other_writes[:5]
    assert acknowledged and refused
    assert bad_reads == [] and len(reads) > 0, bad_reads[:5]
    assert set(ready) == {200}
    assert deleted_while_full == 204
    assert after_status == 201 and recovered < RECOVERY_SECONDS
    for key, expected in acknowledged.items():
        assert final[key] == (200, *expected), key
    for key, expected in kept.items():
        assert final[key] == (200, *expected), key
    assert absent == []
