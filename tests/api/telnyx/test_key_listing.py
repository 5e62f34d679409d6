"""Listing keys: byte order, prefix, ranges, reverse, keyset cursors, limits."""

import asyncio
import base64
import random

import pytest

from tests.support import key_url, put
from tests.support.workers import add_keys


async def listing(client, tenant, namespace, **params):
    resp = await client.get(key_url(namespace, listing=True), params=params, headers=tenant.headers)
    assert resp.status == 200, await resp.text()
    return await resp.json()


async def walk(client, tenant, namespace, **params) -> list[str]:
    """Every key, following cursors page by page."""
    keys, cursor = [], None
    while True:
        page = await listing(
            client, tenant, namespace, **params, **({"cursor": cursor} if cursor else {})
        )
        keys += [item["key"] for item in page["data"]]
        assert page["meta"]["has_more"] == (page["meta"]["cursor"] is not None)
        cursor = page["meta"]["cursor"]
        if cursor is None:
            return keys


async def test_items_carry_name_size_times_and_type_never_the_value(client, tenant, namespace):
    await put(client, tenant, namespace, "k", b"12345", {"Content-Type": "text/plain"})
    page = await listing(client, tenant, namespace)
    assert page["meta"] == {"cursor": None, "has_more": False}
    (item,) = page["data"]
    assert set(item) == {"key", "size_bytes", "updated_at", "content_type", "expires_at"}
    assert item["key"] == "k" and item["size_bytes"] == 5 and item["content_type"] == "text/plain"
    assert item["expires_at"] is None and item["updated_at"].endswith("Z")


async def test_keys_come_in_byte_order(client, tenant, namespace):
    keys = ["b", "B", "a/b", "a0", "a", "Z", "0", "-", "=", "a.b", "a_b", "z"]
    for key in keys:
        await put(client, tenant, namespace, key)
    page = await listing(client, tenant, namespace)
    expected = sorted(keys, key=lambda k: k.encode())
    assert [item["key"] for item in page["data"]] == expected
    reverse = await listing(client, tenant, namespace, reverse="true")
    assert [item["key"] for item in reverse["data"]] == expected[::-1]


async def test_cursor_pages_cover_every_key_once(client, tenant, namespace):
    keys = [f"key-{i:02d}" for i in range(25)]
    for key in keys:
        await put(client, tenant, namespace, key)
    first = await listing(client, tenant, namespace, limit="10")
    assert len(first["data"]) == 10 and first["meta"]["has_more"] is True
    assert await walk(client, tenant, namespace, limit="10") == keys
    assert await walk(client, tenant, namespace, limit="7", reverse="true") == keys[::-1]
    assert await walk(client, tenant, namespace, limit="25") == keys


async def test_limit_defaults_to_1000_and_larger_values_mean_1000(client, tenant, namespace, db):
    await add_keys(db, namespace, 1003)
    for params in ({}, {"limit": "5000"}, {"limit": "9" * 40}):
        page = await listing(client, tenant, namespace, **params)
        assert len(page["data"]) == 1000 and page["meta"]["has_more"] is True
    assert len(await walk(client, tenant, namespace)) == 1003


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "-1"},
        {"limit": "ten"},
        {"reverse": "yes"},
        {"prefix": "é"},
        {"start": "a b"},
        {"end": "x" * 257},
    ],
)
async def test_bad_listing_parameters_are_400(client, tenant, namespace, params):
    resp = await client.get(key_url(namespace, listing=True), params=params, headers=tenant.headers)
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["source"] == {"parameter": next(iter(params))}


async def test_prefix_start_end_and_reverse_combine(client, tenant, namespace):
    keys = ["user/1", "user/2", "user/3", "user/30", "users", "usex", "u", "v"]
    for key in keys:
        await put(client, tenant, namespace, key)

    async def names(**params):
        return await walk(client, tenant, namespace, limit="2", **params)

    assert await names(prefix="user/") == ["user/1", "user/2", "user/3", "user/30"]
    assert await names(prefix="user") == ["user/1", "user/2", "user/3", "user/30", "users"]
    assert await names(prefix="user/", start="user/2") == ["user/2", "user/3", "user/30"]
    assert await names(prefix="user/", end="user/3") == ["user/1", "user/2"]
    assert await names(prefix="user/", start="user/2", end="user/30", reverse="true") == [
        "user/3",
        "user/2",
    ]
    assert await names(start="usex") == ["usex", "v"]
    assert await names(prefix="nothing") == []
    assert await names(start="v", end="u") == []


@pytest.mark.parametrize(
    "cursor",
    [
        "not base64!",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"f:bad key").decode(),
        base64.urlsafe_b64encode(b"r:k").decode(),
        base64.urlsafe_b64encode(b"nonsense").decode(),
        "\u00e9",
    ],
)
async def test_a_tampered_cursor_is_400(client, tenant, namespace, cursor):
    await put(client, tenant, namespace, "k")
    resp = await client.get(
        key_url(namespace, listing=True), params={"cursor": cursor}, headers=tenant.headers
    )
    assert resp.status == 400
    assert (await resp.json())["errors"][0]["source"] == {"parameter": "cursor"}


async def test_a_walk_returns_every_key_that_exists_throughout_exactly_once_despite_churn(
    client, tenant, namespace
):
    """Other keys are written and deleted between and around the stable ones during the walk."""
    stable = [f"s-{i:04d}" for i in range(300)]
    for key in stable:
        await put(client, tenant, namespace, key)
    stop = asyncio.Event()

    async def churn():
        rng = random.Random(7)
        while not stop.is_set():
            key = f"s-{rng.randrange(300):04d}{rng.choice(['', '-x', '/y', '.z'])}"
            if key in stable:
                continue
            if rng.random() < 0.5:
                await put(client, tenant, namespace, key)
            else:
                await client.delete(key_url(namespace, key), headers=tenant.headers)

    churners = [asyncio.create_task(churn()) for _ in range(4)]
    try:
        seen = await walk(client, tenant, namespace, limit="17")
    finally:
        stop.set()
        await asyncio.gather(*churners)
    seen_stable = [key for key in seen if key in stable]
    assert seen_stable == stable
    assert seen == sorted(seen, key=str.encode)
