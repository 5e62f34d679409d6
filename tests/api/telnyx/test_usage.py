"""A namespace's usage (its keys and value bytes) is exact after every kind of change, and its
max_bytes is never exceeded, however writers interleave."""

import asyncio

import pytest

from service.db.queries import queries
from service.domain import keys as kv
from service.web.app import create_app
from tests.support import drain, key_url, put

BASE = "/v2/storage/kvs"


async def usage(client, tenant, namespace) -> tuple[int, int]:
    resp = await client.get(f"{BASE}/{namespace}", headers=tenant.headers)
    data = (await resp.json())["data"]
    return data["usage"]["keys"], data["usage"]["bytes"]


async def stored(db, namespace) -> tuple[int, int]:
    """What the namespace's rows hold, counted from the rows themselves."""
    row = await db.fetchrow(
        "SELECT count(*), coalesce(sum(size_bytes), 0) FROM kv_entries WHERE namespace_id = $1",
        namespace,
    )
    return row[0], row[1]


async def limit(client, tenant, namespace, max_bytes):
    resp = await client.patch(
        f"{BASE}/{namespace}", json={"max_bytes": max_bytes}, headers=tenant.headers
    )
    assert resp.status == 200
    return (await resp.json())["data"]


async def test_usage_follows_writes_overwrites_and_deletes(client, tenant, namespace, db):
    steps = [
        ("put", "a", 100, (1, 100)),
        ("put", "b", 50, (2, 150)),
        ("put", "a", 30, (2, 80)),  # an overwrite counts only the difference
        ("put", "a", 0, (2, 50)),
        ("delete", "b", None, (1, 0)),
        ("delete", "b", None, (1, 0)),  # deleting an absent key changes nothing
        ("delete", "a", None, (0, 0)),
    ]
    for op, key, size, expected in steps:
        if op == "put":
            assert (await put(client, tenant, namespace, key, b"x" * size)).status in (200, 201)
        else:
            resp = await client.delete(key_url(namespace, key), headers=tenant.headers)
            assert resp.status == 204
        assert await usage(client, tenant, namespace) == expected == await stored(db, namespace)


async def test_failed_conditional_writes_change_nothing(client, tenant, namespace):
    resp = await put(client, tenant, namespace, "k", b"12345")
    etag = resp.headers["ETag"]
    failed = [
        await put(client, tenant, namespace, "k", b"x" * 99, headers={"If-None-Match": "*"}),
        await put(client, tenant, namespace, "k", b"x" * 99, headers={"If-Match": '"999999"'}),
        await put(client, tenant, namespace, "new", b"x" * 9, headers={"If-Match": "*"}),
        await client.delete(
            key_url(namespace, "k"), headers={**tenant.headers, "If-Match": '"999999"'}
        ),
    ]
    assert [r.status for r in failed] == [412] * 4
    assert await usage(client, tenant, namespace) == (1, 5)
    resp = await put(client, tenant, namespace, "k", b"x" * 7, headers={"If-Match": etag})
    assert resp.status == 200
    assert await usage(client, tenant, namespace) == (1, 7)


async def test_a_rolled_back_transaction_counts_for_nothing(client, tenant, namespace, db):
    await put(client, tenant, namespace, "kept", b"x" * 10)
    with pytest.raises(RuntimeError):
        async with db.transaction() as tx:
            await kv.put_value(tx, tenant.id, namespace, "gone", b"y" * 1000, "text/plain")
            await kv.put_value(tx, tenant.id, namespace, "kept", b"y" * 500, "text/plain")
            await kv.delete_value(tx, tenant.id, namespace, "kept")
            raise RuntimeError("roll back")
    assert await usage(client, tenant, namespace) == (1, 10) == await stored(db, namespace)


async def test_an_expired_key_counts_until_the_sweeper_removes_it(client, tenant, namespace, db):
    await put(client, tenant, namespace, "brief", b"x" * 40, params={"ttl_secs": "1"})
    await put(client, tenant, namespace, "stays", b"x" * 2)
    await asyncio.sleep(1.1)
    assert (await client.get(key_url(namespace, "brief"), headers=tenant.headers)).status == 404
    assert await usage(client, tenant, namespace) == (2, 42)
    await db.execute(queries().sweep_expired, 500)
    assert await usage(client, tenant, namespace) == (1, 2) == await stored(db, namespace)


async def test_rewriting_an_expired_key_counts_the_difference(client, tenant, namespace, db):
    await put(client, tenant, namespace, "k", b"x" * 40, params={"ttl_secs": "1"})
    await asyncio.sleep(1.1)
    assert (await put(client, tenant, namespace, "k", b"x" * 5)).status == 201
    assert await usage(client, tenant, namespace) == (1, 5) == await stored(db, namespace)


async def test_a_deleted_namespace_leaves_no_usage(client, tenant, namespace, db, worker):
    for i in range(30):
        await put(client, tenant, namespace, f"k{i}", b"x" * i)
    await client.delete(f"{BASE}/{namespace}", headers=tenant.headers)
    await drain(worker)
    count = "SELECT count(*) FROM namespace_usage WHERE namespace_id = $1"
    assert await db.fetchval(count, namespace) == 0


async def test_a_write_over_max_bytes_is_409_and_changes_nothing(client, tenant, namespace, db):
    await limit(client, tenant, namespace, 100)
    assert (await put(client, tenant, namespace, "a", b"x" * 60)).status == 201
    resp = await put(client, tenant, namespace, "b", b"x" * 41)
    assert resp.status == 409
    error = (await resp.json())["errors"][0]
    assert error["code"] == "75012" and error["title"] == "Namespace storage limit reached"
    assert "60 bytes" in error["detail"] and "100" in error["detail"] and "41" in error["detail"]
    assert (await client.get(key_url(namespace, "b"), headers=tenant.headers)).status == 404
    assert (await put(client, tenant, namespace, "b", b"x" * 40)).status == 201  # exactly full
    # An overwrite counts only the difference: growing "a" by one byte is over, shrinking is not.
    assert (await put(client, tenant, namespace, "a", b"x" * 61)).status == 409
    assert (await put(client, tenant, namespace, "a", b"x" * 59)).status == 200
    assert (await put(client, tenant, namespace, "a", b"x" * 60)).status == 200
    assert await usage(client, tenant, namespace) == (2, 100) == await stored(db, namespace)


async def test_max_bytes_below_usage_refuses_growth_until_usage_drops(client, tenant, namespace):
    for key in "abc":
        await put(client, tenant, namespace, key, b"x" * 50)
    data = await limit(client, tenant, namespace, 100)
    assert data["usage"] == {"keys": 3, "bytes": 150}
    assert (await put(client, tenant, namespace, "d", b"")).status == 201  # no bytes: no growth
    assert (await put(client, tenant, namespace, "e", b"x")).status == 409
    assert (await put(client, tenant, namespace, "a", b"x" * 10)).status == 200  # shrinks
    resp = await client.delete(key_url(namespace, "b"), headers=tenant.headers)
    assert resp.status == 204
    assert await usage(client, tenant, namespace) == (3, 60)
    assert (await put(client, tenant, namespace, "e", b"x" * 40)).status == 201
    assert (await put(client, tenant, namespace, "f", b"x")).status == 409
    await limit(client, tenant, namespace, None)
    assert (await put(client, tenant, namespace, "f", b"x" * 1000)).status == 201


async def test_usage_spread_by_unlimited_writers_is_all_counted_once_a_limit_is_set(
    make_client, settings, tenant, namespace, db
):
    """Without max_bytes each database session adds to a row of its own: setting a limit
    gathers them, and the limit holds against the whole usage."""
    client = await make_client(create_app(settings.model_copy(update={"db_pool_max": 16})))
    await asyncio.gather(*(put(client, tenant, namespace, f"k{i}", b"x" * 100) for i in range(64)))
    spread = "SELECT count(*) FROM namespace_usage WHERE namespace_id = $1 AND bytes > 0"
    assert await db.fetchval(spread, namespace) > 1
    data = await limit(client, tenant, namespace, 6500)
    assert data["usage"] == {"keys": 64, "bytes": 6400}
    assert await db.fetchval(spread, namespace) == 1
    answers = await asyncio.gather(
        *(put(client, tenant, namespace, f"n{i}", b"x" * 10) for i in range(20))
    )
    assert sorted(r.status for r in answers) == [201] * 10 + [409] * 10
    assert await usage(client, tenant, namespace) == (74, 6500) == await stored(db, namespace)


async def test_a_limit_set_while_writers_race_holds_for_every_write_after_it(
    make_client, settings, tenant, namespace, db
):
    """max_bytes is set while 16 writers add values to an unlimited namespace: every write
    committed after the change is checked against it."""
    client = await make_client(create_app(settings.model_copy(update={"db_pool_max": 17})))
    stop = asyncio.Event()

    async def writer(w: int) -> None:
        i = 0
        while not stop.is_set():
            resp = await put(client, tenant, namespace, f"w{w}-{i}", b"x" * 100)
            assert resp.status in (201, 409)
            i += 1

    writers = [asyncio.create_task(writer(w)) for w in range(16)]
    await asyncio.sleep(0.3)
    _, now = await usage(client, tenant, namespace)
    data = await limit(client, tenant, namespace, now + 5_000)
    at_change = data["usage"]["bytes"]  # read with every usage row locked: exact at commit
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(*writers)
    _, final = await usage(client, tenant, namespace)
    assert final <= max(now + 5_000, at_change)
    assert (await usage(client, tenant, namespace)) == await stored(db, namespace)
