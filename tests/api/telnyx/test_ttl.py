"""TTL: validation, visibility of the expiry, and expired keys absent everywhere, swept or not."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from service.worker.loop import Worker
from service.worker.periodic import sweep_expired
from tests.support import error_code, key_url, make_settings, put


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def test_a_ttl_on_a_namespace_without_ttl_support_is_409_and_changes_nothing(
    client, tenant, no_ttl_namespace
):
    assert (await put(client, tenant, no_ttl_namespace, "k", b"old")).status == 201
    resp = await put(client, tenant, no_ttl_namespace, "k", b"new", params={"ttl_secs": "60"})
    assert resp.status == 409
    assert await error_code(resp) == "75006"
    got = await client.get(key_url(no_ttl_namespace, "k"), headers=tenant.headers)
    assert await got.read() == b"old"
    assert "X-Expires-At" not in got.headers


@pytest.mark.parametrize(
    "params",
    [
        {"ttl_secs": "0"},
        {"ttl_secs": "-1"},
        {"ttl_secs": "1.5"},
        {"ttl_secs": "abc"},
        {"ttl_secs": ""},
        {"ttl_secs": "9223372037"},
        {"ttl_secs": "1e3"},
        [("ttl_secs", "5"), ("ttl_secs", "6")],
        {"ttl": "60"},
    ],
)
async def test_an_invalid_ttl_is_422(client, tenant, namespace, params):
    resp = await put(client, tenant, namespace, "k", params=params)
    assert resp.status == 422
    error = (await resp.json())["errors"][0]
    assert error["code"] == "75008"
    assert error["source"]["parameter"] in ("ttl_secs", "ttl")


async def test_the_expiry_shows_on_put_get_head_and_list(client, tenant, namespace):
    before = datetime.now(UTC)
    resp = await put(client, tenant, namespace, "k", params={"ttl_secs": "100"})
    assert resp.status == 201
    expires = parse_time(resp.headers["X-Expires-At"])
    assert before + timedelta(seconds=99) < expires < before + timedelta(seconds=102)
    for method in ("GET", "HEAD"):
        got = await client.request(method, key_url(namespace, "k"), headers=tenant.headers)
        assert parse_time(got.headers["X-Expires-At"]) == expires
    listed = await (
        await client.get(key_url(namespace, listing=True), headers=tenant.headers)
    ).json()
    assert parse_time(listed["data"][0]["expires_at"]) == expires


async def test_the_largest_ttl_is_accepted(client, tenant, namespace):
    resp = await put(client, tenant, namespace, "k", params={"ttl_secs": "9223372036"})
    assert resp.status == 201
    assert parse_time(resp.headers["X-Expires-At"]).year > 2300


async def test_a_put_without_ttl_removes_the_expiry(client, tenant, namespace):
    await put(client, tenant, namespace, "k", params={"ttl_secs": "100"})
    resp = await put(client, tenant, namespace, "k")
    assert resp.status == 200 and "X-Expires-At" not in resp.headers
    got = await client.get(key_url(namespace, "k"), headers=tenant.headers)
    assert "X-Expires-At" not in got.headers
    listed = await (
        await client.get(key_url(namespace, listing=True), headers=tenant.headers)
    ).json()
    assert listed["data"][0]["expires_at"] is None


async def test_an_expired_key_is_absent_everywhere_before_any_sweep(client, tenant, namespace, db):
    await put(client, tenant, namespace, "gone", b"old", params={"ttl_secs": "1"})
    await put(client, tenant, namespace, "cas", b"old", params={"ttl_secs": "1"})
    etag = (await put(client, tenant, namespace, "del", params={"ttl_secs": "1"})).headers["ETag"]
    await put(client, tenant, namespace, "stays", b"v")
    await asyncio.sleep(1.2)
    # Still stored: nothing has swept them.
    assert await db.fetchval("SELECT count(*) FROM kv_entries WHERE expires_at < now()") == 3

    assert (await client.get(key_url(namespace, "gone"), headers=tenant.headers)).status == 404
    assert (await client.head(key_url(namespace, "gone"), headers=tenant.headers)).status == 404
    listed = await (
        await client.get(key_url(namespace, listing=True), headers=tenant.headers)
    ).json()
    assert [item["key"] for item in listed["data"]] == ["stays"]
    stale_delete = await client.delete(
        key_url(namespace, "del"), headers={**tenant.headers, "If-Match": etag}
    )
    assert stale_delete.status == 412

    assert (await put(client, tenant, namespace, "gone", b"new")).status == 201
    created = await put(client, tenant, namespace, "cas", b"new", {"If-None-Match": "*"})
    assert created.status == 201
    for key in ("gone", "cas"):
        got = await client.get(key_url(namespace, key), headers=tenant.headers)
        assert await got.read() == b"new" and "X-Expires-At" not in got.headers


async def test_the_sweeper_removes_only_expired_keys(client, tenant, namespace, db, settings):
    for key, params in [
        ("a", {"ttl_secs": "1000"}),
        ("b", None),
        ("c", {"ttl_secs": "1"}),
        ("d", {"ttl_secs": "1"}),
    ]:
        await put(client, tenant, namespace, key, params=params)
    await db.execute(
        "UPDATE kv_entries SET expires_at = now() - interval '1 s' WHERE key IN ('c', 'd')"
    )
    worker = Worker(db, make_settings(settings.database_url.get_secret_value(), sweep_batch_size=1))
    assert [await sweep_expired(worker.context) for _ in range(3)] == [1, 1, 0]
    assert await db.fetchval("SELECT array_agg(key ORDER BY key) FROM kv_entries") == ["a", "b"]


async def test_keys_rewritten_without_ttl_near_their_expiry_survive_the_sweeper(
    client, tenant, namespace, db, settings
):
    """Half the keys are rewritten without TTL around their expiry while sweeps run
    continuously: every rewritten key survives with its new value, the rest are swept."""
    keys = [f"k{i:03d}" for i in range(120)]
    for key in keys:
        await put(client, tenant, namespace, key, b"old", params={"ttl_secs": "1"})
    worker = Worker(db, make_settings(settings.database_url.get_secret_value(), sweep_batch_size=7))
    stop = asyncio.Event()

    async def sweep_continuously():
        while not stop.is_set():
            await sweep_expired(worker.context)
            await asyncio.sleep(0)

    sweeper = asyncio.create_task(sweep_continuously())
    await asyncio.sleep(0.8)
    rewritten = keys[::2]
    statuses = await asyncio.gather(*(put(client, tenant, namespace, k, b"new") for k in rewritten))
    assert all(r.status in (200, 201) for r in statuses)
    await asyncio.sleep(0.6)
    stop.set()
    await sweeper
    while await sweep_expired(worker.context):
        pass
    stored = await db.fetch("SELECT key, value, expires_at FROM kv_entries ORDER BY key")
    assert [r["key"] for r in stored] == rewritten
    assert all(r["value"] == b"new" and r["expires_at"] is None for r in stored)
